"""`cascade batch`: run a JSONL file of requests as a resumable job."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import (
    CONFIG_HELP,
    Subparsers,
    add_call_options,
    add_command,
    check_starts,
    whole_number,
)
from cascade.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from cascade.batch.job import Tally
    from cascade.batch.runner import BatchOptions, BatchOutcome


def register(subparsers: Subparsers) -> None:
    batch = add_command(
        subparsers,
        "batch",
        "run a JSONL file of requests (resumable: run it again after a crash)",
        "cascade batch configs/openai-to-anthropic.yaml --input requests.jsonl --output answers.jsonl",
        "cascade batch CONFIG --input in.jsonl --output out.jsonl --concurrency 32 --rpm small=600",
    )
    batch.add_argument("config", type=Path, help=CONFIG_HELP)
    batch.add_argument(
        "--input", type=Path, required=True, help="JSONL: {id, prompt | messages, tags?, metadata?}"
    )
    batch.add_argument("--output", type=Path, required=True, help="JSONL results, one line per input id")
    batch.add_argument(
        "--concurrency", type=int, default=8, help="model calls in flight, all tiers together (default 8)"
    )
    batch.add_argument("--max-cost-usd", type=_decimal, help="job budget: no new item starts once spent")
    batch.add_argument(
        "--rpm",
        action="append",
        default=[],
        metavar="TIER=N",
        help="requests per minute for one tier, over its config's rate_limit (repeat for each tier)",
    )
    batch.add_argument(
        "--tpm",
        action="append",
        default=[],
        metavar="TIER=N",
        help="tokens per minute for one tier, over its config's rate_limit (repeat for each tier)",
    )
    batch.add_argument("--review", type=Path, help="unverified items (default: OUTPUT.review.jsonl)")
    batch.add_argument("--report-json", type=Path, help="also write the report's figures as JSON")
    batch.add_argument(
        "--record", type=Path, help="also write the outcomes as recorded outcomes (for eval and calibrate)"
    )
    batch.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a TTY)",
    )
    batch.add_argument("--events", action="store_true", help="also log every attempt of every item")
    add_call_options(batch, tags_help="a tag of every item (a line's own `tags` win); repeatable")
    batch.add_argument(
        "--retry-failed", action="store_true", help="run again the finished items that got no answer"
    )
    batch.add_argument(
        "--retry-unverified",
        action="store_true",
        help="run again the finished items whose answer is not verified (those with none too)",
    )
    batch.add_argument(
        "--allow-config-change",
        action="store_true",
        help="resume although the config changed: keep the items made under the earlier one",
    )
    batch.add_argument(
        "--max-config-failures",
        type=whole_number(0),
        default=5,
        metavar="N",
        help="stop when one model fails with the same 401/403/404 or missing key on N items in a row "
        "(default 5; 0: never)",
    )
    batch.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    import asyncio

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from cascade.batch.items import Starts
    from cascade.batch.runner import BatchOptions, run_batch
    from cascade.batch.state import done_before
    from cascade.config import load_config

    options = BatchOptions(
        input=args.input,
        output=args.output,
        concurrency=args.concurrency,
        max_cost_usd=args.max_cost_usd,
        review=args.review,
        record=args.record,
        allow_config_change=args.allow_config_change,
        retry_failed=args.retry_failed or args.retry_unverified,
        retry_unverified=args.retry_unverified,
        max_config_failures=args.max_config_failures,
        tags=dict(args.tag),
        cache=not args.no_cache,
        starts=Starts(args.min_tier, args.start_tier),
    )
    options.check()  # before anything runs: no input overwritten, no folder missing at the end
    if args.report_json is not None:
        _check_report_path(args.report_json, options)
    config = load_config(args.config)
    check_starts(args, [t.name for t in config.tiers])
    tier_names = {t.name for t in config.tiers}
    options = replace(options, rate_limits=_rate_limits(args.rpm, args.tpm, tier_names, config))
    show = stderr.is_terminal if args.progress is None else args.progress
    earlier = done_before(options.output)
    if earlier:
        stderr.print(f"resuming: {earlier} items are done already and will not be sent again")
    with Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[outcomes]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("cost ${task.fields[cost]}"),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
        console=stderr,
        disable=not show,
    ) as bar:
        task = bar.add_task("items", total=None, cost="0.0000", rate="", outcomes="", eta="")
        started = time.monotonic()

        def total(lines: int) -> None:
            bar.update(task, total=lines)

        def advance(tally: Tally) -> None:
            fields: dict[str, Any] = progress_fields(tally, bar.tasks[task].total, time.monotonic() - started)
            bar.update(task, completed=tally.handled, cost=f"{tally.spent:.4f}", **fields)

        outcome = asyncio.run(
            run_batch(config, options, base_dir=args.config.parent, total_hint=total, progress=advance)
        )
    return _say(outcome, args, options, Console(soft_wrap=True))


def progress_fields(tally: Tally, total: float | None, elapsed_s: float) -> dict[str, str]:
    """The progress bar's words: accepted per tier, escalated, unverified; the rate and the
    time left, from the items answered in this run (those done earlier are skipped in a
    burst, and would make both look better than they are)."""
    answered = tally.answered
    accepted = " ".join(f"{tier} {n}" for tier, n in sorted(answered.accepted_by_tier.items()))
    outcomes = f"✓ {accepted or '-'} · ↑ {answered.escalated} · ? {answered.unverified}"
    rate = (tally.handled - tally.skipped) / elapsed_s if elapsed_s > 0 else 0.0
    if total is None or rate <= 0:
        return {"outcomes": outcomes, "rate": "", "eta": "ETA -"}
    left_s = int(max(0.0, total - tally.handled) / rate)
    eta = f"ETA {left_s // 3600}:{left_s // 60 % 60:02d}:{left_s % 60:02d}"
    return {"outcomes": outcomes, "rate": f"{rate:.1f}/s", "eta": eta}


def _say(outcome: BatchOutcome, args: argparse.Namespace, options: BatchOptions, out: Console) -> ExitCode:
    """The report and what needs saying about the run; the exit code."""
    from rich.markup import escape

    from cascade.batch.budget import UNCAPPED_OUTPUT_TOKENS
    from cascade.batch.files import write_atomically
    from cascade.batch.state import short_digest, state_path
    from cascade.cli.render import batch_table

    counts = outcome.counts
    if counts.interrupted:
        finished = outcome.report.items
        out.print(
            f"[yellow]interrupted by {counts.interrupted}: {finished} items are done and saved in "
            f"{state_path(options.output)}; {counts.abandoned} in flight were abandoned and "
            f"{counts.not_started} not started. Run the same command again to resume: nothing done "
            "is sent again[/]"
        )
        return ExitCode.TERMINATED if counts.interrupted == "SIGTERM" else ExitCode.INTERRUPTED
    out.print(batch_table(outcome.report, title=f"Batch report: {args.output}"))
    if outcome.input_changed:
        out.print(
            f"the input {args.input} changed since the last run: ids finished then are kept and not "
            "sent again; the output follows the input as it is now"
        )
    if len(outcome.configs) > 1:
        made = ", ".join(
            f"{n} under config {short_digest(d)}{' (this one)' if d == outcome.config else ''}"
            for d, n in outcome.configs.items()
        )
        out.print(f"items by config: {made}; each output line says its `config`")
    if outcome.skipped_done:
        out.print(f"resumed: {outcome.skipped_done} items finished by an earlier run were not sent again")
    if outcome.report.line_errors:
        out.print(f"{outcome.report.line_errors} input lines in error: their records in the output say why")
    if outcome.review_lines:
        out.print(f"{outcome.review_lines} unverified items listed for review in {options.review_path}")
    if outcome.uncapped_tiers:
        out.print(
            f"tiers {', '.join(outcome.uncapped_tiers)} set no max_tokens: the budget reserved "
            f"{UNCAPPED_OUTPUT_TOKENS} output tokens per call on them; set params.max_tokens for a hard "
            "ceiling"
        )
    if counts.stopped_by_failures:
        out.print(
            f"[red]stopped: {escape(counts.stopped_by_failures)}; {counts.not_started} items not started[/]"
        )
    if counts.stopped_by_budget:
        out.print(
            f"[yellow]budget of ${args.max_cost_usd} reached: {counts.not_started} items not started "
            "(an item starts only when its worst case fits in what is left); run again with a larger "
            "--max-cost-usd to finish them[/]"
        )
    if args.report_json:
        write_atomically(args.report_json, iter([json.dumps(outcome.report.to_dict(), indent=2)]))
    attention = (
        counts.stopped_by_budget
        or counts.stopped_by_failures
        or outcome.review_lines
        or outcome.report.line_errors
    )
    return ExitCode.ATTENTION if attention else ExitCode.OK


def _rate_limits(
    rpm: list[str], tpm: list[str], tiers: set[str], config: Any
) -> dict[str, tuple[float | None, float | None]]:
    """`--rpm small=600 --tpm small=90000` as {tier: (rpm, tpm)}, defaults from the config."""
    limits: dict[str, tuple[float | None, float | None]] = {}
    for flag, values, slot in (("--rpm", rpm, 0), ("--tpm", tpm, 1)):
        for value in values:
            tier, _, number = value.partition("=")
            if tier not in tiers:
                raise ConfigError(
                    f"{flag} {value}: no tier named {tier!r} (tiers: {', '.join(sorted(tiers))})"
                )
            try:
                rate = float(number)
            except ValueError:
                raise ConfigError(f"{flag} {value}: expected TIER=NUMBER, a number per minute") from None
            if not (rate > 0 and math.isfinite(rate)):
                raise ConfigError(f"{flag} {value}: the rate must be a positive, finite number")
            current = limits.get(tier) or _configured(config, tier)
            limits[tier] = (rate, current[1]) if slot == 0 else (current[0], rate)
    return limits


def _check_report_path(path: Path, options: BatchOptions) -> None:
    """--report-json must not overwrite the input or the output, and must have a folder."""
    for flag, other in (("--input", options.input), ("--output", options.output)):
        if path.resolve() == other.resolve():
            raise ConfigError(f"--report-json {path} is the {flag[2:]} file: it would be overwritten")
    if not path.parent.is_dir():
        raise ConfigError(f"--report-json {path}: no folder {path.parent} to write it in")


def _configured(config: Any, tier: str) -> tuple[float | None, float | None]:
    limit = next(t for t in config.tiers if t.name == tier).rate_limit
    return limit.requests_per_minute, limit.tokens_per_minute


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive, finite number, not {text!r}")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: cascade batch ...")
