"""The `cascade` command: run, validate, demo.

Exit codes: 0 a verified answer; 3 an unverified answer, or every tier failed;
2 a usage or configuration error; 1 an internal error (set CASCADE_DEBUG=1 for a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cascade.batch.report import BatchReport
from cascade.cli.batch import add_commands as add_batch_commands
from cascade.cli.calibrate import add_commands as add_calibrate_commands
from cascade.cli.eval import add_commands as add_eval_commands
from cascade.cli.plugins import register_plugin_commands
from cascade.cli.render import batch_table, path_of, print_result, restart_notice, to_json, usd
from cascade.config import load_config, parse_config
from cascade.core.errors import ConfigError, ExhaustedError
from cascade.core.events import StreamDelta, StreamRestart, StreamResult
from cascade.core.redaction import redact
from cascade.core.values import Result
from cascade.engine import Cascade
from cascade.logs import configure_logging
from cascade.offline.records import with_records
from cascade.providers.simulated import BUILTIN, load_examples

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_UNVERIFIED = 0, 1, 2, 3
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes of an argument that were not UTF-8


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # the demo and batch jobs show tables and a progress bar: their events only on request
    quiet = args.quiet or getattr(args, "quiet_by_default", False) or not getattr(args, "events", True)
    configure_logging(args.log_format, "warning" if quiet else "info")
    stderr = Console(stderr=True, soft_wrap=True)  # messages keep their paths whole: no wrapping
    try:
        return int(args.handler(args, stderr))
    except ConfigError as exc:
        stderr.print(f"[red]error:[/] {escape(redact(str(exc)))}", highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("CASCADE_DEBUG"):
            raise
        stderr.print(
            f"[red]internal error:[/] {escape(redact(f'{type(exc).__name__}: {exc}'))} "
            "(set CASCADE_DEBUG=1 for a traceback)",
            highlight=False,
        )
        return EXIT_INTERNAL


class _IntermixedParser(argparse.ArgumentParser):
    """A sub-command parser whose positionals may come after flags (`cascade run CONFIG
    --json "prompt"`): plain argparse gives the prompt's slot away at the first flag."""

    _parsing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._parsing:  # argparse's intermixed parsing calls this again, twice
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return super().parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cascade", description="Cheapest model first, verified answers, every attempt billed."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-format",
        choices=["console", "json"],
        default="console",
        help="format of the per-attempt events on stderr",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub: Any = parser.add_subparsers(dest="command", required=True, parser_class=_IntermixedParser)

    run = sub.add_parser("run", parents=[common], help="answer one prompt")
    run.add_argument("config", type=Path)
    run.add_argument("prompt", nargs="?", help="the prompt (read from stdin when omitted)")
    run.add_argument("--system", help="system prompt")
    run.add_argument("--json", action="store_true", help="print the whole result as JSON")
    run.add_argument(
        "--stream",
        action="store_true",
        help="show the answer as it is generated (with --json: events as JSON lines)",
    )
    run.add_argument(
        "--policy",
        choices=["buffer", "restart", "finish_degraded"],
        help="with --stream: what happens to text already shown when a check fails (default: the config's)",
    )
    run.set_defaults(handler=_run)

    validate = sub.add_parser("validate", parents=[common], help="check a config without calling any model")
    validate.add_argument("config", type=Path)
    validate.set_defaults(handler=_validate)

    add_batch_commands(sub, common)
    add_eval_commands(sub, common)
    add_calibrate_commands(sub, common)

    demo = sub.add_parser("demo", parents=[common], help="offline demo on a bundled example set (no API key)")
    demo.add_argument("--json", action="store_true", help="print each result as a JSON line")
    demo.add_argument(
        "--events",
        action="store_true",
        help="also log every attempt (off by default: the tables tell the story)",
    )
    demo.set_defaults(handler=_demo)
    register_plugin_commands(sub, common)  # last: a plug-in cannot take a built-in command's name
    return parser


def _run(args: argparse.Namespace, stderr: Console) -> int:
    prompt = args.prompt
    if prompt is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise ConfigError("no prompt: give one as an argument or on stdin")
        prompt = _read_stdin().rstrip("\r\n")  # the newline `echo` adds is not part of it
    elif _NOT_UTF8.search(prompt):
        raise ConfigError("the prompt argument is not valid UTF-8")
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    cascade = Cascade.from_config(args.config)
    try:
        if args.stream:
            result = asyncio.run(_stream(cascade, prompt, args, stderr))
        else:
            result = asyncio.run(_answer(cascade, prompt, args.system))
    except ExhaustedError as exc:
        if args.json:  # a stream's last line is a result event, whatever the outcome
            event = {"event": "result"} if args.stream else {}
            print(to_json({**event, **exc.result.to_dict(), "error": str(exc)}))
        stderr.print(f"[red]no answer:[/] {escape(str(exc))}", highlight=False)
        return EXIT_UNVERIFIED
    if args.stream:
        if not args.json:
            print_result(stderr, result)
    elif args.json:
        print(to_json(result.to_dict()))
    else:
        print(result.output)
        print_result(stderr, result)
    return EXIT_OK if result.verified else EXIT_UNVERIFIED


def _read_stdin() -> str:
    """The prompt on stdin, as UTF-8 (a BOM allowed); ConfigError if it is not UTF-8."""
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"stdin: the prompt is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


async def _answer(cascade: Cascade, prompt: str, system: str | None) -> Result:
    async with cascade:
        return await cascade.arun(prompt, system=system)


async def _stream(cascade: Cascade, prompt: str, args: argparse.Namespace, stderr: Console) -> Result:
    """Show the answer as it comes: text on stdout, restarts plainly on stderr (or every
    event as a JSON line on stdout with --json). Returns the final result."""
    shown = ""  # of the current attempt, on stdout
    async with cascade:
        async for event in cascade.astream(prompt, system=args.system, policy=args.policy):
            if args.json:
                print(to_json(event.to_dict()), flush=True)
            elif isinstance(event, StreamDelta):
                print(event.text, end="", flush=True)
                shown += event.text
            elif isinstance(event, StreamRestart):
                if shown and not shown.endswith("\n"):
                    print(flush=True)
                shown = ""
                stderr.print(restart_notice(event), highlight=False)
            else:
                output = event.result.output or ""
                if output and not shown:  # an unverified best answer the stream never showed
                    print(output, end="")
                    shown = output
                if shown and not shown.endswith("\n"):
                    print(flush=True)
            if isinstance(event, StreamResult):
                return event.result
    raise AssertionError("unreachable: a stream always ends with its result")  # pragma: no cover


def _validate(args: argparse.Namespace, stderr: Console) -> int:
    config = load_config(args.config)
    replayed = [t.name for t in config.tiers if t.provider == "replay" and not t.records]
    with tempfile.TemporaryDirectory() as tmp:
        if replayed:  # their records come with `cascade eval --data`: check the rest with none
            (Path(tmp) / "none.jsonl").write_text("")
            config = with_records(config, Path(tmp) / "none.jsonl")
        # building resolves prices, params and verifiers: their errors show here
        cascade = Cascade.from_config(config, source=str(args.config), base_dir=args.config.parent)
        cascade.close()
    if replayed:
        print(f"replay tiers {', '.join(replayed)}: records come from `cascade eval/calibrate --data`")
    table = Table(title=f"{args.config}: valid")
    for column in ("tier", "model", "provider", "price", "API key"):
        table.add_column(column)
    for tier_config, tier in zip(config.tiers, cascade.tiers, strict=True):
        for model_config, model in zip([tier_config, *tier_config.alternates], tier.models, strict=True):
            table.add_row(
                tier.name,
                model.model,
                model_config.provider,
                model.price.describe(),
                _key_status(model_config.key_env),
            )
    Console().print(table)
    names = ", ".join(v.type for v in config.verifiers) or "none (every answer is accepted)"
    print(f"verifiers: {names}; on_exhausted: {config.on_exhausted}")
    return EXIT_OK


def _key_status(env_var: str | None) -> str:
    if env_var is None:
        return "not needed"
    return f"{env_var} set" if os.environ.get(env_var) else f"[yellow]{env_var} not set[/]"


def _demo(args: argparse.Namespace, stderr: Console) -> int:
    config_text = resources.files("cascade.demo").joinpath("demo.yaml").read_text("utf-8")
    config = parse_config(yaml.safe_load(config_text), source="demo.yaml")
    prompts = list(load_examples(BUILTIN))  # the prompts of the bundled example set, in order
    cascade = Cascade.from_config(config)
    results = asyncio.run(_answer_all(cascade, prompts))
    if args.json:
        for result in results:
            print(to_json(result.to_dict()))
        return EXIT_OK
    out = Console(width=max(Console().width, 120))
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
                out.print(f"  {prompt[:45]:45}  {attempt.tier}: {reason}", highlight=False)
    report = BatchReport()
    for result in results:
        report.add(result.to_dict())
    out.print(batch_table(report, title="Cost report"))
    return EXIT_OK


async def _answer_all(cascade: Cascade, prompts: Sequence[str]) -> list[Result]:
    async with cascade:
        return [await cascade.arun(p) for p in prompts]
