"""What the ledger holds: one row per result, one per attempt, audit and shadow run, and
the drift alarms; built from results here, so both backends store the same thing.

The ledger is an account, not an archive: results and attempts carry figures, ids and tags,
never the prompt or the answer. Only an audited pair keeps its texts (redacted), because
they are what `eval` and `calibrate` read back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cascade.core.values import Outcome, Result

# table -> its columns, in order; both backends create and fill them from this
TABLES: dict[str, tuple[str, ...]] = {
    table: tuple(columns.split())
    for table, columns in {
        "results": "request_id ts day config tier model verified stop_reason cache path attempts escalated"
        " fell_back total_usd wasted_usd verification_usd baseline_usd saved_usd latency_s tags"
        " route_tier route_by routing_usd",
        "attempts": "request_id ts n tier model outcome cost_usd verification_usd input_tokens"
        " output_tokens latency_s queued_s error_code",
        "audits": "request_id ts day config tier model against agreed audit_usd tags pair error",
        "shadows": "request_id ts day candidate live_tier live_verified live_usd shadow_tier"
        " shadow_verified shadow_usd agreed tags error",
        "alarms": "ts config tier grp kind bound audited disagreements",
    }.items()
}
COLUMN_SETS = {table: frozenset(columns) for table, columns in TABLES.items()}
# columns added after a table was first made: a ledger from before them gets them on open
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {"results": ("route_tier", "route_by", "routing_usd")}
MONEY_COLUMNS = frozenset(
    {"total_usd", "wasted_usd", "verification_usd", "baseline_usd", "saved_usd", "cost_usd", "audit_usd"}
    | {"live_usd", "shadow_usd", "routing_usd"}
)
FLAG_COLUMNS = frozenset({"verified", "escalated", "fell_back", "agreed", "live_verified", "shadow_verified"})
REAL_COLUMNS = frozenset({"ts", "latency_s", "queued_s", "bound"})
INT_COLUMNS = frozenset({"attempts", "n", "input_tokens", "output_tokens", "audited", "disagreements"})


@dataclass(frozen=True)
class Row:
    """One row for one table, values in TABLES' column order."""

    table: str
    values: tuple[Any, ...]

    @classmethod
    def of(cls, table: str, **values: Any) -> Row:
        """A row from its columns by name: every column of the table, none other."""
        if values.keys() != COLUMN_SETS[table]:
            unknown = sorted(set(values) ^ COLUMN_SETS[table])
            raise ValueError(f"{table}: columns {unknown} missing or unknown")
        return cls(table, tuple(values[c] for c in TABLES[table]))


LEDGER_DIGEST_CHARS = 16  # of a config's digest, in each row: 64 bits name a config well enough


def ledger_digest(digest: str) -> str:
    """A config's digest as the ledger's rows name it."""
    return digest[:LEDGER_DIGEST_CHARS]


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"  # text: exact, whatever the backend's numbers


def tags_json(tags: Any) -> str:
    """Tags as a JSON object (they come redacted from `read_tags`)."""
    return json.dumps(dict(tags), sort_keys=True, ensure_ascii=False) if tags else "{}"


def result_rows(result: Result, *, config: str, latency_s: float, ts: float) -> list[Row]:
    """The rows of one result: itself and each of its attempts (a cache hit made no call:
    none, and its row says 0 attempts)."""
    cost = result.cost
    attempts = () if result.cache == "hit" else result.attempts
    rows = [
        Row.of(
            "results",
            request_id=result.request_id,
            ts=ts,
            day=day_of(ts),
            config=config,
            tier=result.tier,
            model=result.model,
            verified=result.verified,
            stop_reason=result.stop_reason,
            cache=result.cache,
            path=">".join(dict.fromkeys(a.tier for a in attempts)),  # the tiers tried, in order
            attempts=len(attempts),
            escalated=len({a.tier for a in attempts}) > 1,
            fell_back=any(a.outcome is Outcome.ERROR for a in attempts),
            total_usd=money(cost.total_usd),
            wasted_usd=money(cost.wasted_usd),
            verification_usd=money(cost.verification_usd),
            baseline_usd=money(cost.baseline_usd),
            saved_usd=money(cost.saved_usd) if result.verified else None,  # as the batch report claims it
            latency_s=latency_s,
            tags=tags_json(result.tags),
            route_tier=None if result.route is None else result.route.tier,
            route_by=None if result.route is None else result.route.by,
            routing_usd=money(cost.routing_usd),
        )
    ]
    rows += [
        Row.of(
            "attempts",
            request_id=result.request_id,
            ts=ts,
            n=n,
            tier=a.tier,
            model=a.model,
            outcome=str(a.outcome),
            cost_usd=money(a.cost_usd),
            verification_usd=money(a.verification_usd),
            input_tokens=a.usage.input_tokens,
            output_tokens=a.usage.output_tokens,
            latency_s=a.latency_s,
            queued_s=a.queued_s,
            error_code=a.error_code,
        )
        for n, a in enumerate(attempts)
    ]
    return rows


def row_dict(table: str, values: tuple[Any, ...]) -> dict[str, Any]:
    """A stored row back as a dict: money as Decimal, flags as bool, tags as a dict."""
    out: dict[str, Any] = {}
    for column, value in zip(TABLES[table], values, strict=True):
        if value is not None and column in MONEY_COLUMNS:
            value = Decimal(value)
        elif value is not None and column in FLAG_COLUMNS:
            value = bool(value)
        elif column == "tags":
            value = json.loads(value or "{}")
        out[column] = value
    return out
