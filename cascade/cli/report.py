"""`cascade report`: the report of a batch output file, again."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import Subparsers, add_command
from cascade.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console


def register(subparsers: Subparsers) -> None:
    report = add_command(
        subparsers,
        "report",
        "the report of a batch output file, again",
        "cascade report answers.jsonl",
        "cascade report answers.jsonl --json",
        events=False,
    )
    report.add_argument("output", type=Path, help="the --output file of a `cascade batch` job")
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    report.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    from rich.console import Console

    from cascade.batch.report import NotBatchOutput, report_file
    from cascade.cli.render import batch_table

    if not args.output.is_file():
        raise ConfigError(f"{args.output}: no such file")
    try:
        report = report_file(args.output)
    except NotBatchOutput as exc:
        raise ConfigError(f"{args.output}: not a batch output file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{args.output}: not a batch output file: not UTF-8 text ({exc.reason})") from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        Console().print(batch_table(report, title=f"Batch report: {args.output}"))
    return ExitCode.OK
