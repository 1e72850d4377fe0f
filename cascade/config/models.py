"""The configuration of one model behind one API (provider, model, price, retries, rate
limit): what a tier, an alternate, a judge and a classifier router are made of (validation
only, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceConfig(Strict):
    """USD per million tokens."""

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


class RetryConfig(Strict):
    """How transient failures of one model are retried before moving on."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_wait_s: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    max_wait_s: float = Field(default=20.0, ge=0, allow_inf_nan=False)


class RateLimitConfig(Strict):
    """A model's limits, honoured by batch runs (429s slow a model down on their own)."""

    requests_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tokens_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class ModelConfig(Strict):
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
