"""Training the learned verifier on labelled answers: AdaGrad logistic regression per model
and model-agnostic, with held-out accuracy and AUC beside the majority-class baseline
(`cascade train-verifier` runs it).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cascade_verifiers.learned_features import DEFAULT_BITS, Features, features, flatten
from cascade_verifiers.learned_model import ANY_MODEL, LearnedModel, Weights, sigmoid

WEIGHT_DIGITS = 6  # weights are saved (and used) rounded to this many decimals
DEFAULT_EPOCHS, DEFAULT_SEED, DEFAULT_HOLDOUT = 5, 0, 0.2
LEARNING_RATE, L2 = 0.1, 1e-4


@dataclass(frozen=True)
class Example:
    """One labelled answer: the request it answers, its text, the model, and whether it was correct."""

    group: str  # the request's id: answers to one request fall on the same side of a split
    model: str
    request: str
    answer: str
    correct: bool


@dataclass(frozen=True)
class Evaluation:
    """Held-out figures of one weight set."""

    n: int
    accuracy: float
    baseline: float  # always predicting the majority class of the training answers
    auc: float | None  # None when the held-out answers are all of one class

    def to_dict(self) -> dict[str, Any]:
        auc = None if self.auc is None else round(self.auc, 4)
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "baseline": round(self.baseline, 4),
            "auc": auc,
        }


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    ranked = sorted(zip(scores, labels, strict=True))
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid_rank = (i + j + 1) / 2  # ranks i+1..j share their mean
        rank_sum += mid_rank * sum(1 for _, label in ranked[i:j] if label)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def fit(
    data: Sequence[tuple[Features, bool]],
    *,
    bits: int = DEFAULT_BITS,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    learning_rate: float = LEARNING_RATE,
    l2: float = L2,
) -> Weights:
    """Logistic regression by AdaGrad on log loss with L2 (applied to the features present),
    `epochs` passes in a seeded random order. Weights come back rounded, as they are saved."""
    size = 1 << bits
    w, g2 = [0.0] * size, [0.0] * size
    bias, bias_g2 = 0.0, 0.0
    rows = [(list(flatten(found).items()), 1.0 if label else 0.0) for found, label in data]
    order = list(range(len(rows)))
    rng = random.Random(seed)
    sqrt = math.sqrt
    for _ in range(epochs):
        rng.shuffle(order)
        for k in order:
            items, y = rows[k]
            z = bias
            for bucket, value in items:
                z += w[bucket] * value
            g = sigmoid(z) - y
            bias_g2 += g * g
            if bias_g2:
                bias -= learning_rate * g / sqrt(bias_g2)
            for bucket, value in items:
                grad = g * value + l2 * w[bucket]
                if grad:
                    s = g2[bucket] + grad * grad
                    g2[bucket] = s
                    w[bucket] -= learning_rate * grad / sqrt(s)
    rounded = {i: r for i, v in enumerate(w) if v and (r := round(v, WEIGHT_DIGITS))}
    return Weights(round(bias, WEIGHT_DIGITS), rounded)


def evaluate_weights(weights: Weights, data: Sequence[tuple[Features, bool]], baseline: bool) -> Evaluation:
    """Accuracy (at p >= 0.5) and AUC of `weights` on `data`, beside always saying `baseline`."""
    scores = [weights.probability(found) for found, _ in data]
    labels = [label for _, label in data]
    n = len(labels)
    right = sum((p >= 0.5) == label for p, label in zip(scores, labels, strict=True))
    majority = sum(label == baseline for label in labels)
    return Evaluation(n, right / n if n else 0.0, majority / n if n else 0.0, auc(scores, labels))


@dataclass
class TrainingReport:
    model: LearnedModel
    counts: dict[str, tuple[int, int]]  # weight set -> (answers, correct ones)
    heldout: dict[str, Evaluation]
    heldout_share: float


def split_groups(groups: Iterable[str], share: float, seed: int) -> set[str]:
    """A seeded `share` of the distinct groups, held out."""
    distinct = sorted(set(groups))
    random.Random(seed).shuffle(distinct)
    return set(distinct[: round(len(distinct) * share)])


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
    held = split_groups((e.group for e in examples), holdout, seed) if holdout else set()
    options = {"bits": bits, "epochs": epochs, "seed": seed}
    heldout: dict[str, Evaluation] = {}
    models: dict[str, Weights] = {}
    counts: dict[str, tuple[int, int]] = {}
    for name, rows in sets.items():
        labelled = [(found, e.correct) for e, found in rows]
        counts[name] = (len(rows), sum(e.correct for e, _ in rows))
        if held:
            fitting = [(found, e.correct) for e, found in rows if e.group not in held]
            testing = [(found, e.correct) for e, found in rows if e.group in held]
            if fitting and testing:
                majority = 2 * sum(label for _, label in fitting) >= len(fitting)
                heldout[name] = evaluate_weights(fit(fitting, **options), testing, majority)
        models[name] = fit(labelled, **options)
    info = {
        **(metadata or {}),
        "epochs": epochs,
        "seed": seed,
        "learning_rate": LEARNING_RATE,
        "l2": L2,
        "examples": {name: {"answers": n, "correct": k} for name, (n, k) in counts.items()},
        "heldout": {
            "share": holdout,
            "split": "by request, seeded",
            **{name: e.to_dict() for name, e in heldout.items()},
        },
    }
    return TrainingReport(LearnedModel(models, bits, info), counts, heldout, holdout)
