"""Streaming: the cascade's answer as it is generated, under a restart policy.

The consumer gets `StreamDelta`s (text, with the tier it comes from), a `StreamRestart`
whenever the cascade leaves an attempt for another (saying how much of what was shown is
now void), and one `StreamResult` last, with the same accounting as `Cascade.arun`.

While an answer streams, verifiers that can judge a prefix (`check_partial`) run on the
text so far; a doomed answer is stopped at once and its connection closed, so no more of
it is paid for. A stream that breaks (connection lost, stalled past the idle timeout, an
error event, no terminal event) is a failed attempt, never an accepted answer. Aborted
and broken attempts are billed: input tokens as reported or counted, output tokens
counted from the text received, flagged `usage_estimated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cascade.calls import call_model
from cascade.errors import PermanentProviderError, ProviderError, ProviderTimeout
from cascade.policy import (
    START,
    Position,
    StreamPolicy,
    budget_exhausted,
    degrade_on_fault,
    must_finish,
    next_position,
    should_reask,
)
from cascade.providers.base import InputReported, StreamDone, StreamEvent, open_stream
from cascade.retry import retrying
from cascade.tiers import TierModel
from cascade.tokens import count_tokens
from cascade.types import Attempt, Candidate, Completion, Outcome, Request, Result, Usage, Verdict
from cascade.verification import check_partial, clean_output, prepare_request, run_chain

if TYPE_CHECKING:
    from cascade.engine import Cascade

PARTIAL_CHECK_EVERY_CHARS = 32  # re-check a growing answer this often, not on every delta


@dataclass(frozen=True)
class StreamDelta:
    """A piece of the answer, shown as it arrives (or, under `buffer`, once verified)."""

    text: str
    tier: str
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": "delta", "text": self.text, "tier": self.tier, "model": self.model}


@dataclass(frozen=True)
class StreamRestart:
    """The cascade left an attempt: what was shown of it (`void_chars`) is withdrawn."""

    from_tier: str
    to_tier: str | None  # None: no tier left to try
    reason: str
    void_chars: int
    void_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "restart",
            "from_tier": self.from_tier,
            "to_tier": self.to_tier,
            "reason": self.reason,
            "void_chars": self.void_chars,
            "void_tokens": self.void_tokens,
        }


@dataclass(frozen=True)
class StreamResult:
    """The last event: the result, as `Cascade.arun` would return it."""

    result: Result

    def to_dict(self) -> dict[str, Any]:
        return {"event": "result", **self.result.to_dict()}


CascadeEvent = StreamDelta | StreamRestart | StreamResult


@dataclass
class _Reading:
    """What one try of one model has produced so far."""

    text: str = ""
    input_tokens: int | None = None
    done: StreamDone | None = None
    doomed: Verdict | None = None  # a partial check failed past the point of no return
    checked_at: int = 0
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt ended: its ledger entry (None when the budget ran out between
    retries), the text shown of it, and whether it must stand, degraded."""

    attempt: Attempt | None
    shown: str = ""
    degraded: bool = False


class _StreamBroke(PermanentProviderError):
    """A fault after text arrived: not retried on the same model (what was shown is void)."""


class BudgetSpent(PermanentProviderError):
    """Raised between retries when the request's budget is gone: stop, do not retry."""

    def __init__(self) -> None:
        super().__init__("budget spent")


AttemptRunner = Callable[
    [Request, Request, Position, list[Attempt], int], AsyncGenerator["StreamDelta | AttemptEnd", None]
]


async def drive(
    cascade: Cascade, request: Request, run_attempt: AttemptRunner
) -> AsyncGenerator[CascadeEvent, None]:
    """The tier-by-tier loop, as events: `run_attempt(original, asking, position, ledger,
    reask)` makes one attempt (a call or a stream) and ends with its `AttemptEnd`.

    `Cascade.arun` drives it with plain calls and keeps only the result; `Cascade.astream`
    drives it with streams under a policy.
    """
    ledger: list[Attempt] = []
    position: Position | None = START
    asking, reasks = request, 0
    stop_reason = "exhausted"
    while position is not None:
        if budget_exhausted(cascade.spent(ledger), cascade.max_cost_usd):
            stop_reason = "budget"
            break
        end: AttemptEnd | None = None
        async for item in run_attempt(request, asking, position, ledger, reasks):
            if isinstance(item, AttemptEnd):
                end = item
            else:
                yield item
        assert end is not None
        if end.attempt is None:
            stop_reason = "budget"
            break
        attempt = end.attempt
        if end.degraded or attempt.outcome is Outcome.ACCEPTED:
            yield StreamResult(
                cascade.result_of(
                    request,
                    ledger,
                    len(ledger) - 1,
                    verified=not end.degraded,
                    stop_reason="degraded" if end.degraded else "accepted",
                    degraded=end.degraded,
                )
            )
            return
        if should_reask(attempt.outcome, reasks, cascade.max_reasks(attempt.tier)):
            asking, reasks = cascade.with_feedback(asking, attempt), reasks + 1
            to_tier: str | None = attempt.tier
        else:
            position = next_position(cascade.models_per_tier, position, attempt.outcome)
            asking, reasks = request, 0
            to_tier = cascade.tiers[position.tier].name if position else None
        yield StreamRestart(
            attempt.tier, to_tier, _why(attempt), len(end.shown), count_tokens(end.shown, attempt.model)
        )
    yield StreamResult(cascade.exhausted(request, ledger, stop_reason))


async def stream_attempt(
    cascade: Cascade,
    policy: StreamPolicy,
    original: Request,
    request: Request,
    at: Position,
    ledger: list[Attempt],
    reask: int,
) -> AsyncGenerator[StreamDelta | AttemptEnd, None]:
    """Stream one model's answer (with retries before any text), check it, record it."""
    tier = cascade.tiers[at.tier]
    model = tier.models[at.model]
    chain = cascade.chain(tier.name)
    sent = prepare_request(chain, request)
    # A verifier that rewrites the answer (strips a rating line) sees whole lines only:
    # hold back the line being written until it is complete.
    hold_back_line = any(callable(getattr(v, "clean_output", None)) for v in chain)
    shown = ""

    def record(
        outcome: Outcome, reading: _Reading, retry: int, bill_input: bool = True, **extra: Any
    ) -> Attempt:
        usage = _billed_usage(reading, sent, model, bill_input)
        return cascade.record(
            ledger,
            Attempt(
                tier=tier.name,
                model=model.model,
                outcome=outcome,
                usage=usage,
                cost_usd=model.price.cost(usage),
                latency_s=time.perf_counter() - reading.started,
                retry=retry,
                reask=reask,
                **extra,
            ),
        )

    try:
        async for try_ in retrying(model.retry):
            with try_:
                retry = try_.retry_state.attempt_number - 1
                if retry and budget_exhausted(cascade.spent(ledger), cascade.max_cost_usd):
                    raise BudgetSpent()
                reading = _Reading()
                try:
                    async with contextlib.aclosing(_events(model, sent)) as events:
                        async for event in events:
                            if isinstance(event, InputReported):
                                reading.input_tokens = event.input_tokens
                            elif isinstance(event, StreamDone):
                                reading.done = event
                            else:
                                reading.text += event.text
                                if policy.mode != "buffer":
                                    visible = _visible(reading.text, hold_back_line)
                                    if len(visible) > len(shown):
                                        yield StreamDelta(visible[len(shown) :], tier.name, model.model)
                                        shown = visible
                                verdict = _partial_failure(chain, reading)
                                if verdict is None:
                                    continue
                                if must_finish(
                                    policy, len(shown), count_tokens(shown, model.model), model.max_tokens
                                ):
                                    reading.doomed = verdict  # shown for good: finish, degraded
                                    continue
                                # Stop now: leaving the loop closes the stream and its connection.
                                attempt = record(
                                    Outcome.ABORTED, reading, retry, verdicts=(verdict,), output=reading.text
                                )
                                yield AttemptEnd(attempt, shown, degraded=False)
                                return
                except ProviderError as exc:
                    timed_out = isinstance(exc, ProviderTimeout)
                    record(
                        Outcome.ERROR, reading, retry, timed_out, error=str(exc), output=reading.text or None
                    )
                    if reading.text:
                        raise _StreamBroke(str(exc)) from None
                    raise
    except BudgetSpent:
        yield AttemptEnd(None, shown, degraded=False)
        return
    except ProviderError as exc:
        yield AttemptEnd(
            ledger[-1], shown, degraded=isinstance(exc, _StreamBroke) and degrade_on_fault(policy, len(shown))
        )
        return

    assert reading.done is not None
    completion = Completion(
        text=reading.text,
        model=model.model,
        usage=_billed_usage(reading, sent, model, True),
        finish_reason=reading.done.finish_reason,
        logprobs=reading.done.logprobs,
    )
    candidate = Candidate(
        request=original,
        sent=sent,
        completion=completion,
        tier=tier.name,
        tier_index=at.tier,
        is_last_tier=at.tier == len(cascade.tiers) - 1,
        cleaned=clean_output(chain, completion.text),
        ask=lambda follow_up: call_model(model, follow_up),
    )
    verdicts = await run_chain(chain, candidate, stop_at_first_failure=cascade.stop_at_first_failure)
    if reading.doomed is not None:
        verdicts = (reading.doomed, *verdicts)
    accepted = all(v.passed for v in verdicts)
    if accepted and policy.mode == "buffer":
        yield StreamDelta(candidate.text, tier.name, model.model)
        shown = candidate.text
    elif policy.mode != "buffer" and candidate.text.startswith(shown) and len(candidate.text) > len(shown):
        yield StreamDelta(candidate.text[len(shown) :], tier.name, model.model)  # the held-back line
        shown = candidate.text
    attempt = cascade.record(
        ledger,
        Attempt(
            tier=tier.name,
            model=model.model,
            outcome=Outcome.ACCEPTED if accepted else Outcome.REJECTED,
            usage=completion.usage,
            cost_usd=model.price.cost(completion.usage),
            latency_s=time.perf_counter() - reading.started,
            verdicts=verdicts,
            output=candidate.text,
            retry=retry,
            reask=reask,
        ),
    )
    degraded = not accepted and must_finish(
        policy, len(shown), count_tokens(shown, model.model), model.max_tokens
    )
    yield AttemptEnd(attempt, shown, degraded)


async def _events(model: TierModel, request: Request) -> AsyncGenerator[StreamEvent, None]:
    """The provider's stream (or its whole answer as one piece), failing on silence."""
    async with contextlib.aclosing(open_stream(model.provider, request)) as events:
        iterator = aiter(events)
        while True:
            try:
                if model.idle_timeout_s is None:
                    event = await anext(iterator)
                else:
                    event = await asyncio.wait_for(anext(iterator), model.idle_timeout_s)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ProviderTimeout(
                    f"timeout: the stream was silent for {model.idle_timeout_s:g}s"
                ) from None
            yield event


def _visible(text: str, hold_back_line: bool) -> str:
    """What of `text` may be shown now: all of it, or its complete lines (without the last
    line break, which shows when the next line is complete: the answer may end there)."""
    if not hold_back_line:
        return text
    return text[: max(text.rfind("\n"), 0)]


def _partial_failure(chain: Any, reading: _Reading) -> Verdict | None:
    """A failed partial check, run every few characters while nothing has doomed the answer."""
    if reading.doomed is not None or len(reading.text) - reading.checked_at < PARTIAL_CHECK_EVERY_CHARS:
        return None
    reading.checked_at = len(reading.text)
    verdict = check_partial(chain, reading.text)
    if verdict is None:
        return None
    return Verdict(
        verdict.verifier, False, f"stopped early: {verdict.reason}", verdict.score, verdict.cost_usd
    )


def _billed_usage(reading: _Reading, sent: Request, model: TierModel, bill_input: bool) -> Usage:
    """Reported usage when the stream finished; else input as reported or counted and the
    output counted from the text received. A call that failed before any of its answer
    arrived (an HTTP error) is not billed unless `bill_input` (a timeout: the provider may
    have processed it)."""
    if reading.done is not None and reading.done.usage is not None:
        return reading.done.usage
    if not bill_input and not reading.text and reading.input_tokens is None:
        return Usage()
    input_tokens = reading.input_tokens
    if input_tokens is None:
        input_tokens = count_tokens(sent.text(), model.model)
    return Usage(input_tokens, count_tokens(reading.text, model.model), estimated=True)


def _why(attempt: Attempt) -> str:
    failed = next((v for v in attempt.verdicts if not v.passed), None)
    return f"{failed.verifier}: {failed.reason}" if failed else attempt.error or str(attempt.outcome)
