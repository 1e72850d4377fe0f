"""The figures of a ledger's audits (`cascade audit`): per tier (and per tag slice, with
`by`), how many answers were audited, how many disagreed with the reference, the rate with
its Clopper-Pearson interval, the alarm state, and the trend by day."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cascade.core.binomial import binomial_lower_bound, binomial_upper_bound
from cascade.core.values import ZERO
from cascade.live.spend import alarms_up


@dataclass
class AuditLine:
    tier: str
    group: str  # "" for the whole tier, "name=value" for a tag's slice, a date for the trend
    audited: int = 0
    disagreements: int = 0
    failed: int = 0  # audits whose reference gave no answer: counted neither way
    audit_usd: Decimal = ZERO

    def add(self, audit: Mapping[str, Any]) -> None:
        self.audit_usd += audit["audit_usd"] or ZERO
        if audit["agreed"] is None:
            self.failed += 1
            return
        self.audited += 1
        self.disagreements += not audit["agreed"]

    def to_dict(self, confidence: float, limit: float) -> dict[str, Any]:
        """The figures; `lower`/`upper` are the two-sided interval at `confidence` (each side
        at (1 + confidence) / 2), `bound` the one-sided upper bound the limit is held to."""
        n, k = self.audited, self.disagreements
        side = (1 + confidence) / 2
        lower = binomial_lower_bound(k, n, side) if n else 0.0
        upper = binomial_upper_bound(k, n, side) if n else 1.0
        bound = binomial_upper_bound(k, n, confidence) if n else 1.0
        return {
            "tier": self.tier,
            "group": self.group or "(all)",
            "audited": n,
            "disagreements": k,
            "rate": round(k / n, 6) if n else None,
            "lower": round(lower, 6),
            "upper": round(upper, 6),
            "bound": round(bound, 6),
            "within_limit": bound <= limit,
            "failed": self.failed,
            "audit_usd": float(self.audit_usd),
        }


def audit_figures(
    audits: Iterable[Mapping[str, Any]],
    alarms: Iterable[Mapping[str, Any]],
    *,
    confidence: float,
    limit: float,
    by: str | None = None,
) -> dict[str, Any]:
    """Per tier (and per value of the tag `by`), then per tier and day."""
    lines: dict[tuple[str, str], AuditLine] = {}
    days: dict[tuple[str, str], AuditLine] = {}
    for audit in audits:
        tier = str(audit["tier"])
        keys = [(tier, "")]
        if by is not None:
            keys.append((tier, f"{by}={audit['tags'].get(by, '(none)')}"))
        for key in keys:
            lines.setdefault(key, AuditLine(*key)).add(audit)
        day = (tier, str(audit["day"]))
        days.setdefault(day, AuditLine(*day)).add(audit)
    return {
        "confidence": confidence,
        "limit": limit,
        "tiers": [line.to_dict(confidence, limit) for _, line in sorted(lines.items())],
        "by_day": [line.to_dict(confidence, limit) for _, line in sorted(days.items())],
        "drift_alarms": alarms_up(alarms),
    }
