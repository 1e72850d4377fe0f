"""Sub-commands of other packages, found through the entry-point group `cascade.commands`
(in the way simonw/llm's `register_commands` hook works, with argparse).

Each entry point names a callable `register(subparsers) -> None`. It adds its command with
`subparsers.add_parser(name, help=...)`, which takes argparse's arguments and gives every
parser the common options (`--log-format`, `-q`), and sets a handler with
`parser.set_defaults(handler=...)`. The handler is called as `handler(args, stderr)`, with
`stderr` a rich Console, and returns the exit code; a ConfigError it raises is printed as
one line, with exit code 2. A plug-in that fails to load or to register is named in one
line on stderr and left out: the other commands still work.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from typing import Any

COMMAND_GROUP = "cascade.commands"


class PluginCommands:
    """What a plug-in's `register` is given: argparse's sub-parsers, each parser made
    with the common options."""

    def __init__(self, subparsers: Any, common: argparse.ArgumentParser) -> None:
        self._subparsers = subparsers
        self._common = common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parents = [self._common, *kwargs.pop("parents", ())]
        parser: argparse.ArgumentParser = self._subparsers.add_parser(name, parents=parents, **kwargs)
        return parser


def register_plugin_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Let each installed `cascade.commands` plug-in add its sub-commands, in name order."""
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            entry.load()(PluginCommands(subparsers, common))
        except Exception as exc:  # a broken plug-in must not take the other commands down
            why = " ".join(f"{type(exc).__name__}: {exc}".split())
            print(
                f"cascade: plug-in command {entry.name!r} ({entry.value}) left out: {why}",
                file=sys.stderr,
            )
