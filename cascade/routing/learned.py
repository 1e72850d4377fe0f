"""The learned router: a request starts at the cheapest tier whose learned probability of an
accepted, correct answer reaches that tier's cut-off (`cascade.core.routes.routed_tier`), else
at the top. The model comes from `cascade train-router` (`cascade.routing.learned_model`); the
cascade still verifies and escalates from the tier it starts at.
"""

from __future__ import annotations

from collections.abc import Mapping

from cascade.core.requests import Request
from cascade.core.routes import Route, routed_tier
from cascade.routing.learned_model import RouterModel, checked_cut


class LearnedRouter:
    """Routes by `model`'s scores; `cuts` (tier name -> cut-off from 0 to 1) overrides the
    file's default cut-off of the tiers it names."""

    by = "learned"

    def __init__(self, model: RouterModel, cuts: Mapping[str, float] | None = None) -> None:
        self.model = model
        self.cuts = _cuts(model, cuts or {})

    @property
    def tiers(self) -> tuple[str, ...]:
        return self.model.tiers

    def scores(self, request: Request) -> tuple[float, ...]:
        """P(accepted and correct) of each tier below the top, cheapest first (pure)."""
        return self.model.scores(request)

    def pick(self, scores: tuple[float, ...]) -> Route:
        """The route these scores give under this router's cut-offs."""
        k = routed_tier(scores, self.cuts)
        return Route(self.model.tiers[k], self.by, scores[k] if k < len(scores) else None)

    async def route(self, request: Request, tags: Mapping[str, str]) -> Route:
        try:
            scores = self.scores(request)
        except Exception as exc:  # a router never fails a request: the top tier is the safe start
            return Route(self.model.tiers[-1], self.by, fallback=f"learned router could not score: {exc}")
        return self.pick(scores)


def _cuts(model: RouterModel, given: Mapping[str, float]) -> tuple[float, ...]:
    below = model.tiers[:-1]
    for name in given:
        if name == model.tiers[-1]:
            raise ValueError(
                f"cuts: {name!r} is the top tier, which has no cut-off (a request no cheaper tier takes "
                "starts there)"
            )
        if name not in below:
            raise ValueError(f"cuts: {name!r} is not a tier below the top (those are {list(below)})")
    return tuple(
        checked_cut(given[name], f"cuts[{name!r}]") if name in given else default
        for name, default in zip(below, model.cuts, strict=True)
    )
