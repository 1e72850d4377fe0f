"""Pure decisions of the cascade: where to go next, which answer is best, when money is out.

No I/O here, so every rule can be tested exhaustively with Hypothesis; the engine is a
short driver around these functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from cascade.core.values import Attempt, Completion, Message, Outcome, Request, Verdict


@dataclass(frozen=True, order=True)
class Position:
    """A model in the ladder: tier `tier`, model `model` (0 = primary, then alternates)."""

    tier: int
    model: int


START = Position(0, 0)


# an answer a check failed: whole (rejected) or while it streamed (aborted); plain runs and
# streams treat both alike, so a stream escalates as `run` does
JUDGED_WRONG = frozenset({Outcome.REJECTED, Outcome.ABORTED})


def next_position(models_per_tier: Sequence[int], here: Position, outcome: Outcome) -> Position | None:
    """Where to go after `outcome` at `here`; None when the cascade is done.

    An accepted answer ends the cascade. A rejected answer, whole or stopped early while
    streamed (aborted), escalates to the next tier: an alternate is the same class of model
    and would likely be rejected too. A failed call tries the tier's next alternate, then
    escalates.
    """
    if outcome is Outcome.ACCEPTED:
        return None
    if outcome not in JUDGED_WRONG and here.model + 1 < models_per_tier[here.tier]:
        return Position(here.tier, here.model + 1)
    if here.tier + 1 < len(models_per_tier):
        return Position(here.tier + 1, 0)
    return None


def should_reask(outcome: Outcome, reasks_done: int, max_reasks: int) -> bool:
    """Ask the same model again, with the failure as feedback, before escalating?

    Only a rejected answer is reasked, whole or stopped early (a failed call has nothing to
    give feedback on), and at most `max_reasks` times per tier.
    """
    return outcome in JUDGED_WRONG and reasks_done < max_reasks


UNFINISHED = "finish_reason"  # the verdict that rejects an answer for how it ended
OnTruncated = Literal["reject", "accept"]
ON_TRUNCATED: tuple[OnTruncated, ...] = ("reject", "accept")
# Finish reasons, lower-cased, of OpenAI, Anthropic and the compatible servers (vLLM,
# Mistral, Gemini's OpenAI layer). An answer that ended on its own:
FINISHED = frozenset({"stop", "end_turn", "stop_sequence", "eos", "eos_token", "tool_use"})
# ... one cut off at a token limit or the context window:
TRUNCATED = frozenset(
    {"length", "max_tokens", "model_length", "max_output_tokens", "model_context_window_exceeded"}
)
# ... one withheld by a filter or the model's own policy:
FILTERED = frozenset(
    {"content_filter", "refusal", "safety", "recitation", "blocklist", "prohibited_content", "spii"}
)
TOOL_CALLS = frozenset({"tool_calls", "function_call"})  # the model called a tool instead


def unfinished(completion: Completion, *, accept_truncated: bool, tools_offered: bool = False) -> str | None:
    """Why `completion` is no answer to accept, whatever the verifiers say; None when it is one.

    Rejected before any verifier runs: a reply that calls a tool when the request offered
    none (with tools offered, tool calls are an answer, for the verifiers to judge, unless
    cut off at a token limit), a refusal, an answer withheld by a filter, one cut off at a
    token limit (unless `accept_truncated`), a turn the provider paused (Anthropic
    `pause_turn`: the answer is not there yet), and any finish reason not known to mean a
    finished answer (vLLM `abort`, Mistral `error`, ...). No finish reason at all (a server
    that sends none) is taken as finished: the reply came whole.
    """
    reason = completion.finish_reason.lower() if completion.finish_reason else None
    if completion.tool_calls or reason in TOOL_CALLS:
        names = ", ".join(dict.fromkeys(call.name for call in completion.tool_calls)) or "unnamed"
        if not tools_offered:
            return (
                f"the model called a tool ({names}) instead of answering; the request offered no tools "
                "(or said tool_choice: none)"
            )
        if not completion.tool_calls:
            return f"the answer ended for a tool call (finish reason {reason!r}) but holds none"
        if reason is None or reason in TOOL_CALLS or reason in FINISHED:
            return None  # tool calls are the answer: the verifiers judge them
        if reason in TRUNCATED:  # whatever on_truncated says: it lets a reader use cut text, not a tool
            return f"the tool call is cut off (finish reason {reason!r}): its arguments may be missing"
    if completion.refusal:
        return f"the model refused: {' '.join(completion.refusal.split())[:200]}"
    if reason in FILTERED:
        return f"the answer was withheld by a content filter or the model's policy (finish reason {reason!r})"
    if reason in TRUNCATED:
        if accept_truncated:
            return None
        return f"the answer is cut off (finish reason {reason!r}): it reached a token limit before it ended"
    if reason is None or reason in FINISHED:
        return None
    if reason == "pause_turn":
        return "the provider paused the turn before the answer was complete (finish reason 'pause_turn')"
    return f"the answer ended for a reason not known to mean it is finished (finish reason {reason!r})"


StreamMode = Literal["buffer", "restart", "finish_degraded"]
STREAM_MODES: tuple[StreamMode, ...] = ("buffer", "restart", "finish_degraded")
ASSUMED_MAX_TOKENS = 1024  # for the restart threshold, when a tier's params set no max_tokens


@dataclass(frozen=True)
class StreamPolicy:
    """What a stream does when an answer fails after some of it was shown.

    buffer: nothing is shown until the answer is verified. restart: text is shown as it
    arrives; a failure while less than the threshold was shown withdraws it (a restart
    event) and moves on; past the threshold the answer is finished on its tier and marked
    degraded. finish_degraded: shown text is never withdrawn; a failure only marks it.
    The threshold is `threshold_tokens`, else `threshold_fraction` of the tier's max_tokens.
    """

    mode: StreamMode = "buffer"
    threshold_tokens: int | None = None
    threshold_fraction: float = 0.2

    def threshold(self, max_tokens: int | None) -> int:
        if self.threshold_tokens is not None:
            return self.threshold_tokens
        return math.ceil(self.threshold_fraction * (max_tokens or ASSUMED_MAX_TOKENS))


def must_finish(policy: StreamPolicy, shown_chars: int, shown_tokens: int, max_tokens: int | None) -> bool:
    """Can the text shown so far no longer be withdrawn? Then a failed check does not
    restart: the answer is finished on its tier and marked degraded."""
    if policy.mode == "buffer" or shown_chars == 0:
        return False
    if policy.mode == "finish_degraded":
        return True
    return shown_tokens >= policy.threshold(max_tokens)


def degrade_on_fault(policy: StreamPolicy, shown_chars: int) -> bool:
    """A stream that broke (cut off, stalled, error event) cannot be finished on its tier:
    it restarts elsewhere, unless the policy forbids withdrawing what was shown."""
    return policy.mode == "finish_degraded" and shown_chars > 0


def budget_exhausted(spent: Decimal, budget: Decimal | None) -> bool:
    """True once a request has spent its whole budget: no new attempt may start."""
    return budget is not None and spent >= budget


def keep_checking(passed: bool, *, stop_at_first_failure: bool) -> bool:
    """After a verdict, does the chain run its next verifier? Not after a failure when it
    stops at the first one: later (costlier) checks cannot change the outcome."""
    return passed or not stop_at_first_failure


def judged(passed: Iterable[bool]) -> Outcome:
    """The outcome of an answer whose verdicts passed or not: accepted only if all passed."""
    return Outcome.ACCEPTED if all(passed) else Outcome.REJECTED


def finished(verdicts: Iterable[Verdict]) -> bool:
    """Did the answer end on its own? False once it was rejected as cut off, withheld or a
    tool call (see `unfinished`)."""
    return all(v.passed or v.verifier != UNFINISHED for v in verdicts)


AnswerRank = tuple[bool, int, int, int]


def answer_rank(finished: bool, passed: int, tier: int, index: int) -> AnswerRank:
    """How `pick_best` orders rejected answers, best last: a finished answer over one that
    was cut off or withheld, then most verifiers passed, then the highest tier (the stronger
    model), then the latest attempt (`index` in the ledger)."""
    return (finished, passed, tier, index)


def pick_best(attempts: Sequence[Attempt], tier_rank: dict[str, int]) -> int | None:
    """Index of the best rejected answer (by `answer_rank`), for `on_exhausted: return_best`.
    Failed calls have no answer and are never picked."""
    best: AnswerRank | None = None
    best_index: int | None = None
    for i, attempt in enumerate(attempts):
        if attempt.outcome is not Outcome.REJECTED or attempt.output is None:
            continue
        key = answer_rank(
            finished(attempt.verdicts),
            sum(v.passed for v in attempt.verdicts),
            tier_rank.get(attempt.tier, -1),
            i,
        )
        if best is None or key > best:
            best, best_index = key, i
    return best_index


def with_feedback(asked: Request, rejected: Attempt, reask_prompt: str) -> Request:
    """`asked`, followed by the rejected answer and what was wrong with it (a reask). A
    rejected tool call is told as text: as a call, both APIs would want its result next."""
    reasons = "; ".join(f"{v.verifier}: {v.reason}" for v in rejected.verdicts if not v.passed)
    calls = [f"(called {c.name} with arguments {c.arguments or '{}'})" for c in rejected.tool_calls]
    return asked.followed_by(
        Message("assistant", "\n".join(filter(None, [rejected.output, *calls])) or "(no answer)"),
        Message("user", reask_prompt.replace("{reasons}", reasons)),  # other braces are text
    )


def exhaustion_message(attempts: Sequence[Attempt], stop_reason: str, budget: Decimal | None) -> str:
    """Why no answer was verified, and each model's last problem, for `ExhaustedError`."""
    if stop_reason == "budget":
        head = f"the request's budget of ${budget} was spent before an answer was verified"
    elif all(a.outcome is Outcome.ERROR for a in attempts):
        head = "every tier failed"
    else:
        head = "no tier gave an answer that passed the verifiers"
    last_by_model: dict[tuple[str, str], str] = {}
    for a in attempts:
        problem = a.error or next((v.reason for v in a.verdicts if not v.passed), str(a.outcome))
        last_by_model[(a.tier, a.model)] = problem
    details = "; ".join(f"{t} ({m}): {p}" for (t, m), p in last_by_model.items())
    return f"{head}: {details}" if details else head
