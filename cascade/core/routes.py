"""Where a request's ladder starts, and why: the router's decision as a value, and the pure
rule by which a scoring router (the learned one) picks the starting tier."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)


@dataclass(frozen=True)
class Route:
    """The tier a request started at and what chose it.

    `by` is "rule N" (1-based, in the config's order), "no rule" (no rule matched: the
    cheapest tier), "classifier", "learned", "min_tier" (the caller's floor raised the
    router's pick), or "start_tier" (the caller chose, no router asked). `score` is the
    learned router's probability for the chosen tier. `cost_usd` is what routing cost (a
    classifier's calls); `fallback` says why a classifier's label was not used, or why the
    request started above the tier chosen (a drift alarm took that tier out of service; its
    `picked` is then the tier chosen).
    """

    tier: str
    by: str
    score: float | None = None
    cost_usd: Decimal = ZERO
    fallback: str | None = None
    picked: str | None = None  # the router's own pick, when `min_tier` (or a drift alarm) raised it

    def __post_init__(self) -> None:
        """A route a router made by hand is checked here, not where it would go wrong later:
        a negative cost would be taken off the request's bill and budget."""
        for name in ("tier", "by"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TypeError(f"Route.{name} must be a non-empty string, not {getattr(self, name)!r}")
        cost = self.cost_usd
        if isinstance(cost, bool) or not isinstance(cost, Decimal | int | float):
            raise TypeError(f"Route.cost_usd must be a Decimal, not {type(cost).__name__}")
        cost = cost if isinstance(cost, Decimal) else Decimal(str(cost))
        if not cost.is_finite() or cost < 0:
            raise ValueError(f"Route.cost_usd must be a finite amount of 0 or more, not {cost}")
        object.__setattr__(self, "cost_usd", cost)
        score = self.score
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
        ):
            raise ValueError(f"Route.score must be a finite number or None, not {score!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tier": self.tier, "by": self.by, "score": self.score}
        out["cost_usd"] = float(self.cost_usd)
        if self.fallback is not None:
            out["fallback"] = self.fallback
        if self.picked is not None:
            out["picked"] = self.picked
        return out


def out_of_service(route: Route, tier: str) -> Route:
    """`route` moved up to `tier`, the tier it named being out of service (its drift alarm is
    up): the request starts there, and the route says so."""
    why = f"{route.tier!r} is out of service (its drift alarm is up): started at {tier!r}"
    return replace(
        route,
        tier=tier,
        picked=route.picked or route.tier,
        fallback=why if route.fallback is None else f"{route.fallback}; {why}",
    )


def routed_tier(scores: Sequence[float], cuts: Sequence[float]) -> int:
    """The starting tier of a scoring router: the cheapest tier whose score (its probability
    of an accepted, correct answer) reaches that tier's cut-off; the top tier when none does.
    `scores` and `cuts` cover every tier but the top, cheapest first; a cut-off of 0 always
    starts at its tier (0 on the cheapest tier: the plain cascade)."""
    for k, (score, cut) in enumerate(zip(scores, cuts, strict=True)):
        if score >= cut:
            return k
    return len(scores)


def raised_to(tier: int, floor: int | None) -> int:
    """A routed tier with the caller's `min_tier` as its floor."""
    return tier if floor is None else max(tier, floor)
