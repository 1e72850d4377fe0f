"""A calibration as plain data: what `cascade calibrate --json` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.core.binomial import accuracy_interval, loss_interval
from cascade.offline.calibration.certify import Step
from cascade.offline.calibration.choose import Calibration
from cascade.offline.calibration.search import Explored
from cascade.offline.evaluation import EvalReport

INTERVAL = 0.95  # of the figures on held-out data


@dataclass(frozen=True)
class Checked:
    """A chosen calibration and what became of it: the thresholds written, the simulated
    (correct, cost) on the training data, the engine's run of the written config on that
    data (and whether the two agree), and its score on held-out data if any."""

    found: Calibration
    thresholds: list[float]
    expected: tuple[int, Decimal]
    confirmed: EvalReport
    agrees: bool
    tested: EvalReport | None


def ladder_names(found: Calibration, point: Explored) -> list[str]:
    return [found.observations.tiers[k] for k in point.ladder]


def skipped(found: Calibration, point: Explored) -> list[str]:
    return [t for k, t in enumerate(found.observations.tiers) if k not in point.ladder]


def summary(found: Calibration, *, config: Path, data: Path, seed: int) -> dict[str, Any]:
    """The target, the search and its frontier, whether or not the target was met."""
    top_correct, top_cost = found.top_on_train
    n = len(found.train)
    certification = found.certification
    return {
        "config": str(config),
        "data": str(data),
        "requests": n,
        "target": {"kind": found.target.kind, "value": found.target.value, "text": found.target.describe()},
        "confidence": (
            {
                "level": found.confidence,
                "procedure": "learn-then-test, fixed-sequence",
                "learn_requests": len(certification.learn),
                "certify_requests": len(certification.certify),
                "seed": seed,
                "tested": [step_summary(found, s, len(certification.certify)) for s in certification.steps],
                "certified": len(certification.certified),
                "fell_back_to_top": found.fell_back,
                "requests_needed": (
                    None
                    if certification.needed is None or math.isinf(certification.needed)
                    else math.ceil(certification.needed)
                ),
                "requests_needed_beyond_a_million": certification.needed == math.inf,
            }
            if certification is not None
            else None
        ),
        "search": {
            "method": found.method,
            "settings": found.grid_size,
            "explored": len(found.explored),
            "ladders": len(found.ladders),
        },
        "slots": [
            {"label": s.label, "tier": s.tier, "type": s.type, "entry": s.entry}
            for s in found.observations.slots
        ],
        "fixed_gates": found.observations.fixed,
        "reliability": [
            {
                "label": r.label,
                "answers": r.answers,
                "accuracy": round(r.accuracy, 6),
                "ece_raw": None if r.ece_raw is None else round(r.ece_raw, 6),
                "ece_calibrated": round(r.ece_calibrated, 6),
            }
            for r in found.reliability
        ],
        "top_alone": {"accuracy": round(top_correct / n, 6), "cost_usd": float(top_cost)},
        "frontier": [point_summary(found, p) for p in found.frontier],
    }


def step_summary(found: Calibration, step: Step, n: int) -> dict[str, Any]:
    return {
        **point_summary(found, step.point),
        "certify": {
            "accuracy": round(step.correct / n, 6),
            "worse_than_top": step.worse,
            "better_than_top": step.better,
            "loss_against_top": round((step.worse - step.better) / n, 6),
            "p_value": round(step.p_value, 6),
            "certified": step.certified,
        },
    }


def chosen_summary(
    found: Calibration, thresholds: Sequence[float], expected: tuple[int, Decimal]
) -> dict[str, Any]:
    """The chosen setting, its thresholds, and what it is expected to do on the training data."""
    assert found.chosen is not None
    top_correct, _ = found.top_on_train
    n = len(found.train)
    return {
        **point_summary(found, found.chosen),
        "thresholds": {found.observations.slots[i].label: thresholds[i] for i in found.kept(found.chosen)},
        "train": {
            "accuracy": round(expected[0] / n, 6),
            "loss_against_top": round((top_correct - expected[0]) / n, 6),
            "cost_usd": float(expected[1]),
        },
    }


def point_summary(found: Calibration, point: Explored) -> dict[str, Any]:
    slots = found.observations.slots
    kept = found.kept(point)
    thresholds = found.thresholds(point.setting)
    return {
        "ladder": ladder_names(found, point),
        "skipped": skipped(found, point),
        "cutoffs": {slots[i].label: point.setting[i] for i in kept},
        "thresholds": {slots[i].label: thresholds[i] for i in kept},
        "accuracy": round(found.accuracy(point), 6),
        "cost_usd": round(point.cost, 9),
    }


def unseen_summary(tested: EvalReport, max_loss: float | None) -> dict[str, Any]:
    """The written config on held-out data, with intervals: what a user can expect live."""
    n = tested.cascade.requests
    low, high = accuracy_interval(round(tested.cascade.accuracy * n), n, INTERVAL)
    loss_low, loss_high = loss_interval(tested.worse, tested.better, n, INTERVAL)
    top_cost = tested.top.cost_usd
    return {
        "requests": n,
        "accuracy": round(tested.cascade.accuracy, 6),
        "accuracy_interval": [round(low, 6), round(high, 6)],
        "top_alone_accuracy": round(tested.top.accuracy, 6),
        "loss_against_top": round(tested.loss, 6),
        "loss_interval": [round(loss_low, 6), round(loss_high, 6)],
        "interval_level": INTERVAL,
        "cost_share_of_top": round(float(tested.cascade.cost_usd / top_cost), 6) if top_cost else None,
        "within_max_loss": None if max_loss is None else tested.loss <= max_loss + 1e-12,
    }
