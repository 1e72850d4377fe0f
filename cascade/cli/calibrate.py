"""`cascade calibrate`: fit verifier thresholds and the tiers to keep to a quality target
(see `cascade.offline.calibration`).

Exit codes: OK a config was written (the top tier alone when nothing cheaper could be
certified); ATTENTION the target could not be met (nothing written).
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import CONFIG_HELP, Subparsers, add_command
from cascade.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from cascade.offline.calibration import Calibration, Observations, Target
    from cascade.offline.calibration.report import Checked
    from cascade.providers.replay import RecordedSet

# what `--learn-share` defaults to: `cascade.offline.calibration.certify.LEARN_SHARE`, written out
# so that the parser does not load the calibration (a test holds the two equal)
LEARN_SHARE_DEFAULT = 0.3


def register(subparsers: Subparsers) -> None:
    cal = add_command(
        subparsers,
        "calibrate",
        "fit verifier thresholds (and the tiers to keep) to a quality target on recorded outcomes",
        "cascade calibrate configs/routellm-gsm8k.yaml --data train.jsonl --out tuned.yaml --match-top",
        "cascade calibrate CONFIG --data train.jsonl --out tuned.yaml --max-loss 0.02 --confidence 0.9 "
        "--test test.jsonl",
    )
    cal.description = (
        "Search the tiers to keep and the thresholds of the config's verifiers for the cheapest "
        "cascade that meets a quality target on recorded outcomes, and write the tuned config. With "
        "--confidence, the target holds on unseen requests of the same kind with that confidence."
    )
    cal.add_argument("config", type=Path, help=CONFIG_HELP)
    cal.add_argument("--data", type=Path, required=True, metavar="TRAIN", help="recorded outcomes to fit on")
    cal.add_argument("--out", type=Path, required=True, metavar="CALIBRATED.yaml", help="the config to write")
    target = cal.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--max-loss",
        type=float,
        metavar="EPS",
        help="lose at most this much accuracy against the top tier alone on the same requests (0-1)",
    )
    target.add_argument("--match-top", action="store_true", help="lose nothing against the top tier alone")
    target.add_argument("--target-accuracy", type=float, metavar="ACC", help="reach this accuracy (0-1)")
    target.add_argument(
        "--of-top",
        type=float,
        metavar="SHARE",
        help="reach this share of the top tier's accuracy (no --confidence)",
    )
    cal.add_argument(
        "--test", type=Path, metavar="FILE", help="held-out recorded outcomes to score the result on"
    )
    cal.add_argument(
        "--confidence",
        type=float,
        metavar="LEVEL",
        help="hold the target on unseen requests with this confidence, e.g. 0.9 (Learn-then-Test; "
        "docs/calibration.md)",
    )
    cal.add_argument(
        "--learn-share",
        type=float,
        default=LEARN_SHARE_DEFAULT,
        metavar="SHARE",
        help="with --confidence: the share of the data that learns the testing order "
        f"(default {LEARN_SHARE_DEFAULT})",
    )
    cal.add_argument("--seed", type=int, default=0, help="seed of the learn/certify split")
    cal.add_argument(
        "--keep-all-tiers",
        action="store_true",
        help="search thresholds on the full ladder only (skip no tier)",
    )
    cal.add_argument("--json", action="store_true", help="print the outcome as JSON")
    cal.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="draw the error-cost curve (train, and --test) with the target",
    )
    cal.set_defaults(handler=handle, quiet_by_default=True)


def _target(args: argparse.Namespace) -> Target:
    from cascade.offline.calibration import Target

    if args.match_top:
        return Target("match_top")
    if args.max_loss is not None:
        return Target("max_loss", args.max_loss)
    if args.of_top is not None:
        return Target("of_top", args.of_top)
    return Target("accuracy", args.target_accuracy)


def _recorded(path: Path, stderr: Console) -> RecordedSet:
    from rich.markup import escape

    from cascade.providers.replay import load_recorded

    recorded = load_recorded(path)
    for problem in recorded.problems:
        stderr.print(f"[yellow]skipped:[/] {escape(problem)}", highlight=False)
    return recorded


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    import asyncio

    from rich.console import Console
    from rich.markup import escape

    from cascade.cli.render_calibration import print_calibration
    from cascade.config import load_config
    from cascade.offline.calibration import calibrate, observe
    from cascade.offline.calibration.certify import check_split
    from cascade.offline.calibration.choose import check_confidence
    from cascade.offline.calibration.report import Checked
    from cascade.offline.calibration.thresholds import read_raw_config
    from cascade.offline.evaluation import run_evaluation
    from cascade.offline.records import check_fits, check_held_out, with_records

    target = _target(args)
    if args.plot:
        from cascade.cli.plotting import pyplot

        try:
            pyplot()  # say now, not after the work, that matplotlib is missing
        except ConfigError as exc:  # printed here: the extra's name in brackets is no markup
            stderr.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            return ExitCode.USAGE
    for flag, path in (("--out", args.out), ("--plot", args.plot)):
        if path is not None and not path.parent.is_dir():
            raise ConfigError(f"{flag} {path}: there is no folder {path.parent}")
    raw = read_raw_config(args.config)
    train = _recorded(args.data, stderr)
    if args.confidence is not None:  # refused before the replay, not after it
        check_confidence(args.confidence, target)
        check_split(len(train), args.learn_share)
    config = with_records(load_config(args.config), args.data)
    check_fits(config, train, args.data)
    test_data = _recorded(args.test, stderr) if args.test else None
    if test_data is not None:  # refused before the search, not after a config is written
        check_fits(with_records(load_config(args.config), args.test), test_data, args.test)
        check_held_out(train, test_data, args.data, args.test)
    observations = asyncio.run(observe(config, train, base_dir=args.config.parent, source=str(args.config)))
    held_out = None
    if args.plot and test_data is not None:  # observed before anything is written
        test_config = with_records(load_config(args.config), args.test)
        held_out = asyncio.run(observe(test_config, test_data, base_dir=args.config.parent, held_out=True))
    found = calibrate(
        observations,
        target,
        confidence=args.confidence,
        seed=args.seed,
        learn_share=args.learn_share,
        skip_tiers=not args.keep_all_tiers,
    )
    if found.chosen is None:
        return _unmet(found, args, stderr)
    thresholds = found.thresholds(found.chosen.setting)
    expected = found.on_train(found.chosen)
    _write(raw, args.config, args.out, found, thresholds, expected, args)
    # the written config, run by the real engine on the training data
    confirmed = run_evaluation(
        with_records(load_config(args.out), args.data), train, base_dir=args.out.parent
    )
    n = len(found.train)
    agrees = confirmed.cascade.accuracy == expected[0] / n and confirmed.cascade.cost_usd == expected[1]
    tested = None
    if test_data is not None:  # unseen: scored by the engine on the written config
        tested = run_evaluation(
            with_records(load_config(args.out), args.test), test_data, base_dir=args.out.parent
        )
    if args.plot:
        _plot(found, args, held_out)
    checked = Checked(found, thresholds, expected, confirmed, agrees, tested)
    if args.json:
        print(json.dumps(_to_dict(checked, args), indent=2))
    else:
        print_calibration(Console(width=max(Console().width, 130)), checked, args)
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
    from cascade.cli.render import usd
    from cascade.cli.render_calibration import ladder_text, thresholds_text
    from cascade.offline.calibration.report import skipped
    from cascade.offline.calibration.thresholds import write_calibrated

    chosen = found.chosen
    assert chosen is not None
    slots = found.observations.slots
    n = len(found.train)
    top_correct, top_cost = found.top_on_train
    dropped = skipped(found, chosen)
    lines = [
        f"Calibrated by `cascade calibrate` from {config_path}",
        f"target: {found.target.describe()}"
        + (f", with {found.confidence:.0%} confidence on unseen requests" if found.confidence else ""),
        f"fitted on: {args.data} ({n} requests)",
        f"on that data: accuracy {expected[0] / n:.1%}, cost {usd(expected[1])} "
        f"(top tier alone: {top_correct / n:.1%}, {usd(top_cost)})",
        f"ladder: {ladder_text(found, chosen)}",
        f"thresholds: {thresholds_text(found, chosen)}",
    ]
    if dropped:
        lines.append(f"tiers dropped from {config_path.name}: {', '.join(dropped)} (the ladder skips them)")
    if found.fell_back:
        lines.append("nothing cheaper than the top tier alone could be certified on this data")
    kept = [(slots[i], thresholds[i]) for i in found.kept(chosen)]
    write_calibrated(raw, config_path, out, kept, "\n".join([*lines, ""]), dropped)


# -- output ----------------------------------------------------------------------------------


def _plot(found: Calibration, args: argparse.Namespace, held_out: Observations | None) -> None:
    from cascade.cli.plotting import plot_error_cost
    from cascade.offline.calibration.curves import error_curves

    curves, chosen, label, line = error_curves(found, held_out)
    plot_error_cost(
        args.plot,
        curves,
        chosen,
        error_label=label,
        target=line,
        title=f"{args.out.name}: error against cost",
    )


def _to_dict(checked: Checked, args: argparse.Namespace) -> dict[str, Any]:
    from cascade.offline.calibration.report import chosen_summary, summary, unseen_summary

    found, confirmed, tested = checked.found, checked.confirmed, checked.tested
    return {
        **summary(found, config=args.config, data=args.data, seed=args.seed),
        "chosen": chosen_summary(found, checked.thresholds, checked.expected),
        "written": str(args.out),
        "confirmed": {"agrees": checked.agrees, **confirmed.to_dict()},
        "test": (
            {**tested.to_dict(), "unseen": unseen_summary(tested, found.target.max_loss)}
            if tested is not None
            else None
        ),
    }


def _unmet(found: Calibration, args: argparse.Namespace, stderr: Console) -> ExitCode:
    from rich.markup import escape

    from cascade.cli.render_calibration import ladder_text, thresholds_text
    from cascade.offline.calibration.report import summary

    best = found.best
    assert best is not None
    certification = found.certification
    if certification is None:
        top_correct, _ = found.top_on_train
        top = top_correct / len(found.train)
        required = found.target.required(top)  # the accuracy the target asks on this data
        why = (
            f"target not met: {found.target.describe()}, an accuracy of {required:.1%} on {args.data} "
            f"(where the top tier alone scores {top:.1%}), could not be reached; the best accuracy "
            f"found is {found.accuracy(best):.1%} ({ladder_text(found, best)}; "
            f"thresholds: {thresholds_text(found, best)}); no config written"
        )
    else:
        n = len(certification.certify)
        first = certification.steps[0]
        why = (
            f"target not met with {found.confidence:.0%} confidence: {found.target.describe()} could not be "
            f"certified on the {n} certify requests, not even for the top tier alone "
            f"({first.correct / n:.1%} correct there, p-value {first.p_value:.3f}); no config written"
        )
    if args.json:
        data = summary(found, config=args.config, data=args.data, seed=args.seed)
        print(json.dumps({**data, "met": False, "error": why}, indent=2))
    stderr.print(f"[red]{escape(why)}[/]", highlight=False)
    return ExitCode.ATTENTION
