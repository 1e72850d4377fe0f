"""The tier-by-tier loop of a cascade, shared by plain runs and streams.

Each attempt (a plain call, or a stream under a policy) is made by an attempt runner,
which ends with its `AttemptEnd`; the loop decides what comes next with the pure rules
of `cascade.core.policy`, and says it as events.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from cascade.core.errors import ExhaustedError
from cascade.core.events import AttemptEnd, CascadeEvent, StreamRestart, StreamResult
from cascade.core.money import baseline_cost
from cascade.core.policy import (
    START,
    Position,
    budget_exhausted,
    exhaustion_message,
    next_position,
    pick_best,
    should_reask,
    with_feedback,
)
from cascade.core.tokens import count_tokens
from cascade.core.values import Attempt, Outcome, Request, Result
from cascade.logs import get_logger
from cascade.runtime.attempt import AttemptRunner, Turn
from cascade.runtime.ledger import Ledger
from cascade.runtime.plan import CascadePlan


async def drive(
    plan: CascadePlan, request: Request, run_attempt: AttemptRunner, ledger: Ledger | None = None
) -> AsyncGenerator[CascadeEvent, None]:
    """The cascade's answer to `request` as events, one attempt at a time by `run_attempt`
    (`call_attempt` for plain runs, `stream_attempt` for streams); a `StreamResult` last.

    Raises `ExhaustedError` when no answer was verified and the plan says to raise. `ledger`
    (a new one by default) holds the attempts as they are made: a caller that stops reading
    early still knows what was paid for.
    """
    ledger = Ledger() if ledger is None else ledger
    position: Position | None = START
    asking, reasks = request, 0
    stop_reason = "exhausted"
    while position is not None:
        if budget_exhausted(ledger.spent, plan.max_cost_usd):
            stop_reason = "budget"
            break
        end: AttemptEnd | None = None
        turn = Turn(plan, ledger, request, asking, position, reasks)
        # closed with us: a consumer that stops early closes the provider's stream at once
        async with contextlib.aclosing(run_attempt(turn)) as items:
            async for item in items:
                if isinstance(item, AttemptEnd):
                    end = item
                else:
                    yield item
        assert end is not None and end.attempt is not None
        attempt = end.attempt
        if end.degraded or attempt.outcome is Outcome.ACCEPTED:
            stop = "degraded" if end.degraded else "accepted"
            yield StreamResult(
                result_of(plan, request, ledger, len(ledger) - 1, not end.degraded, stop, end.degraded)
            )
            return
        if budget_exhausted(ledger.spent, plan.max_cost_usd):
            stop_reason = "budget"
            if end.shown:  # what was shown of it is void; no model will be called after it
                yield _restart(attempt, None, end.shown)
            break
        if should_reask(attempt.outcome, reasks, plan.max_reasks(attempt.tier)):
            asking, reasks = with_feedback(asking, attempt, plan.reask_prompt), reasks + 1
            to_tier: str | None = attempt.tier
        else:
            position = next_position(plan.models_per_tier, position, attempt.outcome)
            asking, reasks = request, 0
            to_tier = plan.tiers[position.tier].name if position else None
        yield _restart(attempt, to_tier, end.shown)
    yield StreamResult(exhausted(plan, request, ledger, stop_reason))


def result_of(
    plan: CascadePlan,
    request: Request,
    ledger: Ledger,
    returned: int | None,
    verified: bool,
    stop_reason: str,
    degraded: bool = False,
) -> Result:
    """The result of `request`: every attempt, the one returned, and the top tier's baseline."""
    top = plan.tiers[-1]
    attempts = tuple(ledger)
    baseline = baseline_cost(
        attempts, returned, top.name, top.primary.model, top.primary.price, request.text()
    )
    output = attempts[returned].output if returned is not None else None
    return Result(output, verified, attempts, returned, baseline, stop_reason, degraded)


def exhausted(plan: CascadePlan, request: Request, ledger: Ledger, stop_reason: str) -> Result:
    """No answer verified: the best unverified one (`return_best`), else `ExhaustedError`."""
    best = pick_best(ledger.attempts, plan.tier_rank)
    result = result_of(plan, request, ledger, best, False, stop_reason)
    if plan.on_exhausted == "return_best" and best is not None:
        get_logger().info("returning_unverified", tier=result.tier, stop_reason=stop_reason)
        return result
    raise ExhaustedError(exhaustion_message(ledger.attempts, stop_reason, plan.max_cost_usd), result)


def _restart(attempt: Attempt, to_tier: str | None, shown: str) -> StreamRestart:
    return StreamRestart(attempt.tier, to_tier, _why(attempt), len(shown), count_tokens(shown, attempt.model))


def _why(attempt: Attempt) -> str:
    failed = next((v for v in attempt.verdicts if not v.passed), None)
    return f"{failed.verifier}: {failed.reason}" if failed else attempt.error or str(attempt.outcome)
