"""The `cascade` command: builds the parser from the command modules, runs the one asked
for, and turns what it raises into a message and an exit code (`cascade.cli.exit_codes`).

Building the parser imports only what argparse needs: each command imports its engine,
rich and the SDKs in its handler, so `cascade --help` (or a typo) answers at once.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

from cascade.cli import audit, batch, calibrate, demo, report, run, train_router, validate
from cascade.cli import eval as evaluate
from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import COMMON, Handler, IntermixedParser, Subparsers, add_global_options
from cascade.cli.plugins import register_plugin_commands
from cascade.core.errors import ConfigError

# each adds its sub-command; `cascade --help` lists them in this order
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    run.register,
    validate.register,
    batch.register,
    report.register,
    audit.register,
    evaluate.register,
    calibrate.register,
    train_router.register,
    demo.register,
)


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)  # --help and usage errors end here, before rich or logging load
    if args.command is None:  # a bare `cascade`: what it can do
        top.print_help()
        return ExitCode.OK
    try:
        return _handle(args)
    finally:
        if argv is None:  # run as the `cascade` command: the process ends next
            # The interpreter's shutdown runs full garbage collections over every object still
            # alive, the SDK's and pydantic's many among them (a quarter of a second of CPU after
            # `cascade run`). Frozen, they are skipped; the command has closed what it opened.
            gc.freeze()


def _handle(args: argparse.Namespace) -> int:
    """Run the command `args` names; what it raises becomes a message and an exit code."""
    from rich.console import Console
    from rich.markup import escape

    from cascade.core.redaction import redact
    from cascade.logs import configure_logging

    # the demo and batch jobs show tables and a progress bar: their events only on request
    quiet = args.quiet or getattr(args, "quiet_by_default", False) or not getattr(args, "events", True)
    configure_logging(args.log_format, "warning" if quiet else "info")
    stderr = Console(stderr=True, soft_wrap=True)  # messages keep their paths whole: no wrapping
    handler: Handler = args.handler
    try:
        return int(handler(args, stderr))
    except ConfigError as exc:
        stderr.print(f"[red]error:[/] {escape(redact(str(exc)))}", highlight=False)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader of stdout went away (`| head -1`): stop, quietly
        _silence_stdout()
        return ExitCode.PIPE_CLOSED
    except Exception as exc:
        if os.environ.get("CASCADE_DEBUG"):
            raise
        stderr.print(
            f"[red]internal error:[/] {escape(redact(f'{type(exc).__name__}: {exc}'))} "
            "(set CASCADE_DEBUG=1 for a traceback)",
            highlight=False,
        )
        return ExitCode.INTERNAL


def parser() -> argparse.ArgumentParser:
    """The whole command line: one sub-parser per command."""
    top = argparse.ArgumentParser(
        prog="cascade",
        description="Cheapest model first, verified answers, every attempt billed.",
        epilog="Run `cascade COMMAND --help` for a command's options and an example.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_global_options(top, defaults=True)
    subparsers = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=IntermixedParser)
    for register in COMMANDS:
        register(subparsers)
    register_plugin_commands(subparsers, COMMON)  # last: a plug-in cannot take a built-in's name
    return top


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verified-cascade")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"
