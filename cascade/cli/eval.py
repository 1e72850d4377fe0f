"""`cascade eval`: replay a cascade on recorded outcomes (see `cascade.offline.evaluation`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import CONFIG_HELP, Subparsers, add_command

if TYPE_CHECKING:
    from rich.console import Console


def register(subparsers: Subparsers) -> None:
    evaluate = add_command(
        subparsers,
        "eval",
        "replay a cascade on recorded outcomes",
        "cascade eval configs/routellm-gsm8k.yaml --data test.jsonl",
    )
    evaluate.add_argument("config", type=Path, help=CONFIG_HELP)
    evaluate.add_argument("--data", type=Path, required=True, help="recorded outcomes (JSONL)")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument("--plot", type=Path, metavar="PNG", help="draw cost against accuracy")
    evaluate.set_defaults(handler=handle, quiet_by_default=True)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    from rich.console import Console
    from rich.markup import escape

    from cascade.cli.render import eval_table
    from cascade.config import load_config
    from cascade.offline.evaluation import run_evaluation
    from cascade.offline.records import check_fits, with_records
    from cascade.providers.replay import load_recorded

    recorded = load_recorded(args.data)
    config = with_records(load_config(args.config), args.data)
    check_fits(config, recorded, args.data)
    for problem in recorded.problems:
        stderr.print(f"[yellow]skipped:[/] {escape(problem)}", highlight=False)
    report = run_evaluation(config, recorded, base_dir=args.config.parent)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        Console().print(eval_table(report, title=f"Evaluation of {args.config} on {args.data}"))
    if args.plot:
        from cascade.cli.plotting import plot_cost_accuracy

        plot_cost_accuracy(report, args.plot)
        stderr.print(f"plot written to {args.plot}")
    return ExitCode.OK
