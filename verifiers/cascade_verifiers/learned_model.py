"""The learned verifier's model file: one logistic regression per model seen in training
and a model-agnostic one (`*`, trained on every model's answers) for a model it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade import LogisticWeights, ModelFormat
from cascade_verifiers.learned_features import DEFAULT_BITS, FEATURE_SETTINGS, features

FORMAT = ModelFormat("cascade.learned-verifier", 1, FEATURE_SETTINGS, "learned-verifier")
ANY_MODEL = "*"  # the model-agnostic weights, trained on every model's answers
Weights = LogisticWeights


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
            **FORMAT.header(self.bits),
            "models": {name: w.to_dict() for name, w in self.models.items()},
            "metadata": dict(self.metadata),
        }

    def save(self, path: str | Path) -> None:
        FORMAT.write(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> LearnedModel:
        """A model from its saved form; ValueError says what is wrong with it."""
        bits = FORMAT.bits_of(data)
        models = data.get("models")
        if not isinstance(models, dict) or ANY_MODEL not in models:
            raise ValueError(f"`models` must map model names to weights, including {ANY_MODEL!r}")
        metadata = data.get("metadata", {})
        return cls(
            {
                str(name): Weights.from_dict(entry, bits, f"models[{name!r}]")
                for name, entry in models.items()
            },
            bits,
            metadata if isinstance(metadata, dict) else {},
        )

    @classmethod
    def load(cls, path: str | Path) -> LearnedModel:
        return FORMAT.read(path, cls.from_dict)
