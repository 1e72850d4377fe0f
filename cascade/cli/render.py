"""How results look on a terminal (rich) and as JSON."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cascade.core.redaction import redact
from cascade.core.routes import Route
from cascade.core.values import Attempt, Outcome, Result

if TYPE_CHECKING:  # each command loads what it shows: `run` need not load the batch or the evaluation
    from cascade.batch.report import BatchReport
    from cascade.config.schema import CascadeConfig, ModelConfig
    from cascade.core.events import StreamRestart
    from cascade.offline.evaluation import EvalReport
    from cascade.runtime.ladder import Tier

_MARK = {
    Outcome.ACCEPTED: "[green]✓[/]",
    Outcome.REJECTED: "[yellow]✗[/]",
    Outcome.ERROR: "[red]![/]",
    Outcome.ABORTED: "[red]✗ (stopped early)[/]",
}


def to_json(data: dict[str, Any]) -> str:
    """`data` as one JSON line, with no key in it (a key holds no character JSON escapes, so
    redacting the line keeps it JSON)."""
    return redact(json.dumps(data, ensure_ascii=False))


def usd(amount: Decimal) -> str:
    """`$0.000013`, `-$0.000013`: the sign before the dollar."""
    return f"-${-amount:.6f}" if amount < 0 else f"${amount:.6f}"


def clip(text: str, width: int) -> str:
    """`text` on one line of at most `width` characters, cut at a word with an ellipsis."""
    return textwrap.shorten(text, width, placeholder=" …")


def path_of(attempts: Sequence[Attempt]) -> str:
    """`small ✗ hedging → large ✓`: which models were tried and why each was left."""
    steps = []
    for a in attempts:
        why = ""
        if a.outcome in (Outcome.REJECTED, Outcome.ABORTED):
            why = " " + next((v.verifier for v in a.verdicts if not v.passed), "")
        elif a.outcome is Outcome.ERROR:
            why = " " + (a.error or "error").split(":")[0]
        steps.append(f"{a.tier} {_MARK[a.outcome]}{why}")
    return " → ".join(steps)


def restart_notice(event: StreamRestart) -> str:
    """A restart as a person should see it: what was shown above is withdrawn, and why."""
    where = f"restarting on {event.to_tier}" if event.to_tier else "no tier left"
    void = f"the {event.void_chars} characters above are withdrawn; " if event.void_chars else ""
    return f"[yellow]⟲ {event.from_tier} failed ({event.reason}): {void}{where}[/]"


def print_result(console: Console, result: Result) -> None:
    """A short account of one result (the answer itself goes to stdout separately)."""
    cost = result.cost
    status = "[green]verified[/]" if result.verified else "[yellow]UNVERIFIED[/]"
    if result.degraded:
        status = "[red]DEGRADED (failed a check after it was shown)[/]"
    console.print(f"{status} answer from [bold]{result.tier}[/] ({result.model})")
    console.print(f"path: {path_of(result.attempts)}")
    if result.route is not None:
        console.print(f"started at {route_of(result.route)}", highlight=False)
    for a in result.attempts:
        for v in a.verdicts:
            if not v.passed:
                console.print(f"  [dim]{a.tier}/{v.verifier}:[/] {v.reason}", highlight=False)
        if a.error:
            console.print(f"  [dim]{a.tier} ({a.model}) try {a.retry + 1}:[/] {a.error}", highlight=False)
    saved = f"saved {usd(cost.saved_usd)}" if result.verified else "no saving claimed (not verified)"
    routing = f", routing {usd(cost.routing_usd)}" if cost.routing_usd else ""
    console.print(
        f"cost {usd(cost.total_usd)} (wasted {usd(cost.wasted_usd)}, verification "
        f"{usd(cost.verification_usd)}{routing}); top tier alone ≈ {usd(cost.baseline_usd)}, {saved}"
    )


def route_of(route: Route) -> str:
    """Where a request started and why: "large (rule 2)", "small (classifier; fallback: ...)"."""
    why = route.by if route.score is None else f"{route.by}, p={route.score:.2f}"
    if route.picked is not None:
        why += f"; the router picked {route.picked}"
    if route.fallback is not None:
        why += f"; fallback: {route.fallback}"
    return escape(f"{route.tier} ({why})")


def batch_table(report: BatchReport, title: str = "Batch report") -> Table:
    """The figures of a batch report as a two-column table."""
    table = Table(title=title, show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("items", str(report.items))
    for tier, count in sorted(report.accepted_by_tier.items()):
        table.add_row(f"  accepted on {tier}", str(count))
    table.add_row("  unverified (for review)", str(report.unverified))
    table.add_row("    of which no answer at all", str(report.failed))
    if report.degraded:
        table.add_row("    of which degraded", str(report.degraded))
    table.add_row("input lines in error", str(report.line_errors))
    table.add_row("escalation rate", f"{report.rate(report.escalated):.1%}")
    table.add_row("fallback (error) rate", f"{report.rate(report.fell_back):.1%}")
    for tier, count in sorted(report.routed_to_tier.items()):
        table.add_row(escape(f"  started on {tier}"), str(count))
    if report.routed_by:
        shown = ", ".join(f"{by} {n}" for by, n in sorted(report.routed_by.items()) if n)
        table.add_row("  routed by", escape(shown))
    if report.routing_fallbacks:
        table.add_row("    of which fell back (no label)", str(report.routing_fallbacks))
    table.add_row("attempts (all billed)", str(report.attempts))
    if report.cache_hits:
        table.add_row("  answered from the cache (free)", str(report.cache_hits))
    table.add_row("total cost", usd(report.money["total_usd"]))
    table.add_row("  wasted on escalation", usd(report.money["wasted_usd"]))
    table.add_row("  verification", usd(report.money["verification_usd"]))
    if report.routed_to_tier:
        table.add_row("  routing", usd(report.money["routing_usd"]))
    table.add_row("top tier alone (baseline)", usd(report.money["baseline_usd"]))
    baseline = report.money["saved_baseline_usd"]  # of the verified items, where savings count
    share = f" ({report.money['saved_usd'] / baseline:.0%})" if baseline else ""
    table.add_row("saved, on verified items", usd(report.money["saved_usd"]) + share)
    if report.saved_excluded:
        table.add_row("  items left out (unverified: nothing saved)", str(report.saved_excluded))
    return table


def eval_table(report: EvalReport, title: str = "Evaluation") -> Table:
    """Cascade, each tier alone and the oracle: accuracy and cost side by side."""
    table = Table(title=title)
    for column in ("strategy", "accuracy", "cost", "vs top tier alone"):
        table.add_column(column, justify="right" if column != "strategy" else "left")
    top_cost = report.top.cost_usd
    for point in [report.cascade, *report.tiers_alone, report.oracle]:
        share = f"{point.cost_usd / top_cost:.0%} of its cost" if top_cost else ""
        table.add_row(point.name, f"{point.accuracy:.1%}", usd(point.cost_usd), share)
    n = report.cascade.requests or 1
    table.caption = (
        f"{report.cascade.requests} requests; the cascade's loss against the top tier alone on them "
        f"{report.loss:+.1%} (worse on {report.worse}, better on {report.better}); accepted per tier: "
        + ", ".join(f"{t} {c}" for t, c in report.accepted_by_tier.items())
        + f"; escalation {report.escalated / n:.1%}; unverified {report.unverified}; "
        f"top tier called for {report.reached_top} ({report.reached_top / n:.1%}); "
        f"wasted {usd(report.wasted_usd)}; verification {usd(report.verification_usd)}"
    )
    return table


def tiers_table(config: CascadeConfig, tiers: Sequence[Tier], title: str) -> Table:
    """Every model of every tier: its provider and where its calls go, its price, and whether
    the key they need is set."""
    rows = [
        (tier.name, model.model, _endpoint(model_config), model.price.describe(), _key_status(model_config))
        for tier_config, tier in zip(config.tiers, tiers, strict=True)
        for model_config, model in zip([tier_config, *tier_config.alternates], tier.models, strict=True)
    ]
    table = Table(title=title)
    for column in ("tier", "model", "provider · endpoint", "price", "API key"):
        table.add_column(column, overflow="fold")  # a long name folds, never cut short
    table.columns[2].no_wrap = True  # a URL stays on one line: the other columns wrap first
    for row in rows:
        table.add_row(*row)
    return table


def _endpoint(config: ModelConfig) -> str:
    """The provider and the URL its calls go to, and where that came from unless the config's
    `base_url` said it."""
    from cascade.config.build import endpoint_of

    endpoint = endpoint_of(config)
    if endpoint is None:
        return config.provider
    if endpoint.source == "base_url":
        return f"{config.provider}\n{endpoint.url}"
    return f"{config.provider} [dim]({endpoint.source})[/]\n{endpoint.url}"


def _key_status(config: ModelConfig) -> str:
    from cascade.config.build import missing_key

    env_var = config.key_env
    if env_var is None:
        return "not needed"
    if os.environ.get(env_var):
        return f"{env_var} set"
    if missing_key(config):
        return f"[red]{env_var} not set[/]"
    return f"{env_var} not set\n[dim](not needed: own server)[/]"


def print_demo(out: Console, prompts: Sequence[str], results: Sequence[Result], report: BatchReport) -> None:
    """The demo's story: each prompt's path and answer, why answers were escalated, the cost."""
    table = Table(title="cascade demo: gpt-4o-mini first, claude-sonnet-4-5 when the answer fails")
    for column in ("prompt", "path (✓ accepted, ✗ rejected by, ! failed)", "answer", "cost"):
        table.add_column(column, overflow="fold")
    for prompt, result in zip(prompts, results, strict=True):
        table.add_row(prompt, path_of(result.attempts), result.output or "", usd(result.cost.total_usd))
    out.print(table)
    out.print("[bold]Why answers were escalated[/]")
    for prompt, result in zip(prompts, results, strict=True):
        for attempt in result.attempts:
            reason = attempt.error or next(
                (f"{v.verifier}: {v.reason}" for v in attempt.verdicts if not v.passed), None
            )
            if reason:
                out.print(f"  {clip(prompt, 45):45}  {attempt.tier}: {reason}", highlight=False)
    out.print(batch_table(report, title="Cost report"))
