"""The figures of a ledger, by group: spend, savings, escalation and unverified rates,
cache hits, audit cost and latency percentiles (`cascade report --ledger`).

Savings count only on verified answers, as the batch report counts them. A cache hit is
counted apart and left out of the latency percentiles (nothing was called).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cascade.core.errors import ConfigError
from cascade.core.values import ZERO

ROW_KEYS = ("tier", "model", "day")  # grouped by a column of the row; any other name is a tag
NO_VALUE = "(none)"


def check_group_key(by: str, results: Sequence[Mapping[str, Any]]) -> None:
    """A ConfigError for a `--by` that is neither a column nor a tag of any result (a typo
    would show every request as one "(none)" group)."""
    if by in ROW_KEYS or not results:
        return
    tags = sorted({name for row in results for name in row["tags"]})
    if by not in tags:
        known = ", ".join([*ROW_KEYS, *tags])
        raise ConfigError(f"--by {by!r}: no result has that tag (group by: {known})")


def group_of(row: Mapping[str, Any], by: str) -> str:
    value = row.get(by) if by in ROW_KEYS else row["tags"].get(by)
    return NO_VALUE if value is None else str(value)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile `q` (0-100) of `values`; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class GroupFigures:
    """One group's requests and what they cost."""

    name: str
    requests: int = 0
    verified: int = 0
    escalated: int = 0
    fell_back: int = 0
    cache_hits: int = 0
    spend_usd: Decimal = ZERO
    wasted_usd: Decimal = ZERO
    verification_usd: Decimal = ZERO
    routing_usd: Decimal = ZERO
    saved_usd: Decimal = ZERO
    audit_usd: Decimal = ZERO
    audits: int = 0
    shadow_usd: Decimal = ZERO  # what shadow cascades spent on these requests, apart
    latencies: list[float] = field(default_factory=list, repr=False)

    def add(self, row: Mapping[str, Any]) -> None:
        self.requests += 1
        self.verified += bool(row["verified"])
        self.escalated += bool(row["escalated"])
        self.fell_back += bool(row["fell_back"])
        self.spend_usd += row["total_usd"] or ZERO
        self.wasted_usd += row["wasted_usd"] or ZERO
        self.verification_usd += row["verification_usd"] or ZERO
        self.routing_usd += row["routing_usd"] or ZERO
        self.saved_usd += row["saved_usd"] or ZERO  # null for an unverified answer: nothing saved
        if row["cache"] == "hit":
            self.cache_hits += 1
        else:
            self.latencies.append(float(row["latency_s"] or 0.0))

    def rate(self, count: int) -> float:
        return count / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.name,
            "requests": self.requests,
            "verified": self.verified,
            "unverified_rate": round(self.rate(self.requests - self.verified), 6),
            "escalation_rate": round(self.rate(self.escalated), 6),
            "fallback_rate": round(self.rate(self.fell_back), 6),
            "cache_hits": self.cache_hits,
            "spend_usd": float(self.spend_usd),
            "wasted_usd": float(self.wasted_usd),
            "verification_usd": float(self.verification_usd),
            "routing_usd": float(self.routing_usd),
            "saved_usd": float(self.saved_usd),
            "audits": self.audits,
            "audit_usd": float(self.audit_usd),
            "shadow_usd": float(self.shadow_usd),
            **latency_figures(self.latencies),
        }


@dataclass
class TierLatency:
    """The calls made on one tier: how many, and how long they took."""

    tier: str
    accepted: int = 0  # requests whose answer came from it (the tier distribution)
    routed: int = 0  # requests a router (or the caller) started at it
    latencies: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, requests: int) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "calls": len(self.latencies),
            "accepted": self.accepted,
            "routed": self.routed,
            "share_of_requests": round(self.accepted / requests, 6) if requests else 0.0,
            **latency_figures(self.latencies),
        }


@dataclass
class LedgerReport:
    by: str
    groups: list[GroupFigures]
    total: GroupFigures
    tiers: list[TierLatency]
    drifting: list[dict[str, Any]]  # alarms up: the last alarm row of each group, when it is a drift

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "groups": [g.to_dict() for g in self.groups],
            "total": self.total.to_dict(),
            "tiers": [t.to_dict(self.total.requests) for t in self.tiers],
            "drift_alarms": self.drifting,
        }


def ledger_report(
    by: str,
    results: Iterable[Mapping[str, Any]],
    attempts: Iterable[Mapping[str, Any]],
    audits: Iterable[Mapping[str, Any]],
    alarms: Iterable[Mapping[str, Any]],
    shadows: Iterable[Mapping[str, Any]] = (),
) -> LedgerReport:
    """The report of ledger rows (one `since` applied to all of them), grouped `by`; a
    shadow run counts in the group of the live request it shadowed."""
    groups: dict[str, GroupFigures] = {}
    total = GroupFigures("(all)")
    tiers: dict[str, TierLatency] = {}
    for row in results:
        name = group_of(row, by)
        groups.setdefault(name, GroupFigures(name)).add(row)
        total.add(row)
        if row["verified"] and row["tier"]:
            tiers.setdefault(row["tier"], TierLatency(row["tier"])).accepted += 1
        if row["route_tier"]:
            tiers.setdefault(row["route_tier"], TierLatency(row["route_tier"])).routed += 1
    for attempt in attempts:
        if attempt["outcome"] == "error" and not attempt["latency_s"]:
            continue  # a call that never went out (no key, an open circuit): no call to time
        tier = tiers.setdefault(attempt["tier"], TierLatency(attempt["tier"]))
        tier.latencies.append(float(attempt["latency_s"]))  # failed calls too: they kept it waiting
    for audit in audits:
        name = group_of(audit, by)
        for figures in (groups.setdefault(name, GroupFigures(name)), total):
            figures.audits += 1
            figures.audit_usd += audit["audit_usd"] or ZERO
    for shadow in shadows:
        name = group_of({**shadow, "tier": shadow["live_tier"], "model": None}, by)
        for figures in (groups.setdefault(name, GroupFigures(name)), total):
            figures.shadow_usd += shadow["shadow_usd"] or ZERO
    ordered = sorted(groups.values(), key=lambda g: (-g.spend_usd, g.name))
    return LedgerReport(by, ordered, total, sorted(tiers.values(), key=lambda t: t.tier), alarms_up(alarms))


def alarms_up(alarms: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The groups whose last alarm row is a drift (not since recovered or cleared)."""
    last: dict[tuple[Any, Any, Any], Mapping[str, Any]] = {}
    cleared: dict[tuple[Any, Any], float] = defaultdict(float)
    for alarm in alarms:  # oldest first
        if alarm["kind"] == "cleared":
            cleared[(alarm["tier"], alarm["grp"])] = alarm["ts"]
        else:
            last[(alarm["config"], alarm["tier"], alarm["grp"])] = alarm
    up = []
    for (config, tier, grp), alarm in sorted(last.items(), key=lambda kv: kv[1]["ts"]):
        if alarm["kind"] == "drift" and alarm["ts"] > max(cleared[(tier, grp)], cleared[(tier, "")]):
            up.append(
                {
                    "tier": tier,
                    "group": grp or "(all)",
                    "config": str(config)[:12],
                    "since_ts": alarm["ts"],
                    "upper_bound": round(float(alarm["bound"]), 6),
                    "audited": alarm["audited"],
                    "disagreements": alarm["disagreements"],
                }
            )
    return up


def latency_figures(latencies: Sequence[float]) -> dict[str, float | None]:
    """The p50, p95 and p99 of `latencies`, as the reports name them."""
    return {f"latency_p{q}_s": _rounded(percentile(latencies, q)) for q in (50, 95, 99)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
