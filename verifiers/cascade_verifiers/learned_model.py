"""The learned verifier's model file: one logistic regression per model seen in training
and a model-agnostic one (`*`, trained on every model's answers) for a model it does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from cascade_verifiers.learned_features import DEFAULT_BITS, FEATURE_SETTINGS, Features, features

FORMAT = "cascade.learned-verifier"
VERSION = 1
ANY_MODEL = "*"  # the model-agnostic weights, trained on every model's answers


def sigmoid(z: float) -> float:
    if math.isnan(z):  # only from weights of opposite infinite sums; no evidence either way
        return 0.5
    z = max(-35.0, min(35.0, z))
    return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class Weights:
    """One logistic regression: a bias and sparse weights by bucket."""

    bias: float
    weights: Mapping[int, float]

    def probability(self, found: Features) -> float:
        get = self.weights.get
        z = self.bias
        for value, buckets in found:
            if value:
                z += value * sum(map(get, buckets, repeat(0.0)))
        return sigmoid(z)


@dataclass(frozen=True)
class LearnedModel:
    """Weight sets by model name (and `*` for any other model), with the training metadata."""

    models: Mapping[str, Weights]
    bits: int = DEFAULT_BITS
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def weights_for(self, model: str | None) -> tuple[Weights, str]:
        """The weights for `model`, or the model-agnostic ones, with the name of the set used."""
        if model is not None and model in self.models:
            return self.models[model], model
        return self.models[ANY_MODEL], ANY_MODEL

    def predict(self, request: str, answer: str, model: str | None = None) -> float:
        """P(correct) of `answer` to `request`, by `model`'s weights (or the model-agnostic ones)."""
        return self.weights_for(model)[0].probability(features(request, answer, self.bits))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "features": {**FEATURE_SETTINGS, "bits": self.bits},
            "models": {
                name: {
                    "bias": w.bias,
                    "weights": {str(bucket): value for bucket, value in sorted(w.weights.items())},
                }
                for name, w in self.models.items()
            },
            "metadata": dict(self.metadata),
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> LearnedModel:
        """A model from its saved form; ValueError says what is wrong with it."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f'not a learned-verifier model (no "format": {FORMAT!r})')
        version = data.get("version")
        if version != VERSION:
            raise ValueError(
                f"model format version {version!r} is not supported (this cascade reads {VERSION})"
            )
        settings = data.get("features")
        if not isinstance(settings, dict):
            raise ValueError("`features` settings are missing")
        bits = settings.get("bits")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 30:
            raise ValueError(f"features.bits must be an integer from 1 to 30, not {bits!r}")
        differing = sorted(k for k, v in FEATURE_SETTINGS.items() if settings.get(k) != v)
        if differing:
            raise ValueError(
                f"made with other feature settings ({', '.join(differing)}): retrain it with this cascade"
            )
        models = data.get("models")
        if not isinstance(models, dict) or ANY_MODEL not in models:
            raise ValueError(f"`models` must map model names to weights, including {ANY_MODEL!r}")
        metadata = data.get("metadata", {})
        return cls(
            {str(name): _weights(name, entry, bits) for name, entry in models.items()},
            bits,
            metadata if isinstance(metadata, dict) else {},
        )

    @classmethod
    def load(cls, path: str | Path) -> LearnedModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read model_file {str(path)!r}: {exc.strerror or exc}") from None
        except ValueError as exc:  # bad JSON or bad UTF-8
            raise ValueError(f"model_file {str(path)!r} is not valid JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"model_file {str(path)!r}: {exc}") from None


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _weights(name: str, entry: Any, bits: int) -> Weights:
    if (
        not isinstance(entry, dict)
        or not _finite(entry.get("bias"))
        or not isinstance(entry.get("weights"), dict)
    ):
        raise ValueError(f"models[{name!r}] needs a finite `bias` and a `weights` mapping")
    weights: dict[int, float] = {}
    for key, value in entry["weights"].items():
        bucket = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() else -1
        if not 0 <= bucket < 1 << bits or not _finite(value):
            raise ValueError(f"models[{name!r}].weights: bad entry {key!r}: {value!r}")
        weights[bucket] = float(value)
    return Weights(float(entry["bias"]), weights)
