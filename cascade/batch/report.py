"""The figures of a batch job, computed from its output lines (so they always agree with
them). `cascade report OUT.jsonl` recomputes them; `cascade.cli.render` draws the table."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ZERO = Decimal(0)
MONEY = ("total_usd", "wasted_usd", "verification_usd", "baseline_usd", "saved_usd")


@dataclass
class BatchReport:
    """Totals over a job's output records. Money is summed as Decimal from the records."""

    items: int = 0
    line_errors: int = 0
    verified: int = 0
    unverified: int = 0
    failed: int = 0  # no model answered at all
    degraded: int = 0
    escalated: int = 0  # more than one tier was tried
    fell_back: int = 0  # at least one call failed (error) and the item went on elsewhere
    attempts: int = 0
    accepted_by_tier: Counter[str] = field(default_factory=Counter)
    money: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MONEY, ZERO))

    def add(self, record: dict[str, Any]) -> None:
        if record.get("id") is None and "error" in record and "attempts" not in record:
            self.line_errors += 1
            return
        self.items += 1
        attempts = record.get("attempts") or []
        self.attempts += len(attempts)
        if record.get("verified"):
            self.verified += 1
            self.accepted_by_tier[str(record.get("tier"))] += 1
        else:
            self.unverified += 1
        if record.get("output") is None:
            self.failed += 1
        if record.get("degraded"):
            self.degraded += 1
        if len({a.get("tier") for a in attempts}) > 1:
            self.escalated += 1
        if any(a.get("outcome") == "error" for a in attempts):
            self.fell_back += 1
        cost = record.get("cost") or {}
        for key in MONEY:
            self.money[key] += Decimal(str(cost.get(key, 0)))
        # an item run again (--retry-failed): what its earlier runs cost was spent, and wasted
        earlier = record.get("earlier") or {}
        spent_before = Decimal(str(earlier.get("cost_usd", 0)))
        self.attempts += int(earlier.get("attempts", 0))
        self.money["total_usd"] += spent_before
        self.money["wasted_usd"] += spent_before
        self.money["saved_usd"] -= spent_before

    def rate(self, count: int) -> float:
        return count / self.items if self.items else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "line_errors": self.line_errors,
            "verified": self.verified,
            "unverified": self.unverified,
            "failed": self.failed,
            "degraded": self.degraded,
            "attempts": self.attempts,
            "accepted_by_tier": dict(self.accepted_by_tier),
            "escalation_rate": round(self.rate(self.escalated), 6),
            "fallback_rate": round(self.rate(self.fell_back), 6),
            **{key: float(value) for key, value in self.money.items()},
        }


def report_lines(lines: Iterable[str]) -> BatchReport:
    """The report of a job's output lines (a line that is not JSON counts as a line error)."""
    report = BatchReport()
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_float=Decimal)
        except ValueError:
            report.line_errors += 1
            continue
        if isinstance(record, dict):
            report.add(record)
    return report


def report_file(path: Path) -> BatchReport:
    with path.open(encoding="utf-8") as lines:
        return report_lines(lines)
