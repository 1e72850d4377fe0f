"""The runtime ladder: tiers of models, each with its provider, price and retry policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from cascade.config import RateLimitConfig, RetryConfig
from cascade.core.money import Pricing
from cascade.core.policy import ON_TRUNCATED, OnTruncated
from cascade.protocols import ConfiguredProvider, Provider
from cascade.runtime.retry import RetryStrategy


@dataclass(frozen=True)
class TierModel:
    """One callable model of a tier."""

    provider: Provider
    price: Pricing
    retry: RetryConfig = field(default_factory=RetryConfig)
    idle_timeout_s: float | None = None  # streams: longest silence before the attempt fails
    # the config's limits (in force through a ConfiguredLimit provider; a batch job's own
    # limiter starts from them)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)

    # Worked out once per model (a frozen dataclass keeps cached values in its __dict__):
    # they are read on every call.

    @cached_property
    def max_tokens(self) -> int | None:
        """The output limit set in the tier's params, if any."""
        if not isinstance(self.provider, ConfiguredProvider):
            return None
        params = self.provider.params
        value = params.get("max_tokens", params.get("max_completion_tokens"))
        return value if isinstance(value, int) else None

    @property
    def model(self) -> str:
        return self.provider.model

    @cached_property
    def structured_output(self) -> bool:
        """Does this model get the response schema as structured output (its adapter says)?"""
        return isinstance(self.provider, ConfiguredProvider) and bool(self.provider.structured_output)

    @cached_property
    def retry_strategy(self) -> RetryStrategy:
        return RetryStrategy.of(self.retry)


@dataclass(frozen=True)
class Tier:
    """A rung of the ladder: its primary model first, then alternates tried on failure.

    `on_truncated` decides an answer cut off at a token limit: "reject" (the default) or
    "accept" (then the verifiers judge it). A model with structured output always rejects
    one: half a JSON document is no answer.
    """

    name: str
    models: tuple[TierModel, ...]
    on_truncated: OnTruncated = "reject"

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError(f"tier {self.name!r} has no model")
        if self.on_truncated not in ON_TRUNCATED:
            raise ValueError(f"tier {self.name!r}: on_truncated must be 'reject' or 'accept'")

    @property
    def primary(self) -> TierModel:
        return self.models[0]
