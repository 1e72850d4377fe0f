"""`cascade run`: answer one prompt (or conversation), as a whole or streamed."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import CONFIG_HELP, Subparsers, add_call_options, add_command, check_starts
from cascade.core.errors import ConfigError, ExhaustedError
from cascade.core.messages import REQUEST_KEYS, MessagesError, read_request
from cascade.core.values import Request

if TYPE_CHECKING:
    from rich.console import Console

    from cascade.core.values import Result
    from cascade.engine import Cascade

_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes of an argument that were not UTF-8


def register(subparsers: Subparsers) -> None:
    run = add_command(
        subparsers,
        "run",
        "answer one prompt, or one conversation",
        'cascade run configs/openai-to-anthropic.yaml "What is the boiling point of water at 2000 m?"',
        'echo "Summarise: ..." | cascade run configs/openai-to-anthropic.yaml --system "Be brief." --json',
        "cascade run configs/openai-to-anthropic.yaml --messages chat.json --stream",
    )
    run.add_argument("config", type=Path, help=CONFIG_HELP)
    run.add_argument("prompt", nargs="?", help="the prompt (read from stdin when omitted)")
    run.add_argument(
        "--messages",
        type=Path,
        metavar="FILE.json",
        help="the conversation instead of a prompt: an OpenAI-style messages list, or an object "
        "as a batch line holds it (messages or prompt, system, tools, tool_choice)",
    )
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
    add_call_options(run, tags_help="a tag of the request in the ledger (user=..., feature=...); repeatable")
    run.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    import asyncio

    from rich.markup import escape

    from cascade.cli.render import to_json
    from cascade.engine import Cascade

    request = _request(args)
    cascade = Cascade.from_config(args.config)

    async def answer_then_close() -> ExitCode:
        try:
            check_starts(args, [t.name for t in cascade.tiers])
            try:
                if args.stream:
                    result = await _stream(cascade, request, args, stderr)
                else:
                    result = await cascade.arun(request, **_call_options(args))
            except ExhaustedError as exc:
                if args.json:  # a stream's last line is a result event, whatever the outcome
                    event = {"event": "result"} if args.stream else {}
                    print(to_json({**event, **exc.result.to_dict(), "error": str(exc)}))
                stderr.print(f"[red]no answer:[/] {escape(str(exc))}", highlight=False)
                return ExitCode.ATTENTION
            _show(result, args, stderr)
            sys.stdout.flush()  # the answer first; then the audits in flight may finish
            return ExitCode.OK if result.verified else ExitCode.ATTENTION
        finally:
            await cascade.aclose()

    return asyncio.run(answer_then_close())


def _show(result: Result, args: argparse.Namespace, stderr: Console) -> None:
    from cascade.cli.render import print_result, to_json

    if args.stream:
        if not args.json:
            _print_tool_calls(result)
            print_result(stderr, result)
    elif args.json:
        print(to_json(result.to_dict()))
    else:
        if result.output or not result.tool_calls:
            print(result.output)
        _print_tool_calls(result)
        print_result(stderr, result)


def _print_tool_calls(result: Result) -> None:
    """An answer's tool calls on stdout, one JSON object a line (OpenAI's shape)."""
    from cascade.cli.render import to_json

    for call in result.as_message().get("tool_calls", ()):
        print(to_json(call))


def _request(args: argparse.Namespace) -> Request:
    """The request: the `--messages` file, else the prompt argument, else stdin."""
    if args.messages is not None:
        if args.prompt is not None:
            raise ConfigError("give a prompt or --messages, not both")
        return _read_messages_file(args.messages, args.system)
    prompt = args.prompt
    if prompt is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise ConfigError("no prompt: give one as an argument or on stdin")
        prompt = _read_stdin().rstrip("\r\n")  # the newline `echo` adds is not part of it
    elif _NOT_UTF8.search(prompt):
        raise ConfigError("the prompt argument is not valid UTF-8")
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    return Request.from_prompt(prompt, system=args.system)


def _read_messages_file(path: Path, system: str | None) -> Request:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep to decode
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(data, list):
        data = {"messages": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a messages list or an object with `messages` is required")
    unknown = sorted(set(data) - REQUEST_KEYS)
    if unknown:  # `temperature` or `model` here would be dropped without a word
        raise ConfigError(
            f"{path}: unknown key {', '.join(unknown)} (the file holds {', '.join(sorted(REQUEST_KEYS))})"
        )
    own = data.get("system")
    if system is not None and (own is None or isinstance(own, str)):
        # first, then the file's own system prompt and messages, as `Cascade.run` joins them
        data = {**data, "system": f"{system}\n\n{own}" if own else system}
    try:
        return read_request(data)
    except MessagesError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _read_stdin() -> str:
    """The prompt on stdin, as UTF-8 (a BOM allowed); ConfigError if it is not UTF-8."""
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"stdin: the prompt is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


async def _stream(cascade: Cascade, request: Request, args: argparse.Namespace, stderr: Console) -> Result:
    """Show the answer as it comes: text on stdout, restarts plainly on stderr (or every
    event as a JSON line on stdout with --json). Returns the final result."""
    from rich.console import Console

    from cascade.cli.live_answer import LiveAnswer, PlainAnswer
    from cascade.cli.render import restart_notice, to_json
    from cascade.core.events import StreamDelta, StreamRestart, StreamResult

    stdout = Console()
    # on a terminal, withdrawn text is erased and events print above the answer, not inside it
    view = LiveAnswer(stdout) if stdout.is_terminal and not args.json else PlainAnswer()
    with view:
        events = cascade.astream(request, policy=args.policy, **_call_options(args))
        async for event in events:
            if args.json:
                print(to_json(event.to_dict()), flush=True)
            elif isinstance(event, StreamDelta):
                view.add(event.text)
            elif isinstance(event, StreamRestart):
                view.withdraw()
                stderr.print(restart_notice(event), highlight=False)
            elif event.result.output and not view.text:  # an unverified best answer never shown
                view.add(event.result.output)
            if isinstance(event, StreamResult):
                return event.result
    raise AssertionError("unreachable: a stream always ends with its result")  # pragma: no cover


def _call_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the flags ask of the call: its tags, the cache, and where its ladder starts."""
    return {
        "tags": dict(args.tag),
        "cache": not args.no_cache,
        "min_tier": args.min_tier,
        "start_tier": args.start_tier,
    }
