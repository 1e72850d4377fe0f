"""`cascade validate`: check a config without calling any model (nor loading an SDK it does
not need)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import COMMON, Subparsers

if TYPE_CHECKING:
    from rich.console import Console


def register(subparsers: Subparsers) -> None:
    validate = subparsers.add_parser(
        "validate", parents=[COMMON], help="check a config without calling any model"
    )
    validate.add_argument("config", type=Path)
    validate.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    from rich.console import Console

    from cascade.cli.render import tiers_table
    from cascade.config import load_config
    from cascade.config.build import build_plan
    from cascade.engine import Cascade
    from cascade.offline.records import with_records

    config = load_config(args.config)
    replayed = [t.name for t in config.tiers if t.provider == "replay" and not t.records]
    with tempfile.TemporaryDirectory() as tmp:
        if replayed:  # their records come with `cascade eval --data`: check the rest with none
            (Path(tmp) / "none.jsonl").write_text("")
            config = with_records(config, Path(tmp) / "none.jsonl")
        # building resolves prices, params and verifiers: their errors show here; nothing
        # is connected, so no SDK loads but to check a tier's params
        plan = build_plan(config, source=str(args.config), base_dir=args.config.parent, connect=False)
        Cascade.from_plan(plan).close()
    if replayed:
        print(f"replay tiers {', '.join(replayed)}: records come from `cascade eval/calibrate --data`")
    Console().print(tiers_table(config, plan.tiers, title=f"{args.config}: valid"))
    names = ", ".join(v.type for v in config.verifiers) or "none (every answer is accepted)"
    print(f"verifiers: {names}; on_exhausted: {config.on_exhausted}")
    return ExitCode.OK
