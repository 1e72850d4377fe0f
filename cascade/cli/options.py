"""What every command shares: the options each takes, and the shape of a command.

A command is a module with `register(subparsers)`, which adds its sub-parser with
`parents=[COMMON]` and sets `handler`: `handler(args, stderr) -> ExitCode`, where `stderr`
is the console for messages; `cascade.cli.main` turns what it raises into an exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from cascade.core.errors import ConfigError

if TYPE_CHECKING:  # rich loads with the command that prints, not with the parser
    from rich.console import Console


class IntermixedParser(argparse.ArgumentParser):
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


Subparsers: TypeAlias = "argparse._SubParsersAction[IntermixedParser]"
Handler: TypeAlias = "Callable[[argparse.Namespace, Console], int]"

LOG_FORMATS = ("console", "json")


def add_global_options(parser: argparse.ArgumentParser, *, defaults: bool, events: bool = True) -> None:
    """`-q` and `--log-format`, which go before the sub-command or after it. The top parser
    holds the defaults; a sub-parser's copies leave a flag unset unless given there, so one
    given before the sub-command is not undone by the sub-parser's default. A command that
    calls no model (`events` false) takes `--log-format` but does not offer it in its help."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=default("console"),
        help="format of the per-attempt events on stderr" if events else argparse.SUPPRESS,
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="log warnings only"
    )


# a parent of every sub-parser, so of their class; never parses on its own
COMMON = IntermixedParser(add_help=False)
add_global_options(COMMON, defaults=False)
NO_EVENTS = IntermixedParser(add_help=False)  # the parent of a command that calls no model
add_global_options(NO_EVENTS, defaults=False, events=False)


def add_command(
    subparsers: Subparsers, name: str, summary: str, *examples: str, events: bool = True
) -> IntermixedParser:
    """A sub-command with the common options: `summary` is its line in `cascade --help` and
    the head of its own help, which ends with `examples` as a person would type them.
    `events`: the command calls models, so it has per-attempt events to format."""
    return subparsers.add_parser(
        name,
        parents=[COMMON if events else NO_EVENTS],
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


CONFIG_HELP = "the cascade's YAML config (configs/ holds ready ones)"


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of `minimum` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return parse


def share_below_one(text: str) -> float:
    """An argparse type: a share from 0 to below 1 (of the records held out, say)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to below 1, not {text}")
    return value


def _tag(text: str) -> tuple[str, str]:
    from cascade.core.tags import TagError, parse_tag

    try:
        return parse_tag(text)
    except TagError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_call_options(parser: argparse.ArgumentParser, *, tags_help: str) -> None:
    """`--tag k=v` (attribution in the ledger and the output), `--no-cache`, and where the
    ladder starts (`--min-tier`, `--start-tier`)."""
    parser.add_argument("--tag", action="append", type=_tag, default=[], metavar="NAME=VALUE", help=tags_help)
    parser.add_argument(
        "--no-cache", action="store_true", help="neither read nor fill the config's cache of verified answers"
    )
    parser.add_argument(
        "--min-tier", metavar="TIER", help="start at this tier or above (the config's router may pick higher)"
    )
    parser.add_argument("--start-tier", metavar="TIER", help="start at this tier; the router is not asked")


def check_starts(args: argparse.Namespace, tiers: list[str]) -> None:
    """ConfigError for a `--min-tier` / `--start-tier` the config has no tier of, or for a
    `--start-tier` below the `--min-tier` given with it."""
    for flag, tier in (("--min-tier", args.min_tier), ("--start-tier", args.start_tier)):
        if tier is not None and tier not in tiers:
            raise ConfigError(f"{flag} {tier!r} is not a tier of this cascade ({', '.join(tiers)})")
    floor, start = args.min_tier, args.start_tier
    if floor is not None and start is not None and tiers.index(start) < tiers.index(floor):
        raise ConfigError(f"--start-tier {start!r} is below --min-tier {floor!r}")
