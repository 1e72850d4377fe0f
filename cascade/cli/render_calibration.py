"""How `cascade calibrate` reads on a terminal: the target, the signals' reliability, the
settings searched or tested, the choice, and, apart, what it did on unseen data."""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from cascade.cli.render import usd
from cascade.offline.calibration import Calibration, Explored
from cascade.offline.calibration.report import INTERVAL, Checked, ladder_names, skipped, unseen_summary
from cascade.offline.evaluation import EvalReport

MAX_ROWS = 40  # frontier rows printed


def target_line(found: Calibration, data: Any) -> str:
    line = f"Calibrating on {data} ({len(found.train)} requests): target {found.target.describe()}"
    certification = found.certification
    if certification is None:
        return line + " on these requests (a point estimate: no --confidence, no guarantee on unseen data)"
    return line + (
        f", held on unseen requests with {found.confidence:.0%} confidence (Learn-then-Test: the testing "
        f"order learnt on {len(certification.learn)} requests, tested on the other "
        f"{len(certification.certify)})"
    )


def ladder_text(found: Calibration, point: Explored) -> str:
    names = " → ".join(ladder_names(found, point))
    dropped = skipped(found, point)
    return names + (f" (skips {', '.join(dropped)})" if dropped else "")


def thresholds_text(found: Calibration, point: Explored) -> str:
    thresholds = found.thresholds(point.setting)
    parts = [
        f"{found.observations.slots[i].label} {thresholds[i]:g} "
        f"(P(correct) ≥ {found.probability(i, point.setting[i]):.0%})"
        for i in found.kept(point)
    ]
    return ", ".join(parts) or "none (the top tier alone)"


def print_calibration(out: Console, checked: Checked, args: argparse.Namespace) -> None:
    """The account of `cascade calibrate`: target, search, choice, confirmation, unseen data."""
    found, expected, confirmed = checked.found, checked.expected, checked.confirmed
    assert found.chosen is not None
    out.print(target_line(found, args.data), highlight=False)
    if found.reliability:
        out.print(reliability_table(found))
    out.print(sequence_table(found) if found.certification is not None else frontier_table(found))
    chosen = found.chosen
    if found.fell_back:
        out.print(fallback_text(found), highlight=False)
    out.print(f"[bold]chosen:[/] {ladder_text(found, chosen)}; thresholds: {thresholds_text(found, chosen)}")
    n = len(found.train)
    top = confirmed.top
    top_correct, _ = found.top_on_train
    share = float(expected[1] / top.cost_usd) if top.cost_usd else 0.0
    out.print(
        f"on {args.data} (the training data, not unseen): accuracy {expected[0] / n:.1%} "
        f"(the top tier alone: {top.accuracy:.1%}), loss against the top tier "
        f"{(top_correct - expected[0]) / n:+.1%}, "
        f"cost {usd(expected[1])}, {share:.0%} of the top tier alone's",
        highlight=False,
    )
    out.print(f"written to {args.out}", highlight=False)
    verdict = (
        "[green]agrees with the simulation[/]"
        if checked.agrees
        else "[yellow]DISAGREES with the simulation[/]"
    )
    out.print(
        f"confirmed by the engine on {args.data}: accuracy {confirmed.cascade.accuracy:.1%}, "
        f"cost {usd(confirmed.cascade.cost_usd)}: {verdict}",
        highlight=False,
    )
    if checked.tested is not None:
        print_unseen(out, found, checked.tested, args)
    out.print(side_by_side(confirmed, checked.tested, args))


def fallback_text(found: Calibration) -> str:
    certification = found.certification
    assert certification is not None
    if found.target.max_loss is None:
        return (
            "[yellow]no setting below the top tier could be certified[/] at "
            f"{found.confidence:.0%} confidence; the top tier alone is certified to reach the target, "
            "and written."
        )
    first = certification.steps[0] if certification.steps else None
    why = (
        f"[yellow]no setting below the top tier could be certified[/] at {found.confidence:.0%} confidence "
        f"on {len(certification.certify)} requests, so the top tier alone is written (it loses nothing "
        "against itself)."
    )
    if first is None:
        return why + " No setting was cheaper than the top tier on the learn share."
    n = len(certification.certify)
    seen = f"{ladder_text(found, first.point)} lost {(first.worse - first.better) / n:+.1%} there"
    if certification.needed is None:
        return why + f" The most promising setting, {seen}: more data would not certify it."
    if math.isinf(certification.needed):
        return (
            why
            + f" The most promising setting, {seen}: more than a million labelled requests would be needed."
        )
    return why + (
        f" The most promising setting, {seen}; about {math.ceil(certification.needed)} labelled requests "
        "would certify it if it keeps those rates."
    )


def reliability_table(found: Calibration) -> Table:
    table = Table(title="The signals as probabilities: expected calibration error (10 bins)")
    for column in ("verifier", "answers scored", "accuracy", "ECE of the raw score", "ECE calibrated"):
        table.add_column(column, justify="right" if column != "verifier" else "left", no_wrap=True)
    for r in found.reliability:
        raw = "not 0-1" if r.ece_raw is None else f"{r.ece_raw:.3f}"
        table.add_row(r.label, str(r.answers), f"{r.accuracy:.1%}", raw, f"{r.ece_calibrated:.3f}")
    table.caption = (
        "calibrated: an isotonic map from score to P(correct), scored out of fold (5 folds); "
        "thresholds below show the P(correct) they stand for"
    )
    return table


def sequence_table(found: Calibration) -> Table:
    certification = found.certification
    assert certification is not None
    n = len(certification.certify)
    table = Table(
        title=f"Settings tested in order on the {n} certify requests (stops at the first not certified)"
    )
    for column in (
        "ladder",
        "thresholds",
        "learn accuracy",
        "learn cost",
        "certify accuracy",
        "loss",
        "p-value",
        "",
    ):
        table.add_column(column, justify="left" if column in ("ladder", "thresholds") else "right")
    for step in certification.steps:
        mark = (
            "[bold green]◀ chosen[/]"
            if step.point is found.chosen
            else ("certified" if step.certified else "[red]not certified: stop[/]")
        )
        table.add_row(
            ladder_text(found, step.point),
            thresholds_text(found, step.point),
            f"{found.accuracy(step.point):.1%}",
            f"${step.point.cost:.6f}",
            f"{step.correct / n:.1%}",
            f"{(step.worse - step.better) / n:+.1%}",
            f"{step.p_value:.3f}",
            mark,
        )
    risk = certification.risk
    table.caption = (
        f"loss: against the top tier alone on the certify requests; certified: p-value ≤ {risk:g}; "
        f"{len(certification.path)} settings on the learn frontier, {len(found.explored)} scored "
        f"({len(found.ladders)} ladders, each at every probability level). "
        f"Fixed gates: {', '.join(found.observations.fixed) or 'none'}"
    )
    return table


def frontier_table(found: Calibration) -> Table:
    table = Table(
        title=f"Settings explored on the {len(found.fit)} requests: the cost/accuracy frontier, "
        "cheapest first"
    )
    for column in ("ladder", "thresholds", "accuracy", "cost", "vs top", ""):
        table.add_column(column, justify="left" if column in ("ladder", "thresholds") else "right")
    _, top_cost = found.simulator.alone(found.top, found.fit)
    for point in _shown(found):
        table.add_row(
            ladder_text(found, point),
            thresholds_text(found, point),
            f"{found.accuracy(point):.1%}",
            f"${point.cost:.6f}",
            f"{point.cost / float(top_cost):.0%}" if top_cost else "",
            "[bold green]◀ chosen[/]" if point is found.chosen else "",
            style="bold" if point is found.chosen else None,
        )
    table.caption = (
        f"{found.method} search over {found.grid_size} settings on {len(found.ladders)} ladders: "
        f"{len(found.explored)} explored, {len(found.frontier)} on the frontier. "
        f"Fixed gates: {', '.join(found.observations.fixed) or 'none'}"
    )
    return table


def _shown(found: Calibration) -> list[Explored]:
    rows = list(found.frontier)
    if found.chosen is not None and found.chosen not in rows:
        rows.append(found.chosen)
        rows.sort(key=lambda p: (p.cost, -p.correct))
    if len(rows) > MAX_ROWS:
        step = len(rows) / MAX_ROWS
        keep = {rows[int(i * step)] for i in range(MAX_ROWS)} | {rows[-1]}
        if found.chosen is not None:
            keep.add(found.chosen)
        rows = [p for p in rows if p in keep]
    return rows


def print_unseen(out: Console, found: Calibration, tested: EvalReport, args: argparse.Namespace) -> None:
    """The written config replayed by the engine on held-out data, with intervals."""
    figures = unseen_summary(tested, found.target.max_loss)
    low, high = figures["accuracy_interval"]
    loss_low, loss_high = figures["loss_interval"]
    share = figures["cost_share_of_top"]
    out.print(
        f"[bold]unseen[/] {args.test} ({figures['requests']} requests): accuracy {figures['accuracy']:.1%} "
        f"[{low:.1%}, {high:.1%}] (the top tier alone: {figures['top_alone_accuracy']:.1%}); "
        f"loss against the top tier {figures['loss_against_top']:+.1%} [{loss_low:+.1%}, {loss_high:+.1%}]; "
        "cost "
        + (f"{share:.0%} of the top tier alone's" if share is not None else "n/a")
        + f" ({INTERVAL:.0%} intervals)",
        highlight=False,
    )
    max_loss = found.target.max_loss
    if max_loss is not None and not figures["within_max_loss"]:
        out.print(
            f"[red]the loss on unseen data, {figures['loss_against_top']:.1%}, exceeds the "
            f"{max_loss:.1%} allowed[/]",
            highlight=False,
        )
    elif max_loss is not None:
        out.print(f"[green]the loss on unseen data is within the {max_loss:.1%} allowed[/]", highlight=False)


def side_by_side(train: EvalReport, test: EvalReport | None, args: argparse.Namespace) -> Table:
    reports = [("train", args.data, train)] + ([("unseen", args.test, test)] if test is not None else [])
    table = Table(title=f"{args.out} replayed by the engine")
    table.add_column("")
    for name, path, report in reports:
        table.add_column(f"{name}: {path} ({report.cascade.requests})", justify="right")
    rows: list[tuple[str, Any]] = [
        ("cascade accuracy", lambda r: f"{r.cascade.accuracy:.1%}"),
        ("top tier alone accuracy", lambda r: f"{r.top.accuracy:.1%}"),
        ("loss against the top tier", lambda r: f"{r.loss:+.1%}"),
        ("cascade cost", lambda r: usd(r.cascade.cost_usd)),
        ("top tier alone cost", lambda r: usd(r.top.cost_usd)),
        (
            "cascade cost / top alone",
            lambda r: f"{float(r.cascade.cost_usd / r.top.cost_usd):.0%}" if r.top.cost_usd else "",
        ),
        ("top tier called", lambda r: f"{r.reached_top / max(r.cascade.requests, 1):.0%} of requests"),
        ("oracle accuracy", lambda r: f"{r.oracle.accuracy:.1%}"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(report) for _, _, report in reports))
    return table
