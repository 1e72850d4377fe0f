"""The learned router's model file: the ladder it was trained for (its tiers cheapest first,
each with its primary model), and for every tier below the top a logistic regression of
P(that tier's answer is accepted by its verifier chain and correct | the request's text)
with that tier's default cut-off; the training metadata beside them.

Saved as JSON, format "cascade.learned-router", version 1:
`{"format", "version", "features", "tiers": [{"name", "model", "bias", "weights", "cut"}, ...,
{"name", "model"}], "metadata"}`, the top tier last and without weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.core.logistic import LogisticWeights, ModelFormat
from cascade.core.requests import Request
from cascade.routing.learned_features import DEFAULT_BITS, FEATURE_SETTINGS, features

FORMAT = ModelFormat("cascade.learned-router", 1, FEATURE_SETTINGS, "learned-router")
# A request starts at a tier when the tier is more likely than not to give an accepted,
# correct answer: the cut-off that is neutral between the two mistakes until the calibration
# (or the config's `cuts`) prices them.
DEFAULT_CUT = 0.5


def checked_cut(value: Any, where: str) -> float:
    """A cut-off: a number from 0 to 1; ValueError names `where` it is."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{where}: a cut-off must be a number from 0 to 1, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class RouterModel:
    """What `cascade train-router` writes: the tiers and their primary models (cheapest first),
    and per tier below the top its weights and default cut-off."""

    tiers: tuple[str, ...]
    models: tuple[str, ...]
    weights: tuple[LogisticWeights, ...]  # one per tier below the top
    cuts: tuple[float, ...]  # one per tier below the top
    bits: int = DEFAULT_BITS
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        below = len(self.tiers) - 1
        if below < 1 or len(self.models) != len(self.tiers):
            raise ValueError("a router needs two tiers or more, each with its model")
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError(f"tier names repeat: {list(self.tiers)}")
        if len(self.weights) != below or len(self.cuts) != below:
            raise ValueError(f"one weight set and one cut-off per tier below the top ({below}) are needed")
        for tier, cut in zip(self.tiers, self.cuts, strict=False):
            checked_cut(cut, f"tiers[{tier!r}].cut")

    def scores(self, request: Request) -> tuple[float, ...]:
        """P(accepted and correct) of each tier below the top, cheapest first."""
        found = features(request, self.bits)
        return tuple(w.probability(found) for w in self.weights)

    def to_dict(self) -> dict[str, Any]:
        below = [
            {"name": t, "model": m, **w.to_dict(), "cut": c}
            for t, m, w, c in zip(self.tiers, self.models, self.weights, self.cuts, strict=False)
        ]
        top = {"name": self.tiers[-1], "model": self.models[-1]}
        return {**FORMAT.header(self.bits), "tiers": [*below, top], "metadata": dict(self.metadata)}

    def save(self, path: str | Path) -> None:
        FORMAT.write(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> RouterModel:
        """A model from its saved form; ValueError says what is wrong with it."""
        bits = FORMAT.bits_of(data)
        entries = data.get("tiers")
        if not isinstance(entries, list) or len(entries) < 2 or not all(isinstance(e, dict) for e in entries):
            raise ValueError("`tiers` must list two tiers or more, cheapest first")
        names, models = [], []
        for i, entry in enumerate(entries):
            name, model = entry.get("name"), entry.get("model")
            if not isinstance(name, str) or not isinstance(model, str):
                raise ValueError(f"tiers[{i}] needs a `name` and a `model`")
            names.append(name)
            models.append(model)
        weights, cuts = [], []
        for entry in entries[:-1]:
            where = f"tiers[{entry['name']!r}]"
            weights.append(LogisticWeights.from_dict(entry, bits, where))
            cuts.append(checked_cut(entry.get("cut"), f"{where}.cut"))
        metadata = data.get("metadata", {})
        return cls(
            tuple(names),
            tuple(models),
            tuple(weights),
            tuple(cuts),
            bits,
            metadata if isinstance(metadata, dict) else {},
        )


def load(path: str | Path, tiers: Sequence[str], models: Sequence[str] | None = None) -> RouterModel:
    """The router model in the file at `path`, for a ladder of `tiers` (cheapest first) and,
    when given, their primary `models`. A file trained for another ladder is refused: its
    probabilities are of other tiers' answers. ValueError names the file and what is wrong."""

    def parse(data: Any) -> RouterModel:
        model = RouterModel.from_dict(data)
        if list(model.tiers) != list(tiers):
            raise ValueError(
                f"trained for the tiers {list(model.tiers)}, not for this ladder's {list(tiers)}: "
                "retrain it with `cascade train-router`"
            )
        if models is not None and list(model.models) != list(models):
            raise ValueError(
                f"trained for the models {list(model.models)}, not for this ladder's {list(models)}: "
                "retrain it with `cascade train-router`"
            )
        return model

    return FORMAT.read(path, parse)
