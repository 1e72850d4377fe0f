"""`cascade train-router`: fit the learned router (`cascade.routing.learned`) on recorded outcomes.

The labels come from replaying the config on the records: every record on every tier alone,
through the real engine, every verifier run (`cascade.offline.calibration.observe`). A tier's
label is whether its answer passed every check and was recorded `correct`. A seeded share
of the records is held out for the figures; the weights written are fitted on every record.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.cli.exit_codes import ExitCode
from cascade.cli.options import CONFIG_HELP, Subparsers, add_command, share_below_one, whole_number
from cascade.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console


# `cascade.routing.training`'s defaults, written out so that the parser does not load the
# training (a test holds them equal)
EPOCHS_DEFAULT, SEED_DEFAULT, HOLDOUT_DEFAULT = 5, 0, 0.2


def register(subparsers: Subparsers) -> None:
    train = add_command(
        subparsers,
        "train-router",
        "train the learned router (the tier each request starts at) on recorded outcomes",
        "cascade train-router configs/routellm-gsm8k.yaml --data train.jsonl --out router.json",
        "cascade train-router CONFIG --data train.jsonl --out router.json --epochs 10 --holdout 0.3",
    )
    train.description = (
        "Replay the config's tiers on recorded outcomes, label each request by which tiers gave an "
        "answer that passed every check and was correct, and fit the learned router on the request "
        "texts: per tier below the top, P(accepted and correct)."
    )
    train.add_argument("config", type=Path, help=CONFIG_HELP)
    train.add_argument(
        "--data", type=Path, required=True, metavar="RECORDED.jsonl", help="recorded outcomes with `correct`"
    )
    train.add_argument(
        "--out", type=Path, required=True, metavar="ROUTER.json", help="the model file to write"
    )
    train.add_argument(
        "--epochs",
        type=whole_number(1),
        default=EPOCHS_DEFAULT,
        help=f"passes over the data (default {EPOCHS_DEFAULT})",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=SEED_DEFAULT,
        help=f"seed of the split and the shuffles (default {SEED_DEFAULT})",
    )
    train.add_argument(
        "--holdout",
        type=share_below_one,
        default=HOLDOUT_DEFAULT,
        metavar="SHARE",
        help=f"share of the records held out for the figures, 0 to below 1 (default {HOLDOUT_DEFAULT})",
    )
    train.set_defaults(handler=handle, quiet_by_default=True)


def handle(args: argparse.Namespace, stderr: Console) -> ExitCode:
    import asyncio

    from rich.console import Console
    from rich.markup import escape

    from cascade.cli.render_routing import router_training_table
    from cascade.config import load_config
    from cascade.offline.calibration import observe
    from cascade.offline.records import check_fits, with_records
    from cascade.offline.router_examples import routing_examples
    from cascade.providers.replay import load_recorded
    from cascade.routing.training import train_router

    if not args.out.parent.is_dir():
        raise ConfigError(f"--out {args.out}: there is no folder {args.out.parent}")
    config = with_records(load_config(args.config), args.data)
    if len(config.tiers) < 2:
        raise ConfigError(
            f"{args.config}: one tier only: every request starts there, there is nothing to route"
        )
    recorded = load_recorded(args.data)
    for problem in recorded.problems:
        stderr.print(f"[yellow]skipped:[/] {escape(problem)}", highlight=False)
    if not len(recorded):
        raise ConfigError(
            f"{args.data}: no usable record ({len(recorded.problems)} lines skipped, none read)"
        )
    check_fits(config, recorded, args.data)
    started = time.perf_counter()
    observed = asyncio.run(
        observe(config, recorded, base_dir=args.config.parent, source=str(args.config), calibrating=False)
    )
    examples, unlabelled = routing_examples(config, recorded, observed)
    if unlabelled:
        stderr.print(
            f"{unlabelled} records lack a `correct` label for a tier's answer and were not used",
            highlight=False,
        )
    if not examples:
        raise ConfigError(
            f"{args.data}: no labelled records: no record has a `correct` label for the answer of every "
            f"tier below the top ({len(recorded)} records read)"
        )
    metadata = {
        "config": str(args.config),
        "trained_on": str(args.data),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    models = [tier.model for tier in config.tiers]
    report = train_router(
        examples,
        observed.tiers,
        models,
        epochs=args.epochs,
        seed=args.seed,
        holdout=args.holdout,
        metadata=metadata,
    )
    elapsed = time.perf_counter() - started
    try:
        report.model.save(args.out)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    title = f"Learned router for {args.config} trained on {args.data}"
    Console(width=max(Console().width, 120)).print(router_training_table(report, title=title, seed=args.seed))
    weights = sum(len(w.weights) for w in report.model.weights)
    size_kb = args.out.stat().st_size / 1024
    print(
        f"wrote {args.out}: {len(examples)} records, {weights} weights, {size_kb:.0f} kB, "
        f"replayed and trained in {elapsed:.1f} s"
    )
    return ExitCode.OK
