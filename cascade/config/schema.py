"""The YAML configuration of a cascade, as pydantic models (validation only, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cascade.config.live import AuditConfig, CacheConfig, LedgerConfig, ShadowConfig
from cascade.config.models import (  # re-exported: the schema is one import for every section
    DEFAULT_KEY_ENV,
    PROVIDER_GROUP,
    ModelConfig,
    PriceConfig,
    RateLimitConfig,
    RetryConfig,
    Strict,
    known_providers,
)
from cascade.config.routing import RouterConfig

__all__ = [
    "DEFAULT_KEY_ENV",
    "DEFAULT_REASK_PROMPT",
    "PROVIDER_GROUP",
    "CascadeConfig",
    "ModelConfig",
    "PriceConfig",
    "RateLimitConfig",
    "RetryConfig",
    "RouterConfig",
    "StreamConfig",
    "TierConfig",
    "VerifierConfig",
    "known_providers",
]

DEFAULT_REASK_PROMPT = (
    "Your previous answer did not pass a check: {reasons}\n"
    "Answer the original request again, correcting this. Reply with the corrected answer only."
)


class TierConfig(ModelConfig):
    """A rung of the ladder. Alternates are tried, in order, when this model's call fails."""

    name: str = Field(min_length=1)
    alternates: list[ModelConfig] = Field(default_factory=list)
    reask: int | None = Field(default=None, ge=0, le=10)  # overrides the cascade's `reask`
    # an answer cut off at a token limit: rejected (escalated), or judged by the verifiers
    on_truncated: Literal["reject", "accept"] = "reject"

    @model_validator(mode="after")
    def _structured_output_rejects_truncation(self) -> TierConfig:
        structured = self.structured_output or any(alt.structured_output for alt in self.alternates)
        if self.on_truncated == "accept" and structured:
            raise ValueError(
                "on_truncated: accept cannot be combined with structured_output: a truncated "
                "structured answer is always rejected"
            )
        return self


class VerifierConfig(BaseModel):
    """`type` names a registered verifier or `module:attr`; other keys are its settings.

    `tiers` / `skip_tiers` limit the tiers it runs on; `overrides` maps a tier name to
    settings that replace the defaults on that tier. `verifiers` holds the children of the
    `all` and `any` combinators.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(min_length=1)
    tiers: list[str] | None = None
    skip_tiers: list[str] = Field(default_factory=list)
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    verifiers: list[VerifierConfig] | None = None

    def applies_to(self, tier: str) -> bool:
        return (self.tiers is None or tier in self.tiers) and tier not in self.skip_tiers

    def tier_names(self) -> set[str]:
        """Every tier name this entry (and its children) refers to."""
        names = set(self.tiers or ()) | set(self.skip_tiers) | set(self.overrides)
        for child in self.verifiers or ():
            names |= child.tier_names()
        return names

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StreamConfig(Strict):
    """How `cascade run --stream` and `Cascade.astream` treat text already shown."""

    policy: Literal["buffer", "restart", "finish_degraded"] = "buffer"
    restart_threshold_tokens: int | None = Field(default=None, ge=0)
    restart_threshold_fraction: float = Field(default=0.2, ge=0, le=1)


class CascadeConfig(Strict):
    tiers: list[TierConfig] = Field(min_length=1)
    verifiers: list[VerifierConfig] = Field(default_factory=list)
    on_exhausted: Literal["return_best", "raise"] = "return_best"
    max_cost_usd: Decimal | None = Field(default=None, gt=0)
    run_all_verifiers: bool = False  # True: every verifier runs, for diagnostics
    reask: int = Field(default=0, ge=0, le=10)  # retries on the same tier with the failure as feedback
    reask_prompt: str = DEFAULT_REASK_PROMPT
    stream: StreamConfig = Field(default_factory=StreamConfig)
    ledger: LedgerConfig | None = None
    cache: CacheConfig | None = None
    audit: AuditConfig | None = None
    shadow: ShadowConfig | None = None
    router: RouterConfig | None = None

    @field_validator("shadow", mode="before")
    @classmethod
    def _shadow_file(cls, value: Any) -> Any:
        return {"config": value} if isinstance(value, str) else value  # `shadow: other.yaml`

    @model_validator(mode="after")
    def _tier_names_unique_and_known(self) -> CascadeConfig:
        names = [t.name for t in self.tiers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tier names must be unique; repeated: {', '.join(dupes)}")
        for i, verifier in enumerate(self.verifiers):
            unknown = sorted(verifier.tier_names() - set(names))
            if unknown:
                raise ValueError(f"verifiers.{i} names unknown tiers: {', '.join(unknown)}")
        if self.router is not None:
            unknown = self.router.unknown_tiers(names)
            if unknown:
                raise ValueError(f"{'; '.join(unknown)} (tiers: {', '.join(names)})")
        if "{reasons}" not in self.reask_prompt:
            raise ValueError("reask_prompt must contain {reasons}")
        if (self.audit or self.shadow) and self.ledger is None:
            raise ValueError("audit and shadow write what they find to the ledger: add `ledger: {path: ...}`")
        return self

    def reask_for(self, tier: TierConfig) -> int:
        return self.reask if tier.reask is None else tier.reask
