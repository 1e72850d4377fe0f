"""A calibration as plain data: what `cascade calibrate --json` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.offline.calibration.choose import Calibration
from cascade.offline.calibration.search import Explored
from cascade.offline.evaluation import EvalReport


@dataclass(frozen=True)
class Checked:
    """A chosen calibration and what became of it: the thresholds written, the simulated
    (correct, cost) on the fit data, the engine's run of the written config on that data
    (and whether the two agree), and its score on held-out data if any."""

    found: Calibration
    thresholds: list[float]
    expected: tuple[int, Decimal]
    confirmed: EvalReport
    agrees: bool
    tested: EvalReport | None


def summary(found: Calibration, *, config: Path, data: Path, seed: int) -> dict[str, Any]:
    """The target, the search and its frontier, whether or not the target was met."""
    top_correct, top_cost = found.simulator.alone(found.top, found.train)
    n = len(found.train)
    return {
        "config": str(config),
        "data": str(data),
        "requests": n,
        "target": {
            "kind": found.target.kind,
            "value": found.target.value,
            "required_accuracy_fit": round(found.required_fit, 6),
            "required_accuracy_validation": (
                round(found.required_validation, 6) if found.required_validation is not None else None
            ),
        },
        "confidence": (
            {
                "level": found.confidence,
                "validation_requests": len(found.validation),
                "fit_requests": len(found.fit),
                "seed": seed,
            }
            if found.confidence is not None
            else None
        ),
        "search": {"method": found.method, "grid": found.grid_size, "explored": len(found.explored)},
        "slots": [
            {"label": s.label, "tier": s.tier, "type": s.type, "entry": s.entry}
            for s in found.observations.slots
        ],
        "fixed_gates": found.observations.fixed,
        "top_alone": {"accuracy": round(top_correct / n, 6), "cost_usd": float(top_cost)},
        "frontier": [point_summary(found, p) for p in found.frontier],
    }


def chosen_summary(
    found: Calibration, thresholds: Sequence[float], expected: tuple[int, Decimal]
) -> dict[str, Any]:
    """The chosen setting, its thresholds, and what it is expected to do on the training data."""
    assert found.chosen is not None
    return {
        **point_summary(found, found.chosen),
        "thresholds": {s.label: t for s, t in zip(found.observations.slots, thresholds, strict=True)},
        "train": {"accuracy": round(expected[0] / len(found.train), 6), "cost_usd": float(expected[1])},
    }


def point_summary(found: Calibration, point: Explored) -> dict[str, Any]:
    labels = [s.label for s in found.observations.slots]
    data: dict[str, Any] = {
        "cutoffs": dict(zip(labels, point.setting, strict=True)),
        "thresholds": dict(zip(labels, found.thresholds(point.setting), strict=True)),
        "accuracy": round(found.accuracy(point), 6),
        "cost_usd": round(point.cost, 9),
    }
    if found.confidence is not None:
        correct, bound = found.validation_bound(point.setting)
        data["validation"] = {
            "accuracy": round(correct / len(found.validation), 6),
            "lower_bound": round(bound, 6),
        }
    return data
