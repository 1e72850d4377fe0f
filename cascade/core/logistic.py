"""Logistic regression over hashed features (`cascade.core.hashed_text`), for the small models
learned from recorded outcomes: the weights and their saved form, AdaGrad training with L2,
a seeded held-out split by group, held-out accuracy and AUC beside the majority-class
baseline, and the checks of a versioned model file. Pure standard library.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar

from cascade.core.hashed_text import HashedFeatures, flatten

T = TypeVar("T")
WEIGHT_DIGITS = 6  # weights are saved (and used) rounded to this many decimals


def sigmoid(z: float) -> float:
    if math.isnan(z):  # only from weights of opposite infinite sums; no evidence either way
        return 0.5
    z = max(-35.0, min(35.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


@dataclass(frozen=True)
class LogisticWeights:
    """One logistic regression: a bias and sparse weights by bucket."""

    bias: float
    weights: Mapping[int, float]

    def probability(self, found: HashedFeatures) -> float:
        get = self.weights.get
        z = self.bias
        for value, buckets in found:
            if value:
                z += value * sum(map(get, buckets, repeat(0.0)))
        return sigmoid(z)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bias": self.bias,
            "weights": {str(bucket): value for bucket, value in sorted(self.weights.items())},
        }

    @classmethod
    def from_dict(cls, entry: Any, bits: int, where: str) -> LogisticWeights:
        """Weights from their saved form; ValueError names `where` they are and what is wrong."""
        if (
            not isinstance(entry, dict)
            or not _finite(entry.get("bias"))
            or not isinstance(entry.get("weights"), dict)
        ):
            raise ValueError(f"{where} needs a finite `bias` and a `weights` mapping")
        weights: dict[int, float] = {}
        for key, value in entry["weights"].items():
            bucket = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() else -1
            if not 0 <= bucket < 1 << bits or not _finite(value):
                raise ValueError(f"{where}.weights: bad entry {key!r}: {value!r}")
            weights[bucket] = float(value)
        return cls(float(entry["bias"]), weights)


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
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


@dataclass(frozen=True)
class HeldOut:
    """Held-out figures of one weight set."""

    n: int
    accuracy: float  # predicting the label when p >= 0.5
    baseline: float  # always predicting the majority class of the training examples
    auc: float | None  # None when the held-out examples are all of one class
    scores: tuple[float, ...] = field(default=(), repr=False)  # P(label) of each example, in order

    @classmethod
    def of(
        cls, weights: LogisticWeights, data: Sequence[tuple[HashedFeatures, bool]], baseline: bool
    ) -> HeldOut:
        """The figures of `weights` on `data`, beside always saying `baseline`."""
        scores = [weights.probability(found) for found, _ in data]
        labels = [label for _, label in data]
        n = len(labels)
        right = sum((p >= 0.5) == label for p, label in zip(scores, labels, strict=True))
        majority = sum(label == baseline for label in labels)
        auc = roc_auc(scores, labels)
        return cls(n, right / n if n else 0.0, majority / n if n else 0.0, auc, tuple(scores))

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "baseline": round(self.baseline, 4),
            "auc": None if self.auc is None else round(self.auc, 4),
        }


def held_out_groups(groups: Iterable[str], share: float, seed: int) -> set[str]:
    """A seeded `share` of the distinct groups, held out: the examples of one group (one
    request's) fall on the same side of the split."""
    distinct = sorted(set(groups))
    random.Random(seed).shuffle(distinct)
    return set(distinct[: round(len(distinct) * share)])


@dataclass(frozen=True)
class LogisticTraining:
    """How weights are fitted: AdaGrad on log loss with L2 (applied to the features present),
    `epochs` passes in a random order seeded by `seed`."""

    bits: int
    epochs: int = 5
    seed: int = 0
    learning_rate: float = 0.1
    l2: float = 1e-4

    def to_dict(self) -> dict[str, Any]:
        """The settings a model file's metadata records (its features say the bits)."""
        return {"epochs": self.epochs, "seed": self.seed, "learning_rate": self.learning_rate, "l2": self.l2}

    def fit(self, data: Sequence[tuple[HashedFeatures, bool]]) -> LogisticWeights:
        """Weights fitted on `data`, rounded as they are saved."""
        size = 1 << self.bits
        w, g2 = [0.0] * size, [0.0] * size
        bias, bias_g2 = 0.0, 0.0
        rows = [(list(flatten(found).items()), 1.0 if label else 0.0) for found, label in data]
        order = list(range(len(rows)))
        rng = random.Random(self.seed)
        sqrt, rate, l2 = math.sqrt, self.learning_rate, self.l2
        for _ in range(self.epochs):
            rng.shuffle(order)
            for k in order:
                items, y = rows[k]
                z = bias
                for bucket, value in items:
                    z += w[bucket] * value
                g = sigmoid(z) - y
                bias_g2 += g * g
                if bias_g2:
                    bias -= rate * g / sqrt(bias_g2)
                for bucket, value in items:
                    grad = g * value + l2 * w[bucket]
                    if grad:
                        s = g2[bucket] + grad * grad
                        g2[bucket] = s
                        w[bucket] -= rate * grad / sqrt(s)
        rounded = {i: r for i, v in enumerate(w) if v and (r := round(v, WEIGHT_DIGITS))}
        return LogisticWeights(round(bias, WEIGHT_DIGITS), rounded)

    def fit_held_out(
        self, rows: Sequence[tuple[str, HashedFeatures, bool]], held: Collection[str]
    ) -> tuple[LogisticWeights, HeldOut | None]:
        """Weights fitted on every (group, features, label) row, and the held-out figures of
        weights fitted on the rows outside the `held` groups (None when a side is empty); the
        figures' scores follow the held rows' order."""
        fitting = [(found, label) for group, found, label in rows if group not in held]
        testing = [(found, label) for group, found, label in rows if group in held]
        figures = None
        if fitting and testing:
            majority = 2 * sum(label for _, label in fitting) >= len(fitting)
            figures = HeldOut.of(self.fit(fitting), testing, majority)
        return self.fit([(found, label) for _, found, label in rows]), figures


@dataclass(frozen=True)
class ModelFormat:
    """A versioned model file: its `format` name, `version` and feature `settings`; `kind`
    names it in messages ("learned-verifier")."""

    name: str
    version: int
    settings: Mapping[str, Any]
    kind: str

    def bits_of(self, data: Any) -> int:
        """The feature bits of a saved model, after checking its format, version and feature
        settings; ValueError says what is wrong."""
        if not isinstance(data, dict) or data.get("format") != self.name:
            raise ValueError(f'not a {self.kind} model (no "format": {self.name!r})')
        version = data.get("version")
        if version != self.version:
            raise ValueError(
                f"model format version {version!r} is not supported (this cascade reads {self.version})"
            )
        settings = data.get("features")
        if not isinstance(settings, dict):
            raise ValueError("`features` settings are missing")
        bits = settings.get("bits")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 30:
            raise ValueError(f"features.bits must be an integer from 1 to 30, not {bits!r}")
        differing = sorted(k for k, v in self.settings.items() if settings.get(k) != v)
        if differing:
            raise ValueError(
                f"made with other feature settings ({', '.join(differing)}): retrain it with this cascade"
            )
        return bits

    def header(self, bits: int) -> dict[str, Any]:
        """The start of a saved model: format, version, feature settings."""
        return {"format": self.name, "version": self.version, "features": {**self.settings, "bits": bits}}

    @staticmethod
    def read(path: str | Path, parse: Callable[[Any], T]) -> T:
        """`parse` of the JSON in the file at `path`; every ValueError names the file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read model_file {str(path)!r}: {exc.strerror or exc}") from None
        except ValueError as exc:  # bad JSON or bad UTF-8
            raise ValueError(f"model_file {str(path)!r} is not valid JSON: {exc}") from None
        try:
            return parse(data)
        except ValueError as exc:
            raise ValueError(f"model_file {str(path)!r}: {exc}") from None

    @staticmethod
    def write(path: str | Path, data: Mapping[str, Any]) -> None:
        Path(path).write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
