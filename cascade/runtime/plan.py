"""The frozen plan of a cascade: everything the runtime needs to answer a request."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Literal

from cascade.config import DEFAULT_REASK_PROMPT
from cascade.core.policy import StreamPolicy
from cascade.protocols import Router, Verifier
from cascade.runtime.ladder import Tier

OnExhausted = Literal["return_best", "raise"]
ON_EXHAUSTED: tuple[OnExhausted, ...] = ("return_best", "raise")


@dataclass(frozen=True)
class CascadePlan:
    """Tiers, their verifier chains, and the rules for reasks, budget, exhaustion and streams.

    `verifiers` is the chain of every tier that `chains` does not name. `router`, when set,
    picks where each request's ladder starts (the plan's tiers stay the whole ladder). `reask` is how many
    times a rejected answer is asked again on the same tier, for every tier or per tier
    name (tiers it does not name: 0).
    """

    tiers: tuple[Tier, ...]
    verifiers: tuple[Verifier, ...] = ()
    chains: Mapping[str, tuple[Verifier, ...]] = field(default_factory=dict)
    on_exhausted: OnExhausted = "return_best"
    max_cost_usd: Decimal | None = None
    stop_at_first_failure: bool = True
    reask: int | Mapping[str, int] = 0
    reask_prompt: str = DEFAULT_REASK_PROMPT
    stream_policy: StreamPolicy = field(default_factory=StreamPolicy)
    router: Router | None = None  # picks the starting tier of each request (`cascade.routing`)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a cascade needs at least one tier")
        if self.on_exhausted not in ON_EXHAUSTED:
            raise ValueError(f"on_exhausted must be one of {', '.join(ON_EXHAUSTED)}")
        if self.router is not None and not callable(getattr(self.router, "route", None)):
            kind = type(self.router).__name__
            raise TypeError(
                f"router must have an async route(request, tags) method returning a Route, not {kind}"
            )

    def chain(self, tier: str) -> tuple[Verifier, ...]:
        """The verifiers that judge answers of `tier`."""
        return self.chains.get(tier, self.verifiers)

    def max_reasks(self, tier: str) -> int:
        return self.reask if isinstance(self.reask, int) else self.reask.get(tier, 0)

    # read on every attempt; a frozen dataclass keeps cached values in its __dict__
    @cached_property
    def models_per_tier(self) -> tuple[int, ...]:
        return tuple(len(t.models) for t in self.tiers)

    @cached_property
    def tier_rank(self) -> dict[str, int]:
        return {t.name: i for i, t in enumerate(self.tiers)}

    def starting_at(self, tier: str) -> CascadePlan:
        """This plan without the tiers below `tier` (ValueError for a tier it does not have)."""
        if tier not in self.tier_rank:
            raise ValueError(f"min_tier {tier!r} is not a tier of this cascade ({', '.join(self.tier_rank)})")
        return replace(self, tiers=self.tiers[self.tier_rank[tier] :])

    def checking_first(self, *verifiers: Verifier, keep_own: AbstractSet[str] = frozenset()) -> CascadePlan:
        """This plan with `verifiers` first in every chain. One named in `keep_own` is not
        added to a chain that already holds a verifier of that name (its own settings win)."""

        def extended(chain: tuple[Verifier, ...]) -> tuple[Verifier, ...]:
            own = {getattr(v, "name", None) for v in chain}
            added = [v for v in verifiers if getattr(v, "name", None) not in keep_own & own]
            return (*added, *chain)

        return replace(
            self,
            verifiers=extended(self.verifiers),
            chains={tier: extended(chain) for tier, chain in self.chains.items()},
        )

    def all_verifiers(self) -> list[Verifier]:
        """Every verifier of every chain, each once (a verifier may sit in several chains)."""
        seen: dict[int, Verifier] = {}
        for verifier in [*self.verifiers, *(v for chain in self.chains.values() for v in chain)]:
            seen.setdefault(id(verifier), verifier)
        return list(seen.values())
