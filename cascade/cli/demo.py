"""`cascade demo`: the bundled example set through a two-tier cascade, offline."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import Subparsers, add_command

if TYPE_CHECKING:
    from rich.console import Console

    from cascade.core.values import Result
    from cascade.engine import Cascade


def register(subparsers: Subparsers) -> None:
    demo = add_command(
        subparsers,
        "demo",
        "offline demo on a bundled example set (no API key)",
        "cascade demo",
        "cascade demo --json | head -1",
    )
    demo.add_argument("--json", action="store_true", help="print each result as a JSON line")
    demo.add_argument(
        "--events",
        action="store_true",
        help="also log every attempt (off by default: the tables tell the story)",
    )
    demo.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    import asyncio

    import yaml
    from rich.console import Console

    from cascade.batch.report import BatchReport
    from cascade.cli.render import print_demo, to_json
    from cascade.config import parse_config
    from cascade.engine import Cascade
    from cascade.providers.simulated import BUILTIN, load_examples

    config_text = resources.files("cascade.demo").joinpath("demo.yaml").read_text("utf-8")
    config = parse_config(yaml.safe_load(config_text), source="demo.yaml")
    prompts = list(load_examples(BUILTIN))  # the prompts of the bundled example set, in order
    cascade = Cascade.from_config(config)
    results = asyncio.run(_answer_all(cascade, prompts))
    if args.json:
        for result in results:
            print(to_json(result.to_dict()))
        return ExitCode.OK
    report = BatchReport()
    for result in results:
        report.add(result.to_dict())
    print_demo(Console(width=max(Console().width, 120)), prompts, results, report)
    return ExitCode.OK


async def _answer_all(cascade: Cascade, prompts: Sequence[str]) -> list[Result]:
    async with cascade:
        return [await cascade.arun(p) for p in prompts]
