"""`cascade validate`: check a config without calling any model (nor loading an SDK it does
not need): its prices, params and verifiers, each tier's endpoint and whether its key is set.

Exit codes: OK the config is valid and every key its tiers need is set; ATTENTION it is
valid but a key is missing (those tiers would fail with "no API key"); USAGE it is not valid.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import CONFIG_HELP, Subparsers, add_command

if TYPE_CHECKING:
    from rich.console import Console


def register(subparsers: Subparsers) -> None:
    validate = add_command(
        subparsers,
        "validate",
        "check a config without calling any model",
        "cascade validate configs/openai-to-anthropic.yaml",
        events=False,
    )
    validate.add_argument("config", type=Path, help=CONFIG_HELP)
    validate.set_defaults(handler=handle)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    from rich.console import Console
    from rich.markup import escape

    from cascade.cli.render import tiers_table
    from cascade.config import load_config
    from cascade.config.build import build_plan, missing_key
    from cascade.config.build_live import describe_live
    from cascade.config.routing import describe_router
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
    live = describe_live(config, source=str(args.config), base_dir=args.config.parent)  # checks the shadow's
    if replayed:
        print(f"replay tiers {', '.join(replayed)}: records come from `cascade eval/calibrate --data`")
    Console(width=max(Console().width, 120)).print(
        tiers_table(config, plan.tiers, title=f"{args.config}: valid")
    )
    names = ", ".join(v.type for v in config.verifiers) or "none (every answer is accepted)"
    print(f"verifiers: {names}; on_exhausted: {config.on_exhausted}")
    if config.router is not None:
        for line in describe_router(config.router, config.tiers[0].name):
            print(line)
    for line in live:
        print(line)
    missing: dict[str, list[str]] = {}
    models = [(tier.name, model) for tier in config.tiers for model in [tier, *tier.alternates]]
    if config.router is not None and config.router.classifier is not None:
        models.append(("the router's classifier", config.router.classifier))
    for name, model in models:
        env_var = missing_key(model)
        if env_var is not None and name not in missing.setdefault(env_var, []):
            missing[env_var].append(name)
    if not missing:
        return ExitCode.OK
    for env_var, tiers in missing.items():
        stderr.print(
            f"[yellow]missing key:[/] {escape(env_var)} is not set: calls of {', '.join(tiers)} "
            "would fail with 'no API key'",
            highlight=False,
        )
    return ExitCode.ATTENTION
