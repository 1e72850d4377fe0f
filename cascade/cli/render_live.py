"""The ledger's tables on a terminal: the report by group, latency per tier, the audit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.markup import escape
from rich.table import Table

from cascade.cli.render import usd

WIDE = 130  # the columns the ledger's tables need whole


def _percentiles(figures: dict[str, Any]) -> str:
    values = [figures[f"latency_p{q}_s"] for q in (50, 95, 99)]
    return "-" if values[0] is None else " / ".join(f"{v:.3f}" for v in values) + " s"


def ledger_tables(report: dict[str, Any], title: str) -> list[Table]:
    """The report's groups (and their total), the tiers' calls, and any alarm that is up."""
    groups = Table(title=escape(title))
    for column in (
        report["by"],
        "requests",
        "spend",
        "saved (verified)",
        "escalated",
        "unverified",
        "cache hits",
    ):
        groups.add_column(escape(column), justify="left" if column == report["by"] else "right")
    for column in ("audit cost", "latency p50 / p95 / p99"):
        groups.add_column(column, justify="right")
    last = report["groups"][-1] if report["groups"] else None
    for group in [*report["groups"], report["total"]]:
        groups.add_row(
            escape(group["group"]),
            str(group["requests"]),
            usd(Decimal(str(group["spend_usd"]))),
            usd(Decimal(str(group["saved_usd"]))),
            f"{group['escalation_rate']:.1%}",
            f"{group['unverified_rate']:.1%}",
            str(group["cache_hits"]),
            usd(Decimal(str(group["audit_usd"]))),
            _percentiles(group),
            end_section=group is last,
        )
    caption = (
        "latency: the request's, cache hits left out; saved: against the top tier alone, on verified answers"
    )
    shadow = Decimal(str(report["total"]["shadow_usd"]))
    routing = Decimal(str(report["total"]["routing_usd"]))
    caption += f"; shadow cascades spent {usd(shadow)} apart" if shadow else ""
    groups.caption = caption + (f"; routing cost {usd(routing)} (in spend)" if routing else "")
    tiers = Table(title="Calls per tier")
    for column in ("tier", "calls", "routed here", "answers accepted", "share of requests"):
        tiers.add_column(column, justify="left" if column == "tier" else "right")
    tiers.add_column("latency p50 / p95 / p99", justify="right")
    for tier in report["tiers"]:
        tiers.add_row(
            escape(tier["tier"]),
            str(tier["calls"]),
            str(tier["routed"]),
            str(tier["accepted"]),
            f"{tier['share_of_requests']:.1%}",
            _percentiles(tier),
        )
    return [groups, tiers, *_alarm_tables(report["drift_alarms"])]


def audit_tables(figures: dict[str, Any]) -> list[Table]:
    level = f"{figures['confidence']:.0%}"
    tiers = Table(
        title=f"Audit: false-accept rate per tier (limit {figures['limit']:.1%} on the {level} upper bound)"
    )
    by_day = Table(title="Trend by day")
    for table, first in ((tiers, "group"), (by_day, "day")):
        for column in (
            "tier",
            first,
            "audited",
            "disagreed",
            "rate",
            f"{level} interval",
            f"{level} bound",
            "within limit",
            "cost",
        ):
            table.add_column(column, justify="left" if column in ("tier", first) else "right")
    for table, lines in ((tiers, figures["tiers"]), (by_day, figures["by_day"])):
        for line in lines:
            rate = "-" if line["rate"] is None else f"{line['rate']:.1%}"
            table.add_row(
                escape(line["tier"]),
                escape(line["group"]),
                str(line["audited"]),
                str(line["disagreements"]),
                rate,
                f"{line['lower']:.1%} - {line['upper']:.1%}",
                f"{line['bound']:.1%}",
                "yes" if line["within_limit"] else "[red]no[/]",
                usd(Decimal(str(line["audit_usd"]))),
            )
    return [tiers, by_day, *_alarm_tables(figures["drift_alarms"])]


def _alarm_tables(alarms: list[dict[str, Any]]) -> list[Table]:
    if not alarms:
        return []
    table = Table(title="[red]Drift alarms up[/]")
    for column in ("tier", "group", "audited", "disagreed", "upper bound", "config"):
        table.add_column(column)
    for alarm in alarms:
        table.add_row(
            escape(alarm["tier"]),
            escape(alarm["group"]),
            str(alarm["audited"]),
            str(alarm["disagreements"]),
            f"{alarm['upper_bound']:.1%}",
            alarm["config"],
        )
    table.caption = "cleared by `cascade audit --ledger ... --clear TIER` once the tier is recalibrated"
    return [table]
