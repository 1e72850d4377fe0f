"""Training the learned router on labelled requests (`cascade train-router` makes the labels by
replaying a config on recorded outcomes): per tier below the top, an AdaGrad logistic
regression with L2 (`cascade.core.logistic`) of whether that tier's answer was accepted by
its verifier chain and correct. A seeded share of the records is held out for accuracy and
AUC beside the majority-class baseline, and for where the router would start those
requests; the saved weights are then fitted on every example.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cascade.core.logistic import HeldOut, LogisticTraining, held_out_groups
from cascade.core.requests import Request
from cascade.core.routes import routed_tier
from cascade.routing.learned_features import DEFAULT_BITS, features
from cascade.routing.learned_model import DEFAULT_CUT, RouterModel

DEFAULT_EPOCHS, DEFAULT_SEED, DEFAULT_HOLDOUT = 5, 0, 0.2


@dataclass(frozen=True)
class RoutingExample:
    """One labelled request: its record's id (a record's examples stay on one side of the
    split), the request, and per tier below the top whether its answer was accepted and correct."""

    group: str
    request: Request
    labels: tuple[bool, ...]


@dataclass(frozen=True)
class TierFigures:
    """A tier's examples and positives, its held-out figures, and how many held-out requests
    the router started there (and, below the top, how many of those the tier got right)."""

    tier: str
    examples: int
    positives: int
    held_out: HeldOut | None
    started: int = 0
    started_right: int | None = None


@dataclass(frozen=True)
class RouterTraining:
    model: RouterModel
    figures: tuple[TierFigures, ...]  # every tier, the top last (with no examples of its own)
    holdout: float
    held_records: int


def train_router(
    examples: Sequence[RoutingExample],
    tiers: Sequence[str],
    models: Sequence[str],
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    holdout: float = DEFAULT_HOLDOUT,
    bits: int = DEFAULT_BITS,
    metadata: Mapping[str, Any] | None = None,
) -> RouterTraining:
    """The router's model for the ladder `tiers` (cheapest first, with their primary `models`),
    fitted on `examples`, with its held-out figures (see the module doc)."""
    below = len(tiers) - 1
    if below < 1:
        raise ValueError("a router needs two tiers or more: with one there is nothing to route")
    if len(models) != len(tiers):
        raise ValueError("one primary model per tier is needed")
    if not examples:
        raise ValueError("no labelled requests to train on")
    if not 0 <= holdout < 1:
        raise ValueError("holdout must be from 0 to less than 1")
    if any(len(e.labels) != below for e in examples):
        raise ValueError(f"every example needs one label per tier below the top ({below})")
    found = [features(e.request, bits) for e in examples]
    held = held_out_groups((e.group for e in examples), holdout, seed) if holdout else set()
    training = LogisticTraining(bits, epochs, seed)
    fitted = [
        training.fit_held_out([(e.group, f, e.labels[k]) for e, f in zip(examples, found, strict=True)], held)
        for k in range(below)
    ]
    starts = _held_out_starts([e for e in examples if e.group in held], [h for _, h in fitted], below)
    figures = [
        TierFigures(tiers[k], len(examples), sum(e.labels[k] for e in examples), fitted[k][1], *starts[k])
        for k in range(below)
    ]
    figures.append(TierFigures(tiers[-1], 0, 0, None, *starts[below]))
    info = {
        **(metadata or {}),
        **training.to_dict(),
        "examples": {f.tier: {"requests": f.examples, "positives": f.positives} for f in figures[:-1]},
        "heldout": {
            "share": holdout,
            "split": "by record, seeded",
            "records": len({e.group for e in examples if e.group in held}),
            **{f.tier: _figures_dict(f) for f in figures},
        },
    }
    model = RouterModel(
        tuple(tiers), tuple(models), tuple(w for w, _ in fitted), (DEFAULT_CUT,) * below, bits, info
    )
    return RouterTraining(model, tuple(figures), holdout, info["heldout"]["records"])


def _held_out_starts(
    held: Sequence[RoutingExample], figures: Sequence[HeldOut | None], below: int
) -> list[tuple[int, int | None]]:
    """Per tier, the held-out requests the held-out weights start there at the default
    cut-offs, and (below the top) how many of those the tier answered acceptably and right."""
    started = [0] * (below + 1)
    right = [0] * below
    if held and all(f is not None and len(f.scores) == len(held) for f in figures):
        for i, example in enumerate(held):
            scores = [f.scores[i] for f in figures if f is not None]
            k = routed_tier(scores, [DEFAULT_CUT] * below)
            started[k] += 1
            if k < below:
                right[k] += example.labels[k]
    return [*((started[k], right[k]) for k in range(below)), (started[below], None)]


def _figures_dict(f: TierFigures) -> dict[str, Any]:
    out: dict[str, Any] = f.held_out.to_dict() if f.held_out is not None else {}
    out["started"] = f.started
    if f.started_right is not None:
        out["started_right"] = f.started_right
    return out
