"""`cascade audit`: the shadow audit's findings in a ledger: per tier, how many accepted
answers were audited and how many disagreed with the reference, the rate with its interval,
the trend by day, the alarms up; the audited pairs as recorded outcomes; clearing an alarm."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade.cli.exit_codes import ExitCode
from cascade.cli.ledger_source import LEDGER_HELP, SINCE_HELP, open_ledger, since_time
from cascade.cli.options import Subparsers, add_command
from cascade.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from cascade.live.store import LedgerStore


def register(subparsers: Subparsers) -> None:
    audit = add_command(
        subparsers,
        "audit",
        "the shadow audit's false-accept rate per tier, with its bound and trend, from a ledger",
        "cascade audit --ledger spend.sqlite",
        "cascade audit --ledger spend.sqlite --by feature --since 7d",
        "cascade audit --ledger spend.sqlite --export audited.jsonl",
        "cascade audit --ledger spend.sqlite --clear small",
        events=False,
    )
    audit.add_argument("--ledger", metavar="PATH_OR_URL", required=True, help=LEDGER_HELP)
    audit.add_argument("--by", metavar="TAG", help="also per value of this tag (feature, user, ...)")
    audit.add_argument("--since", metavar="WHEN", help=SINCE_HELP)
    audit.add_argument("--confidence", type=float, default=0.95, help="the bounds' level (default 0.95)")
    audit.add_argument(
        "--limit", type=float, default=0.05, help="the false-accept rate allowed (default 0.05)"
    )
    audit.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the audited pairs as recorded outcomes (for eval, calibrate)",
    )
    audit.add_argument(
        "--clear",
        metavar="TIER[:TAG=VALUE]",
        help="clear an alarm once the tier is recalibrated (takes effect on restart)",
    )
    audit.add_argument("--json", action="store_true", help="print the figures as JSON")
    audit.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    from rich.console import Console
    from rich.markup import escape

    from cascade.cli.render_live import WIDE, audit_tables
    from cascade.live.audit_figures import audit_figures

    for name, value in (("--confidence", args.confidence), ("--limit", args.limit)):
        if not 0 < value < 1:
            raise ConfigError(f"{name} must be between 0 and 1, not {value}")
    if args.clear is not None and (args.export or args.json or args.by or args.since):
        raise ConfigError("--clear changes the ledger and prints nothing: give it alone (with --ledger)")
    since = since_time(args.since)
    store = open_ledger(args.ledger)
    try:
        if args.clear is not None:
            _clear(store, args.clear, store.select("audits"), store.select("alarms"))
            stderr.print(
                f"cleared the alarm on {escape(args.clear)}: a cascade started from now on serves it again"
            )
            return ExitCode.OK
        audits = store.select("audits", since)
        alarms = store.select("alarms")
    finally:
        store.close()
    if args.export is not None:
        written = _export(audits, args.export)
        stderr.print(f"wrote {written} audited pairs to {args.export}")
    figures = audit_figures(audits, alarms, confidence=args.confidence, limit=args.limit, by=args.by)
    if args.json:
        print(json.dumps(figures, indent=2))
        return ExitCode.OK
    console = Console(width=max(Console().width, WIDE))  # a table this wide wraps into mush below it
    for table in audit_tables(figures):
        console.print(table)
    return ExitCode.OK


def _clear(
    store: LedgerStore, target: str, audits: list[dict[str, Any]], alarms: list[dict[str, Any]]
) -> None:
    """Mark the alarm of `target` cleared: audits from before now no longer count for it. A
    tier (or slice) the ledger never audited is refused: a typo would clear nothing."""
    from cascade.live.drift import groups_of
    from cascade.live.rows import Row

    tier, _, group = target.partition(":")
    known = {(str(a["tier"]), str(a["grp"] or "")) for a in alarms if a["kind"] != "cleared"}
    for audit in audits:
        known.update(groups_of(str(audit["tier"]), audit["tags"]))
    if (tier, group) not in known:
        names = sorted(f"{t}:{g}" if g else t for t, g in known) or ["none: the ledger holds no audit"]
        raise ConfigError(
            f"--clear {target!r}: no audit of it in the ledger (audited: {', '.join(names[:20])})"
        )
    row = Row.of(
        "alarms",
        ts=time.time(),
        config="*",
        tier=tier,
        grp=group,
        kind="cleared",
        bound=0.0,
        audited=0,
        disagreements=0,
    )
    store.insert([row])


def _export(audits: list[dict[str, object]], path: Path) -> int:
    """The audited pairs, one recorded line each, written whole or not at all."""
    from cascade.batch.files import write_atomically

    return write_atomically(path, (str(a["pair"]) for a in audits if a["pair"]))
