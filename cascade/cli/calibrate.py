"""`cascade calibrate`: fit verifier thresholds to a quality target (see `cascade.offline.calibration`).

Exit codes: 0 a config was written; 3 the target could not be met (nothing written);
2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cascade.cli.render import usd
from cascade.config import load_config
from cascade.core.errors import ConfigError
from cascade.offline.calibration import Calibration, Explored, Target, calibrate, observe
from cascade.offline.calibration.report import chosen_summary, summary
from cascade.offline.calibration.thresholds import read_raw_config, write_calibrated
from cascade.offline.evaluation import EvalReport, run_evaluation
from cascade.offline.records import with_records
from cascade.providers.replay import RecordedSet, load_recorded

EXIT_OK, EXIT_USAGE, EXIT_UNMET = 0, 2, 3
MAX_ROWS = 40  # frontier rows printed


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    cal = sub.add_parser(
        "calibrate",
        parents=[common],
        help="fit verifier thresholds to a quality target on recorded outcomes",
        description="Search the thresholds of the config's verifiers, per tier, for the cheapest cascade "
        "that meets a quality target on recorded outcomes, and write the tuned config.",
    )
    cal.add_argument("config", type=Path)
    cal.add_argument("--data", type=Path, required=True, metavar="TRAIN", help="recorded outcomes to fit on")
    cal.add_argument("--out", type=Path, required=True, metavar="CALIBRATED.yaml", help="the config to write")
    target = cal.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-accuracy", type=float, metavar="ACC", help="reach this accuracy (0-1)")
    target.add_argument("--match-top", action="store_true", help="reach the top tier alone's accuracy")
    target.add_argument(
        "--of-top", type=float, metavar="SHARE", help="reach this share of the top tier's accuracy"
    )
    cal.add_argument(
        "--test", type=Path, metavar="FILE", help="held-out recorded outcomes to score the result on"
    )
    cal.add_argument(
        "--confidence",
        type=float,
        metavar="LEVEL",
        help="require the target as a one-sided binomial lower bound at this level on a validation split",
    )
    cal.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    cal.add_argument("--json", action="store_true", help="print the outcome as JSON")
    cal.add_argument("--plot", type=Path, metavar="PNG", help="draw cost against accuracy with the frontier")
    cal.set_defaults(handler=_calibrate, quiet_by_default=True)


def _target(args: argparse.Namespace) -> Target:
    if args.match_top:
        return Target("match_top")
    if args.of_top is not None:
        return Target("of_top", args.of_top)
    return Target("accuracy", args.target_accuracy)


def _recorded(path: Path, stderr: Console) -> RecordedSet:
    recorded = load_recorded(path)
    for problem in recorded.problems:
        stderr.print(f"[yellow]skipped:[/] {escape(problem)}", highlight=False)
    return recorded


def _calibrate(args: argparse.Namespace, stderr: Console) -> int:
    target = _target(args)
    if args.plot:
        from cascade.cli.plotting import pyplot

        try:
            pyplot()  # say now, not after the work, that matplotlib is missing
        except ConfigError as exc:  # printed here: the extra's name in brackets is no markup
            stderr.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            return EXIT_USAGE
    if args.confidence is not None and not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence is a level between 0 and 1, not {args.confidence:g}")
    raw = read_raw_config(args.config)
    train = _recorded(args.data, stderr)
    config = with_records(load_config(args.config), args.data)
    observations = asyncio.run(observe(config, train, base_dir=args.config.parent, source=str(args.config)))
    found = calibrate(observations, target, confidence=args.confidence, seed=args.seed)
    out = Console(width=max(Console().width, 130))
    if found.chosen is None:
        return _unmet(found, args, stderr)
    chosen = found.chosen
    thresholds = found.thresholds(chosen.setting)
    expected = found.on_train(chosen.setting)
    _write(raw, args.config, args.out, found, thresholds, expected, args)
    # the written config, run by the real engine on the training data
    confirmed = run_evaluation(
        with_records(load_config(args.out), args.data), train, base_dir=args.out.parent
    )
    n = len(found.train)
    agrees = confirmed.cascade.accuracy == expected[0] / n and confirmed.cascade.cost_usd == expected[1]
    tested = None
    if args.test:
        test_data = _recorded(args.test, stderr)
        tested = run_evaluation(
            with_records(load_config(args.out), args.test), test_data, base_dir=args.out.parent
        )
    if args.plot:
        from cascade.cli.plotting import plot_cost_accuracy

        frontier = [_train_point(found, p.setting) for p in found.frontier]
        plot_cost_accuracy(
            confirmed,
            args.plot,
            frontier,
            title=f"{args.out.name} on {args.data.name}: cost against accuracy",
        )
    if args.json:
        print(json.dumps(_to_dict(found, args, thresholds, expected, confirmed, agrees, tested), indent=2))
    else:
        _print(out, found, args, thresholds, expected, confirmed, agrees, tested)
    if args.plot:
        stderr.print(f"plot written to {args.plot}")
    if not agrees:
        stderr.print(
            "[yellow]warning:[/] the engine and the simulation disagree on the training data "
            "(a verifier that is not deterministic, such as a live judge, can do this)"
        )
    return EXIT_OK


# -- the written config --------------------------------------------------------------------


def _write(
    raw: dict[str, Any],
    config_path: Path,
    out: Path,
    found: Calibration,
    thresholds: list[float],
    expected: tuple[int, Decimal],
    args: argparse.Namespace,
) -> None:
    assert found.chosen is not None
    slots = found.observations.slots
    n = len(found.train)
    top_correct, top_cost = found.simulator.alone(found.top, found.train)
    lines = [
        f"Calibrated by `cascade calibrate` from {config_path}",
        f"target: {found.target.describe()}" + _confidence_note(found),
        f"fitted on: {args.data} ({n} requests)",
        f"expected on that data: accuracy {expected[0] / n:.1%}, cost {usd(expected[1])} "
        f"(top tier alone: {top_correct / n:.1%}, {usd(top_cost)})",
        "thresholds: "
        + ", ".join(
            f"{s.label} {t:g}" + (" (off)" if found.is_off(i, cut) else "")
            for i, (s, t, cut) in enumerate(zip(slots, thresholds, found.chosen.setting, strict=True))
        ),
        "",
    ]
    write_calibrated(raw, config_path, out, slots, thresholds, "\n".join(lines))


def _confidence_note(found: Calibration) -> str:
    if found.confidence is None:
        return ""
    return (
        f", held as a one-sided {found.confidence:.0%} Clopper-Pearson lower bound on a "
        f"{len(found.validation)}-request validation split (fitted on the other {len(found.fit)})"
    )


# -- output ----------------------------------------------------------------------------------


def _train_point(found: Calibration, setting: tuple[float, ...]) -> tuple[Decimal, float]:
    correct, cost = found.on_train(setting)
    return cost, correct / len(found.train)


def _settings_text(found: Calibration, setting: tuple[float, ...]) -> list[str]:
    return [
        "off" if found.is_off(i, cut) else f"{t:g}"
        for i, (cut, t) in enumerate(zip(setting, found.thresholds(setting), strict=True))
    ]


def _labelled(found: Calibration, setting: tuple[float, ...]) -> str:
    texts = _settings_text(found, setting)
    return "thresholds: " + ", ".join(
        f"{s.label} {t}" for s, t in zip(found.observations.slots, texts, strict=True)
    )


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


def _frontier_table(found: Calibration) -> Table:
    split = "fit split" if found.confidence is not None else "training data"
    table = Table(
        title=f"Thresholds explored on the {split} ({len(found.fit)} requests): the cost/accuracy frontier, "
        "cheapest first"
    )
    for slot in found.observations.slots:
        table.add_column(slot.label, justify="right", no_wrap=True)
    for column in ("accuracy", "cost", "vs top"):
        table.add_column(column, justify="right", no_wrap=True)
    if found.confidence is not None:
        table.add_column("validation", justify="right", no_wrap=True)
        table.add_column(f"{found.confidence:.0%} bound", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    top_correct, top_cost = found.simulator.alone(found.top, found.fit)
    for point in _shown(found):
        cells = [*_settings_text(found, point.setting), f"{found.accuracy(point):.1%}", f"${point.cost:.6f}"]
        cells.append(f"{point.cost / float(top_cost):.0%}" if top_cost else "")
        if found.confidence is not None:
            correct, bound = found.validation_bound(point.setting)
            cells += [f"{correct / len(found.validation):.1%}", f"{bound:.1%}"]
        cells.append("[bold green]◀ chosen[/]" if point is found.chosen else "")
        table.add_row(*cells, style="bold" if point is found.chosen else None)
    table.add_section()
    top_row = [
        "top tier alone",
        *([""] * (len(found.observations.slots) - 1)),
        f"{top_correct / len(found.fit):.1%}",
        usd(top_cost),
        "100%",
    ]
    if found.confidence is not None:
        val_correct, _ = found.simulator.alone(found.top, found.validation)
        top_row += [f"{val_correct / len(found.validation):.1%}", ""]
    table.add_row(*top_row, "")
    table.caption = (
        f"{found.method} search over {found.grid_size} settings: {len(found.explored)} explored, "
        f"{len(found.frontier)} on the frontier. off = every score observed passes. "
        + (
            f"validation: accuracy on the {len(found.validation)}-request validation split; "
            f"bound: its one-sided {found.confidence:.0%} Clopper-Pearson lower bound. "
            if found.confidence is not None
            else ""
        )
        + f"Fixed gates: {', '.join(found.observations.fixed) or 'none'}"
    )
    return table


def _print(
    out: Console,
    found: Calibration,
    args: argparse.Namespace,
    thresholds: list[float],
    expected: tuple[int, Decimal],
    confirmed: EvalReport,
    agrees: bool,
    tested: EvalReport | None,
) -> None:
    assert found.chosen is not None
    n = len(found.train)
    out.print(
        f"Calibrating {args.config} on {args.data} ({n} requests): target {found.target.describe()}"
        f" ({found.required_fit:.1%} on the {'fit split' if found.confidence is not None else 'data'})"
        + _confidence_note(found),
        highlight=False,
    )
    out.print(_frontier_table(found))
    chosen = ", ".join(
        f"{s.label} threshold {t:g}" for s, t in zip(found.observations.slots, thresholds, strict=True)
    )
    out.print(f"[bold]chosen:[/] {chosen}", highlight=False)
    if found.confidence is not None:
        correct, bound = found.validation_bound(found.chosen.setting)
        assert found.required_validation is not None
        out.print(
            f"validation: {correct}/{len(found.validation)} correct ({correct / len(found.validation):.1%}); "
            f"one-sided {found.confidence:.0%} lower bound {bound:.1%} >= the "
            f"{found.required_validation:.1%} required there (the target is met with that confidence, "
            "not only on average)",
            highlight=False,
        )
    top = confirmed.top
    out.print(
        f"expected on {args.data}: accuracy {expected[0] / n:.1%}, cost {usd(expected[1])} "
        f"({float(expected[1] / top.cost_usd) if top.cost_usd else 0:.0%} of the top tier alone: "
        f"{top.accuracy:.1%}, {usd(top.cost_usd)})",
        highlight=False,
    )
    out.print(f"written to {args.out}", highlight=False)
    verdict = "[green]agrees with the simulation[/]" if agrees else "[yellow]DISAGREES with the simulation[/]"
    out.print(
        f"confirmed by the engine on {args.data}: accuracy {confirmed.cascade.accuracy:.1%}, "
        f"cost {usd(confirmed.cascade.cost_usd)}: {verdict}",
        highlight=False,
    )
    out.print(_side_by_side(confirmed, tested, args))


def _side_by_side(train: EvalReport, test: EvalReport | None, args: argparse.Namespace) -> Table:
    reports = [("train", args.data, train)] + ([("test", args.test, test)] if test is not None else [])
    table = Table(title=f"{args.out} replayed by the engine")
    table.add_column("")
    for name, path, report in reports:
        table.add_column(f"{name}: {path} ({report.cascade.requests})", justify="right")
    rows: list[tuple[str, Any]] = [
        ("cascade accuracy", lambda r: f"{r.cascade.accuracy:.1%}"),
        ("top tier alone accuracy", lambda r: f"{r.top.accuracy:.1%}"),
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


def _to_dict(
    found: Calibration,
    args: argparse.Namespace,
    thresholds: list[float],
    expected: tuple[int, Decimal],
    confirmed: EvalReport,
    agrees: bool,
    tested: EvalReport | None,
) -> dict[str, Any]:
    return {
        **summary(found, config=args.config, data=args.data, seed=args.seed),
        "chosen": chosen_summary(found, thresholds, expected),
        "written": str(args.out),
        "confirmed": {"agrees": agrees, **confirmed.to_dict()},
        "test": tested.to_dict() if tested is not None else None,
    }


def _unmet(found: Calibration, args: argparse.Namespace, stderr: Console) -> int:
    best = found.best
    if found.confidence is None:
        why = (
            f"target not met: {found.target.describe()} ({found.required_fit:.1%} on {args.data}) could "
            f"not be reached; the best accuracy found is {found.accuracy(best):.1%} "
            f"({_labelled(found, best.setting)}); no config written"
        )
    else:
        assert found.required_validation is not None
        bounds = [(found.validation_bound(p.setting)[1], p) for p in found.explored.values()]
        bound, point = max(bounds, key=lambda b: (b[0], -b[1].cost))
        validation_accuracy = found.validation_bound(point.setting)[0] / len(found.validation)
        why = (
            f"target not met with {found.confidence:.0%} confidence: {found.target.describe()} "
            f"({found.required_validation:.1%} on the {len(found.validation)}-request validation split) "
            f"was not reached by the lower bound of any setting explored; the best lower bound found is "
            f"{bound:.1%} (validation accuracy {validation_accuracy:.1%}, "
            f"best fit accuracy {found.accuracy(best):.1%}); no config written"
        )
    if args.json:
        data = summary(found, config=args.config, data=args.data, seed=args.seed)
        print(json.dumps({**data, "met": False, "error": why}, indent=2))
    stderr.print(f"[red]{why}[/]", highlight=False)
    return EXIT_UNMET
