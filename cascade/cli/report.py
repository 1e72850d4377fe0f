"""`cascade report`: the report of a batch output file, again; or of a ledger, by group."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.cli.exit_codes import ExitCode
from cascade.cli.ledger_source import LEDGER_HELP, SINCE_HELP, open_ledger, since_time
from cascade.cli.options import Subparsers, add_command
from cascade.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console


def register(subparsers: Subparsers) -> None:
    report = add_command(
        subparsers,
        "report",
        "the report of a batch output file, again, or of a ledger by feature, user, tier, model or day",
        "cascade report answers.jsonl",
        "cascade report answers.jsonl --json",
        "cascade report --ledger spend.sqlite --by feature --since 7d",
        events=False,
    )
    report.add_argument("output", type=Path, nargs="?", help="the --output file of a `cascade batch` job")
    report.add_argument("--ledger", metavar="PATH_OR_URL", help=LEDGER_HELP)
    report.add_argument(
        "--by",
        metavar="KEY",
        help="with --ledger: group by tier, model, day, or any tag (feature, user, ...); default tier",
    )
    report.add_argument("--since", metavar="WHEN", help=SINCE_HELP)
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    report.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    if (args.output is None) == (args.ledger is None):
        raise ConfigError("give a batch output file or --ledger, one of them")
    if args.ledger is not None:
        return _ledger_report(args)
    if args.since is not None or args.by is not None:
        raise ConfigError("--since and --by read a ledger: give --ledger")
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


def _ledger_report(args: argparse.Namespace) -> ExitCode:
    from rich.console import Console

    from cascade.cli.render_live import WIDE, ledger_tables
    from cascade.live.spend import check_group_key, ledger_report

    since = since_time(args.since)
    args.by = args.by or "tier"
    store = open_ledger(args.ledger)
    try:
        results = store.select("results", since)
        check_group_key(args.by, results)
        report = ledger_report(
            args.by,
            results,
            store.select("attempts", since),
            store.select("audits", since),
            store.select("alarms"),
            store.select("shadows", since),
        ).to_dict()
    finally:
        store.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return ExitCode.OK
    console = Console(width=max(Console().width, WIDE))  # a table this wide wraps into mush below it
    for table in ledger_tables(
        report, title=f"Ledger report by {args.by}" + (f" since {args.since}" if args.since else "")
    ):
        console.print(table)
    return ExitCode.OK
