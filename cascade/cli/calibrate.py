"""`cascade calibrate`: fit verifier thresholds to a quality target (see `cascade.offline.calibration`).

Exit codes: OK a config was written; ATTENTION the target could not be met (nothing written).
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

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import COMMON, Subparsers
from cascade.cli.render import confidence_note, print_calibration, settings_text, usd
from cascade.config import load_config
from cascade.core.errors import ConfigError
from cascade.offline.calibration import Calibration, Target, calibrate, observe
from cascade.offline.calibration.report import Checked, chosen_summary, summary
from cascade.offline.calibration.thresholds import read_raw_config, write_calibrated
from cascade.offline.evaluation import run_evaluation
from cascade.offline.records import check_fits, with_records
from cascade.providers.replay import RecordedSet, load_recorded


def register(subparsers: Subparsers) -> None:
    cal = subparsers.add_parser(
        "calibrate",
        parents=[COMMON],
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
    cal.set_defaults(handler=handle, quiet_by_default=True)


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


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    target = _target(args)
    if args.plot:
        from cascade.cli.plotting import pyplot

        try:
            pyplot()  # say now, not after the work, that matplotlib is missing
        except ConfigError as exc:  # printed here: the extra's name in brackets is no markup
            stderr.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            return ExitCode.USAGE
    if args.confidence is not None and not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence is a level between 0 and 1, not {args.confidence:g}")
    raw = read_raw_config(args.config)
    train = _recorded(args.data, stderr)
    config = with_records(load_config(args.config), args.data)
    check_fits(config, train, args.data)
    test_data = _recorded(args.test, stderr) if args.test else None
    if test_data is not None:  # refused before the search, not after a config is written
        check_fits(with_records(load_config(args.config), args.test), test_data, args.test)
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
    if test_data is not None:
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
    checked = Checked(found, thresholds, expected, confirmed, agrees, tested)
    if args.json:
        print(json.dumps(_to_dict(checked, args), indent=2))
    else:
        print_calibration(out, checked, args)
    if args.plot:
        stderr.print(f"plot written to {args.plot}")
    if not agrees:
        stderr.print(
            "[yellow]warning:[/] the engine and the simulation disagree on the training data "
            "(a verifier that is not deterministic, such as a live judge, can do this)"
        )
    return ExitCode.OK


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
        f"target: {found.target.describe()}" + confidence_note(found),
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


# -- output ----------------------------------------------------------------------------------


def _train_point(found: Calibration, setting: tuple[float, ...]) -> tuple[Decimal, float]:
    correct, cost = found.on_train(setting)
    return cost, correct / len(found.train)


def _labelled(found: Calibration, setting: tuple[float, ...]) -> str:
    texts = settings_text(found, setting)
    return "thresholds: " + ", ".join(
        f"{s.label} {t}" for s, t in zip(found.observations.slots, texts, strict=True)
    )


def _to_dict(checked: Checked, args: argparse.Namespace) -> dict[str, Any]:
    found, confirmed, tested = checked.found, checked.confirmed, checked.tested
    return {
        **summary(found, config=args.config, data=args.data, seed=args.seed),
        "chosen": chosen_summary(found, checked.thresholds, checked.expected),
        "written": str(args.out),
        "confirmed": {"agrees": checked.agrees, **confirmed.to_dict()},
        "test": tested.to_dict() if tested is not None else None,
    }


def _unmet(found: Calibration, args: argparse.Namespace, stderr: Console) -> ExitCode:
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
    return ExitCode.ATTENTION
