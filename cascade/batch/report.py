"""The figures of a batch job, computed from its output lines (so they always agree with
them). `cascade report OUT.jsonl` recomputes them; `cascade.cli.render` draws the table.

Savings are claimed only where they were made: `saved_usd` sums the verified items alone
(against what the top tier alone would have cost them); an unverified or failed item
saved nothing, whatever it cost, and `saved_excluded` counts those left out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ZERO = Decimal(0)
MONEY = (
    "total_usd",
    "wasted_usd",
    "verification_usd",
    "routing_usd",
    "baseline_usd",
    "saved_usd",
    "saved_baseline_usd",
)
RECORD_KEYS = frozenset({"attempts", "cost", "verified"})  # what every output record of an item holds


class NotBatchOutput(ValueError):
    """A file whose lines are not a batch job's output records; says what they look like."""


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
    saved_excluded: int = 0  # unverified or failed items: no saving is claimed on them
    cache_hits: int = 0  # answered from the cache of verified answers, at no cost
    accepted_by_tier: Counter[str] = field(default_factory=Counter)
    # where the items' ladders started (a router's or the caller's pick), and by what
    routed_to_tier: Counter[str] = field(default_factory=Counter)
    routed_by: Counter[str] = field(default_factory=Counter)  # adds up to the items routed
    routing_fallbacks: int = 0  # a classifier gave no label, or a router could not score
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
        if record.get("cache") == "hit":
            self.cache_hits += 1
        if len({a.get("tier") for a in attempts}) > 1:
            self.escalated += 1
        if any(a.get("outcome") == "error" for a in attempts):
            self.fell_back += 1
        cost = record.get("cost") or {}
        if not isinstance(cost, dict):
            raise NotBatchOutput(f"`cost` is {_shown(cost)}, not a mapping of amounts")
        route = record.get("route")
        if route is not None:
            if not isinstance(route, dict) or not all(isinstance(route.get(k), str) for k in ("tier", "by")):
                raise NotBatchOutput(f"`route` is {_shown(route)}, not a route with a `tier` and a `by`")
            self.routed_to_tier[route["tier"]] += 1
            by = route["by"]
            self.routed_by["rule" if by.startswith("rule ") else by] += 1
            self.routing_fallbacks += route.get("fallback") is not None
        for key in ("total_usd", "wasted_usd", "verification_usd", "routing_usd", "baseline_usd"):
            self.money[key] += _amount(cost.get(key, 0), f"cost.{key}")
        # an item run again (--retry-failed): what its earlier runs cost was spent, and wasted
        earlier = record.get("earlier") or {}
        spent_before = _amount(earlier.get("cost_usd", 0), "earlier.cost_usd")
        self.attempts += int(earlier.get("attempts", 0))
        self.money["total_usd"] += spent_before
        self.money["wasted_usd"] += spent_before
        if record.get("verified"):
            self.money["saved_usd"] += _amount(cost.get("saved_usd", 0), "cost.saved_usd") - spent_before
            self.money["saved_baseline_usd"] += _amount(cost.get("baseline_usd", 0), "cost.baseline_usd")
        else:
            self.saved_excluded += 1

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
            "saved_excluded": self.saved_excluded,
            "cache_hits": self.cache_hits,
            "accepted_by_tier": dict(self.accepted_by_tier),
            "routed_to_tier": dict(self.routed_to_tier),
            "routed_by": {k: v for k, v in self.routed_by.items() if v},
            "routing_fallbacks": self.routing_fallbacks,
            "escalation_rate": round(self.rate(self.escalated), 6),
            "fallback_rate": round(self.rate(self.fell_back), 6),
            **{key: float(value) for key, value in self.money.items()},
        }


def report_lines(lines: Iterable[str]) -> BatchReport:
    """The report of a job's output lines (a line that is not JSON counts as a line error:
    a crash may cut the last one short). A JSON line that is no output record raises
    NotBatchOutput: the file is another one (the job's input, recorded outcomes)."""
    report = BatchReport()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_float=Decimal)
        except ValueError:
            report.line_errors += 1
            continue
        if not _is_record(record):
            raise NotBatchOutput(f"line {number} is no batch output record: {_looks_like(record)}")
        try:
            report.add(record)
        except NotBatchOutput as exc:
            raise NotBatchOutput(f"line {number}: {exc}") from None
    return report


def _amount(value: Any, where: str) -> Decimal:
    """An amount of a record (a number, or its exact text); NotBatchOutput names `where` it is."""
    if not isinstance(value, bool) and isinstance(value, int | float | Decimal | str):
        try:
            amount = Decimal(str(value))
        except ArithmeticError:
            pass
        else:
            if amount.is_finite():
                return amount
    raise NotBatchOutput(f"`{where}` is {_shown(value)}, not an amount")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _is_record(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    if record.get("id") is None and "error" in record and "line" in record:
        return True  # an input line that could not be run, as the output holds it
    return record.keys() >= RECORD_KEYS


def _looks_like(record: Any) -> str:
    if isinstance(record, dict) and "responses" in record:
        return "it looks like recorded outcomes (a `responses` mapping): give `cascade eval` this file"
    if isinstance(record, dict) and ("prompt" in record or "messages" in record):
        return "it looks like a batch input line (a `prompt` or `messages`): report the job's --output file"
    kind = type(record).__name__ if not isinstance(record, dict) else "an object without attempts and cost"
    return f"it holds {kind}"


def report_file(path: Path) -> BatchReport:
    with path.open(encoding="utf-8") as lines:
        return report_lines(lines)
