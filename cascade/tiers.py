"""The runtime ladder: tiers of models, each with its provider, price and retry policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from cascade.accounting import Pricing
from cascade.config import RetryConfig
from cascade.providers.base import Provider


@dataclass(frozen=True)
class TierModel:
    """One callable model of a tier."""

    provider: Provider
    price: Pricing
    retry: RetryConfig = field(default_factory=RetryConfig)
    idle_timeout_s: float | None = None  # streams: longest silence before the attempt fails

    @property
    def max_tokens(self) -> int | None:
        """The output limit set in the tier's params, if any."""
        params = getattr(self.provider, "params", None) or {}
        value = params.get("max_tokens", params.get("max_completion_tokens"))
        return value if isinstance(value, int) else None

    @property
    def model(self) -> str:
        return self.provider.model


@dataclass(frozen=True)
class Tier:
    """A rung of the ladder: its primary model first, then alternates tried on failure."""

    name: str
    models: tuple[TierModel, ...]

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError(f"tier {self.name!r} has no model")

    @property
    def primary(self) -> TierModel:
        return self.models[0]
