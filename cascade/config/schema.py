"""The YAML configuration of a cascade, as pydantic models (validation only, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cascade.config.live import AuditConfig, CacheConfig, LedgerConfig, ShadowConfig

PROVIDER_GROUP = "cascade.providers"  # plug-in providers' entry points
# the built-in providers, and the environment variable each reads its key from
DEFAULT_KEY_ENV: dict[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "simulated": None,
    "replay": None,
}


def known_providers() -> list[str]:
    """The built-in providers, then the installed plug-ins'."""
    return [*DEFAULT_KEY_ENV, *sorted(ep.name for ep in entry_points(group=PROVIDER_GROUP))]


DEFAULT_REASK_PROMPT = (
    "Your previous answer did not pass a check: {reasons}\n"
    "Answer the original request again, correcting this. Reply with the corrected answer only."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceConfig(_Strict):
    """USD per million tokens."""

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


class RetryConfig(_Strict):
    """How transient failures of one model are retried before moving on."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_wait_s: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    max_wait_s: float = Field(default=20.0, ge=0, allow_inf_nan=False)


class RateLimitConfig(_Strict):
    """A model's limits, honoured by batch runs (429s slow a model down on their own)."""

    requests_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tokens_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class ModelConfig(_Strict):
    """One model behind one API: a tier's primary model or one of its alternates."""

    # a built-in (openai, anthropic, simulated, replay) or a `cascade.providers` plug-in
    provider: str
    model: str = Field(min_length=1, pattern=r"\S")
    base_url: str | None = None
    api_key_env: str | None = None
    price: PriceConfig | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    # a stream silent for longer than this is a failed attempt (default: timeout_s)
    idle_timeout_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    # pass the chain's response schema to the provider (OpenAI response_format, Anthropic tool use)
    structured_output: bool = False
    # simulated provider only: where its canned answers come from ("builtin" = bundled demo set)
    examples: str | None = None
    # replay provider only: the recorded-outcomes file (`cascade eval --data` sets it)
    records: str | None = None

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, name: str) -> str:
        if name not in DEFAULT_KEY_ENV and not entry_points(group=PROVIDER_GROUP, name=name):
            raise ValueError(f"unknown provider {name!r} (known: {', '.join(known_providers())})")
        return name

    @property
    def key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.provider)


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


class StreamConfig(_Strict):
    """How `cascade run --stream` and `Cascade.astream` treat text already shown."""

    policy: Literal["buffer", "restart", "finish_degraded"] = "buffer"
    restart_threshold_tokens: int | None = Field(default=None, ge=0)
    restart_threshold_fraction: float = Field(default=0.2, ge=0, le=1)


class CascadeConfig(_Strict):
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
        if "{reasons}" not in self.reask_prompt:
            raise ValueError("reask_prompt must contain {reasons}")
        if (self.audit or self.shadow) and self.ledger is None:
            raise ValueError("audit and shadow write what they find to the ledger: add `ledger: {path: ...}`")
        return self

    def reask_for(self, tier: TierConfig) -> int:
        return self.reask if tier.reask is None else tier.reask
