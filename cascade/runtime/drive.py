"""The tier-by-tier loop of a cascade, shared by plain runs and streams.

Each attempt (a plain call, or a stream under a policy) is made by an attempt runner,
which ends with its `AttemptEnd`; the loop decides what comes next, with the pure
decisions of `cascade.core.policy`, and says it as events.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

from cascade.core.errors import PermanentProviderError
from cascade.core.events import AttemptEnd, CascadeEvent, StreamDelta, StreamRestart, StreamResult
from cascade.core.policy import START, Position, budget_exhausted, next_position, should_reask
from cascade.core.tokens import count_tokens
from cascade.core.values import Attempt, Outcome, Request

if TYPE_CHECKING:
    from cascade.engine import Cascade


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


def _why(attempt: Attempt) -> str:
    failed = next((v for v in attempt.verdicts if not v.passed), None)
    return f"{failed.verifier}: {failed.reason}" if failed else attempt.error or str(attempt.outcome)
