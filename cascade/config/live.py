"""The live sections of a config: the ledger, the cache of verified answers, the shadow
audit and a shadow cascade (validation only, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerConfig(_Strict):
    """Where every result is recorded: a SQLite file (`path`, the embedded default) or a
    PostgreSQL database (`url`, for gateways on several machines); exactly one of them."""

    path: str | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    # rows waiting for the writer beyond this are dropped, and counted: a request never waits
    max_pending: int = Field(default=100_000, ge=1)

    @model_validator(mode="after")
    def _one_place(self) -> LedgerConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `path` (SQLite) or `url` (postgresql://...)")
        return self


class CacheConfig(_Strict):
    """Verified answers kept by exact request, served again at no cost."""

    path: str = Field(min_length=1)
    ttl_s: float = Field(default=86_400.0, gt=0, allow_inf_nan=False)
    max_entries: int = Field(default=100_000, ge=1)


class AuditConfig(_Strict):
    """A sampled share of the answers accepted below the top tier, asked again in the
    background of the top tier (`against: top`) or judged (`against: judge`), to estimate
    each tier's false-accept rate with a Clopper-Pearson upper bound."""

    sample: float = Field(gt=0, le=1, allow_inf_nan=False)
    against: Literal["top", "judge"] = "top"
    # `against: judge`: a verifier config (default type: judge) whose pass means "correct"
    judge: dict[str, Any] | None = None
    # how two answers are compared against the top tier: parsed objects when the answer is
    # structured (auto), else the text exactly or normalised (case, spaces, end punctuation)
    match: Literal["auto", "exact", "normalised"] = "auto"
    max_false_accept: float = Field(default=0.05, gt=0, lt=1, allow_inf_nan=False)
    confidence: float = Field(default=0.95, gt=0, lt=1, allow_inf_nan=False)
    window: int = Field(default=500, ge=10)  # the latest audits of a tier the estimate reads
    on_drift: Literal["warn", "tighten"] = "warn"
    max_usd_per_day: Decimal | None = Field(default=None, gt=0)
    max_in_flight: int = Field(default=4, ge=1)  # audits beyond this are skipped, and counted
    seed: int | None = None  # for a reproducible sample

    @model_validator(mode="after")
    def _judge_when_judged(self) -> AuditConfig:
        if self.against == "judge" and self.judge is None:
            raise ValueError("against: judge needs a `judge:` verifier config (provider, model, ...)")
        if self.against == "top" and self.judge is not None:
            raise ValueError("`judge:` is read only with against: judge")
        return self


class ShadowConfig(_Strict):
    """A candidate cascade run in the background on a sample of live requests; both
    outcomes are recorded, the candidate's answer is never returned."""

    config: str = Field(min_length=1)
    sample: float = Field(default=0.1, gt=0, le=1, allow_inf_nan=False)
    max_usd_per_day: Decimal | None = Field(default=None, gt=0)
    max_in_flight: int = Field(default=4, ge=1)
    seed: int | None = None
