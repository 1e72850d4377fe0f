"""Where a request starts: the caller's `start_tier`, else the config's router (rules first in
a hybrid, the classifier or learned router where no rule matched), raised to the caller's
`min_tier`. Without a router or either override there is no route: the cheapest tier."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from cascade.core.routes import Route
from cascade.core.values import ZERO, Request
from cascade.protocols import Closable, Router, hook
from cascade.routing.rules import RuleRouter
from cascade.runtime.ladder import TierModel


class HybridRouter:
    """Rules first; `then` (a classifier or a learned router) only where no rule matched."""

    def __init__(self, rules: RuleRouter, then: Router) -> None:
        self.rules, self.then = rules, then

    async def route(self, request: Request, tags: Mapping[str, str]) -> Route:
        return self.rules.match(request, tags) or await self.then.route(request, tags)

    def wrap_models(self, wrap: Callable[[TierModel], TierModel]) -> None:
        wrap_router_models(self.then, wrap)

    def worst_cost_usd(self, request: Request) -> Decimal:
        return worst_routing_usd(self.then, request)

    async def aclose(self) -> None:
        await close_router(self.then)


def wrap_router_models(router: Router | None, wrap: Callable[[TierModel], TierModel]) -> None:
    """Put a router's own models (a classifier's) behind `wrap` (a batch job's rate limits)."""
    wrapping = getattr(router, "wrap_models", None)
    if callable(wrapping):
        wrapping(wrap)


def worst_routing_usd(router: Router | None, request: Request) -> Decimal:
    """The most routing `request` can cost (a job budget reserves it): a classifier's calls."""
    worst = getattr(router, "worst_cost_usd", None)
    return worst(request) if callable(worst) else ZERO


async def close_router(router: Router | None) -> None:
    if router is not None and (closable := hook(router, Closable)) is not None:
        await closable.aclose()


def check_tier(tier: str | None, tiers: Sequence[str], what: str) -> None:
    """ValueError for a `min_tier` / `start_tier` the cascade does not have."""
    if tier is not None and tier not in tiers:
        raise ValueError(f"{what} {tier!r} is not a tier of this cascade ({', '.join(tiers)})")


def check_starts(min_tier: str | None, start_tier: str | None, tiers: Sequence[str]) -> None:
    """ValueError for a `min_tier` / `start_tier` the cascade does not have, or for a
    `start_tier` below the `min_tier` given with it (the floor would not hold)."""
    check_tier(min_tier, tiers, "min_tier")
    check_tier(start_tier, tiers, "start_tier")
    if min_tier is not None and start_tier is not None and tiers.index(start_tier) < tiers.index(min_tier):
        raise ValueError(f"start_tier {start_tier!r} is below min_tier {min_tier!r}: give one at or above it")


def checked_route(route: object, router: Router, tiers: Sequence[str]) -> Route:
    """`route` as `router` gave it, when it is a Route to one of `tiers`; else a TypeError or
    ValueError naming the router (a router passed in Python may return anything)."""
    name = type(router).__name__
    if not isinstance(route, Route):
        raise TypeError(f"the router {name} returned {type(route).__name__}, not a Route")
    if route.tier not in tiers:
        raise ValueError(
            f"the router {name} routed to {route.tier!r}, not a tier of this cascade ({', '.join(tiers)})"
        )
    return route


async def start_route(
    router: Router | None,
    request: Request,
    tags: Mapping[str, str],
    tiers: Sequence[str],
    *,
    min_tier: str | None = None,
    start_tier: str | None = None,
) -> Route | None:
    """The route of one request (None: no router, no override). `start_tier` wins outright
    (the router is not asked, so it costs nothing); `min_tier` is a floor under the router's
    pick. Both are checked against `tiers`, and a `start_tier` below `min_tier` refused
    (ValueError)."""
    check_starts(min_tier, start_tier, tiers)
    if start_tier is not None:
        return Route(start_tier, "start_tier")
    if router is None:
        return None if min_tier is None else Route(min_tier, "min_tier")
    route = checked_route(await router.route(request, tags), router, tiers)
    if min_tier is not None and tiers.index(min_tier) > tiers.index(route.tier):
        return replace(route, tier=min_tier, by="min_tier", picked=route.tier)
    return route
