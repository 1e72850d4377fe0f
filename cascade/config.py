"""The YAML configuration of a cascade, as pydantic models.

`load_config(path)` is the only entry point; any problem becomes a `ConfigError` whose
message names the file and the field (`tiers.1.model: Field required`).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cascade.errors import ConfigError

ProviderName = Literal["openai", "anthropic", "simulated"]

DEFAULT_KEY_ENV: dict[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "simulated": None,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceConfig(_Strict):
    """USD per million tokens."""

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


class RetryConfig(_Strict):
    """How transient failures of one model are retried before moving on."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_wait_s: float = Field(default=0.5, ge=0)
    max_wait_s: float = Field(default=20.0, ge=0)


class ModelConfig(_Strict):
    """One model behind one API: a tier's primary model or one of its alternates."""

    provider: ProviderName
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    price: PriceConfig | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    # simulated provider only: where its canned answers come from ("builtin" = bundled demo set)
    examples: str | None = None

    @property
    def key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_KEY_ENV[self.provider]


class TierConfig(ModelConfig):
    """A rung of the ladder. Alternates are tried, in order, when this model's call fails."""

    name: str = Field(min_length=1)
    alternates: list[ModelConfig] = Field(default_factory=list)


class VerifierConfig(BaseModel):
    """`type` names a registered verifier or `module:attr`; other keys are its settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(min_length=1)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CascadeConfig(_Strict):
    tiers: list[TierConfig] = Field(min_length=1)
    verifiers: list[VerifierConfig] = Field(default_factory=list)
    on_exhausted: Literal["return_best", "raise"] = "return_best"
    max_cost_usd: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _tier_names_unique(self) -> CascadeConfig:
        names = [t.name for t in self.tiers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tier names must be unique; repeated: {', '.join(dupes)}")
        return self


def load_config(path: str | Path) -> CascadeConfig:
    """Read and validate a YAML cascade config."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_config(data, source=str(path))


def parse_config(data: object, *, source: str = "<config>") -> CascadeConfig:
    """Validate an already-parsed config mapping."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping with a `tiers` list")
    try:
        return CascadeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid config:\n{_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem
