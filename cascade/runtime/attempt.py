"""One attempt: what it is given (`Turn`), how its answer is judged and recorded, and the
plain (non-streamed) attempt runner.

Both attempt runners, `call_attempt` here and `runtime.stream.stream_attempt`, take a
`Turn` and yield what the consumer may see, ending with the attempt's `AttemptEnd`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from decimal import Decimal

from cascade.core.errors import ProviderError
from cascade.core.events import AttemptEnd, StreamDelta
from cascade.core.policy import UNFINISHED, Position, judged, unfinished
from cascade.core.redaction import redact
from cascade.core.values import Attempt, Candidate, Completion, Outcome, Request, Verdict
from cascade.protocols import Verifier
from cascade.runtime.call import Try, call_model, try_once
from cascade.runtime.ladder import Tier, TierModel
from cascade.runtime.ledger import Ledger
from cascade.runtime.plan import CascadePlan
from cascade.runtime.retry import call_with_retries, stop_if_budget_spent
from cascade.verification.chain import clean_output, prepare_request, run_chain


@dataclass(frozen=True)
class Turn:
    """One attempt to make: the original request, what to ask now (a reask adds feedback),
    which model, how many reasks came before on this tier, and the request's ledger."""

    plan: CascadePlan
    ledger: Ledger
    original: Request
    asking: Request
    at: Position
    reask: int

    @property
    def tier(self) -> Tier:
        return self.plan.tiers[self.at.tier]

    @property
    def model(self) -> TierModel:
        return self.tier.models[self.at.model]

    @property
    def chain(self) -> tuple[Verifier, ...]:
        return self.plan.chain(self.tier.name)

    def budget_stop(self) -> stop_if_budget_spent | None:
        """Stops a model's retries once the request's budget is spent (none without a budget)."""
        if self.plan.max_cost_usd is None:
            return None
        return stop_if_budget_spent(lambda: self.ledger.spent, self.plan.max_cost_usd)

    def sent(self) -> Request:
        """The request as the chain wants it sent (schemas attached, instructions added)."""
        return prepare_request(self.chain, self.asking)


AttemptRunner = Callable[[Turn], AsyncGenerator[StreamDelta | AttemptEnd, None]]


async def judge(
    turn: Turn,
    sent: Request,
    completion: Completion,
    *,
    cost_usd: Decimal,
    latency_s: float,
    retry: int,
    earlier: tuple[Verdict, ...] = (),
    queued_s: float = 0.0,
) -> Attempt:
    """Run the tier's chain on an answer and record the attempt, accepted or rejected.
    `earlier` are verdicts already reached on the streamed text (a doomed prefix).

    An answer that did not finish (cut off, filtered, a tool call nobody offered) is
    rejected without running the chain: no verifier can make it whole."""
    plan, tier, model, chain = turn.plan, turn.tier, turn.model, turn.chain
    problem = unfinished(
        completion,
        accept_truncated=tier.on_truncated == "accept" and not model.structured_output,
        tools_offered=bool(sent.tools) and sent.tool_choice != "none",
    )
    candidate = Candidate(
        request=turn.original,
        sent=sent,
        completion=completion,
        tier=tier.name,
        tier_index=turn.at.tier,
        is_last_tier=turn.at.tier == len(plan.tiers) - 1,
        # the answer as returned, and as a judge is shown it: never with a key in it
        cleaned=redact(clean_output(chain, completion.text)),
        ask=lambda follow_up: call_model(model, follow_up),
    )
    if problem is not None:
        verdicts = (*earlier, Verdict(UNFINISHED, False, problem, score=0.0))
    else:
        verdicts = earlier + await run_chain(
            chain, candidate, stop_at_first_failure=plan.stop_at_first_failure
        )
    return turn.ledger.record(
        Attempt(
            tier=tier.name,
            model=model.model,  # the configured name: servers answer with dated aliases
            outcome=judged(v.passed for v in verdicts),
            usage=completion.usage,
            cost_usd=cost_usd,
            latency_s=latency_s,
            queued_s=queued_s,
            verdicts=verdicts,
            output=candidate.text,
            retry=retry,
            reask=turn.reask,
            finish_reason=completion.finish_reason,
            tool_calls=completion.tool_calls,
            refusal=completion.refusal,
        )
    )


async def call_attempt(turn: Turn) -> AsyncGenerator[AttemptEnd, None]:
    """Call one model (with retries), judge its answer, and put every try in the ledger."""
    model, sent = turn.model, turn.sent()

    async def once(retry: int) -> tuple[Try, int]:
        outcome = await try_once(model, sent)
        if outcome.error is not None:
            turn.ledger.record(
                Attempt(
                    tier=turn.tier.name,
                    model=model.model,
                    outcome=Outcome.ERROR,
                    usage=outcome.usage,
                    cost_usd=outcome.cost_usd,
                    latency_s=outcome.latency_s,
                    queued_s=outcome.queued_s,
                    error=str(outcome.error),
                    error_code=outcome.error.code,
                    retry=retry,
                    reask=turn.reask,
                )
            )
            raise outcome.error
        return outcome, retry

    try:
        answered, retry = await call_with_retries(model.retry_strategy, once, also_stop=turn.budget_stop())
    except ProviderError:
        yield AttemptEnd(turn.ledger[-1])  # `once` recorded the failure
        return
    assert answered.completion is not None  # a try without an error has its answer
    yield AttemptEnd(
        await judge(
            turn,
            sent,
            answered.completion,
            cost_usd=answered.cost_usd,
            latency_s=answered.latency_s,
            queued_s=answered.queued_s,
            retry=retry,
        )
    )
