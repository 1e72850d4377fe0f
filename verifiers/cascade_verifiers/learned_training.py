"""Training the learned verifier on labelled answers: AdaGrad logistic regression per model
and model-agnostic (`cascade.LogisticTraining`), with held-out accuracy and AUC beside the
majority-class baseline (`cascade train-verifier` runs it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cascade import HeldOut, LogisticTraining, held_out_groups, roc_auc
from cascade_verifiers.learned_features import DEFAULT_BITS, Features, features
from cascade_verifiers.learned_model import ANY_MODEL, LearnedModel, Weights

DEFAULT_EPOCHS, DEFAULT_SEED, DEFAULT_HOLDOUT = 5, 0, 0.2
auc, split_groups, Evaluation = roc_auc, held_out_groups, HeldOut  # the names this package has used


@dataclass(frozen=True)
class Example:
    """One labelled answer: the request it answers, its text, the model, and whether it was correct."""

    group: str  # the request's id: answers to one request fall on the same side of a split
    model: str
    request: str
    answer: str
    correct: bool


@dataclass
class TrainingReport:
    model: LearnedModel
    counts: dict[str, tuple[int, int]]  # weight set -> (answers, correct ones)
    heldout: dict[str, HeldOut]
    heldout_share: float


def train(
    examples: Sequence[Example],
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    holdout: float = DEFAULT_HOLDOUT,
    bits: int = DEFAULT_BITS,
    metadata: Mapping[str, Any] | None = None,
) -> TrainingReport:
    """Weights per model and model-agnostic ones. A seeded `holdout` share of the requests is
    held out to measure accuracy and AUC; the saved weights are then fitted on every example."""
    if not examples:
        raise ValueError("no labelled answers to train on")
    if not 0 <= holdout < 1:
        raise ValueError("holdout must be from 0 to less than 1")
    featurised = [(e, features(e.request, e.answer, bits)) for e in examples]
    sets: dict[str, list[tuple[Example, Features]]] = {}
    for example, found in featurised:
        sets.setdefault(example.model, []).append((example, found))
    sets[ANY_MODEL] = featurised
    held = held_out_groups((e.group for e in examples), holdout, seed) if holdout else set()
    training = LogisticTraining(bits, epochs, seed)
    heldout: dict[str, HeldOut] = {}
    models: dict[str, Weights] = {}
    counts: dict[str, tuple[int, int]] = {}
    for name, rows in sets.items():
        counts[name] = (len(rows), sum(e.correct for e, _ in rows))
        models[name], figures = training.fit_held_out(
            [(e.group, found, e.correct) for e, found in rows], held
        )
        if figures is not None:
            heldout[name] = figures
    info = {
        **(metadata or {}),
        **training.to_dict(),
        "examples": {name: {"answers": n, "correct": k} for name, (n, k) in counts.items()},
        "heldout": {
            "share": holdout,
            "split": "by request, seeded",
            **{name: e.to_dict() for name, e in heldout.items()},
        },
    }
    return TrainingReport(LearnedModel(models, bits, info), counts, heldout, holdout)
