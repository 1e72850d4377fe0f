"""`cascade train-verifier`: fit the learned verifier (`cascade_verifiers.learned`) on recorded
outcomes. A plug-in command: the entry point `cascade.commands` names `register`.

Every answer recorded with `correct` is an example for its model; a seeded 20 % of the
requests is held out to report accuracy and AUC beside the majority-class baseline, then
the weights are fitted on every example and written where `--out` says.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from cascade import RecordedSet

EXIT_OK = 0


def register(subparsers: Any) -> None:
    """Add `train-verifier` to the `cascade` command."""
    summary = "train the learned verifier (type: learned) on recorded outcomes"
    train = subparsers.add_parser(
        "train-verifier",
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n  cascade train-verifier --data train.jsonl --out learned.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--data", type=Path, required=True, help="recorded outcomes (JSONL) with `correct`")
    train.add_argument("--out", type=Path, required=True, help="the model file to write (JSON)")
    train.add_argument("--models", help="comma-separated models to train for (default: every labelled one)")
    train.add_argument("--epochs", type=_positive, default=5, help="passes over the data (default 5)")
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the shuffles (default 0)")
    train.set_defaults(handler=_train, quiet_by_default=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _train(args: argparse.Namespace, stderr: Console) -> int:
    # imported when the command runs: every `cascade` start loads this module to register it
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from cascade import load_recorded
    from cascade_verifiers.learned_model import ANY_MODEL
    from cascade_verifiers.learned_training import DEFAULT_HOLDOUT, train

    recorded = load_recorded(args.data)
    for problem in recorded.problems:
        stderr.print(f"[yellow]skipped:[/] {escape(problem)}", highlight=False)
    wanted = _wanted_models(args.models)
    examples, unlabelled = _examples(recorded, wanted)
    labelled = {e.model for e in examples}
    if wanted is not None and (missing := [m for m in wanted if m not in labelled]):
        known = ", ".join(sorted(_labelled_models(recorded))) or "none"
        raise ConfigError(
            f"{args.data}: no answers labelled `correct` for {', '.join(missing)} (labelled: {known})"
        )
    if not examples:
        raise ConfigError(
            f"{args.data}: no usable records: no answer has a `correct` true/false label "
            f"({len(recorded)} records read, {len(recorded.problems)} lines skipped)"
        )
    started = time.perf_counter()
    metadata = {
        "trained_on": str(args.data),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report = train(examples, epochs=args.epochs, seed=args.seed, holdout=DEFAULT_HOLDOUT, metadata=metadata)
    elapsed = time.perf_counter() - started
    try:
        report.model.save(args.out)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from None

    table = Table(
        title=f"Learned verifier trained on {args.data}",
        caption=f"held out: a seeded {DEFAULT_HOLDOUT:.0%} of the requests (seed {args.seed}); "
        "the weights written are then fitted on every answer",
    )
    table.add_column("weights for", no_wrap=True)
    for column in ("answers", "correct", "held out", "accuracy", "majority baseline", "AUC"):
        table.add_column(column, justify="right")
    for name, (answers, correct) in report.counts.items():
        held = report.heldout.get(name)
        label = f"{name} (any model)" if name == ANY_MODEL else name
        if held is None:
            table.add_row(label, str(answers), str(correct), "0", "-", "-", "-")
            continue
        table.add_row(
            label,
            str(answers),
            str(correct),
            str(held.n),
            f"{held.accuracy:.1%}",
            f"{held.baseline:.1%}",
            "n/a (one class)" if held.auc is None else f"{held.auc:.3f}",
        )
    Console(width=max(Console().width, 120)).print(table)
    for model, count in sorted(unlabelled.items()):
        stderr.print(f"{count} answers of {model} have no `correct` label and were not used", highlight=False)
    weights = sum(len(w.weights) for w in report.model.models.values())
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out}: {weights} weights, {size_kb:.0f} kB, trained in {elapsed:.1f} s")
    return EXIT_OK


def _wanted_models(option: str | None) -> list[str] | None:
    if option is None:
        return None
    models = [m.strip() for m in option.split(",") if m.strip()]
    if not models:
        raise ConfigError("--models: give at least one model name")
    return models


def _labelled_models(recorded: RecordedSet) -> set[str]:
    return {m for record in recorded for m in record.responses if record.correct(m) is not None}


def _examples(recorded: RecordedSet, wanted: list[str] | None) -> tuple[list[Any], dict[str, int]]:
    """The labelled answers (of the wanted models), and how many answers of each lack a label."""
    from cascade_verifiers.learned_training import Example

    examples: list[Example] = []
    unlabelled: dict[str, int] = {}
    for record in recorded:
        request = record.request.text()
        for model, response in record.responses.items():
            if wanted is not None and model not in wanted:
                continue
            correct = record.correct(model)
            if correct is None:
                unlabelled[model] = unlabelled.get(model, 0) + 1
                continue
            examples.append(Example(record.id, model, request, response["text"], correct))
    return examples, unlabelled
