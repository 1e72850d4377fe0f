"""Pure decisions of the cascade: where to go next, which answer is best, when money is out.

No I/O here, so every rule can be tested exhaustively with Hypothesis; the engine is a
short driver around these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cascade.types import Attempt, Outcome


@dataclass(frozen=True, order=True)
class Position:
    """A model in the ladder: tier `tier`, model `model` (0 = primary, then alternates)."""

    tier: int
    model: int


START = Position(0, 0)


def next_position(models_per_tier: Sequence[int], here: Position, outcome: Outcome) -> Position | None:
    """Where to go after `outcome` at `here`; None when the cascade is done.

    An accepted answer ends the cascade. A rejected answer escalates to the next tier:
    an alternate is the same class of model and would likely be rejected too. A failed
    call (or an aborted one) tries the tier's next alternate, then escalates.
    """
    if outcome is Outcome.ACCEPTED:
        return None
    if outcome is not Outcome.REJECTED and here.model + 1 < models_per_tier[here.tier]:
        return Position(here.tier, here.model + 1)
    if here.tier + 1 < len(models_per_tier):
        return Position(here.tier + 1, 0)
    return None


def should_reask(outcome: Outcome, reasks_done: int, max_reasks: int) -> bool:
    """Ask the same model again, with the failure as feedback, before escalating?

    Only a rejected answer is reasked (a failed call has nothing to give feedback on), and
    at most `max_reasks` times per tier.
    """
    return outcome is Outcome.REJECTED and reasks_done < max_reasks


def budget_exhausted(spent: Decimal, budget: Decimal | None) -> bool:
    """True once a request has spent its whole budget: no new attempt may start."""
    return budget is not None and spent >= budget


def pick_best(attempts: Sequence[Attempt], tier_rank: dict[str, int]) -> int | None:
    """Index of the best rejected answer, for `on_exhausted: return_best`.

    Best = most verifiers passed, then the highest tier (the stronger model), then the
    latest attempt. Failed calls have no answer and are never picked.
    """
    best: tuple[int, int, int] | None = None
    best_index: int | None = None
    for i, attempt in enumerate(attempts):
        if attempt.outcome is not Outcome.REJECTED or attempt.output is None:
            continue
        key = (sum(v.passed for v in attempt.verdicts), tier_rank.get(attempt.tier, -1), i)
        if best is None or key > best:
            best, best_index = key, i
    return best_index
