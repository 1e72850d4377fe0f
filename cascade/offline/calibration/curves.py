"""A calibration's error-cost curves: its frontier's settings on the training data and, when
given, on held-out data (replayed from that data's own observations)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from cascade.offline.calibration.choose import Calibration
from cascade.offline.calibration.observations import Observations
from cascade.offline.calibration.simulate import Setting, Simulator

Curve = list[tuple[float, float]]  # (cost as a share of the top tier alone's, error)


def error_curves(
    found: Calibration, held_out: Observations | None
) -> tuple[dict[str, Curve], dict[str, tuple[float, float]], str, float | None]:
    """(curves by name, the chosen setting's point on each, what the error is, the target on
    that scale)."""
    max_loss = found.target.max_loss
    label = "accuracy lost against the top tier alone" if max_loss is not None else "error (1 - accuracy)"
    target = (
        max_loss
        if max_loss is not None
        else (1 - found.target.value if found.target.kind == "accuracy" else None)
    )
    data: dict[str, tuple[Simulator, list[int], Callable[[Setting], Setting]]] = {
        "train": (found.simulator, found.train, _same)
    }
    if held_out is not None:
        data["unseen"] = (Simulator(held_out), list(range(len(held_out.ids))), _by_label(found, held_out))
    curves: dict[str, Curve] = {}
    chosen: dict[str, tuple[float, float]] = {}
    for name, (simulator, records, translate) in data.items():
        points = [*found.frontier, *([found.chosen] if found.chosen is not None else [])]
        top = simulator.alone(len(simulator.obs.tiers) - 1, records)  # the same for every point
        measured = [
            _measure(simulator, p.ladder, translate(p.setting), records, top, max_loss) for p in points
        ]
        curves[name] = measured[: len(found.frontier)]
        if found.chosen is not None:
            chosen[name] = measured[-1]
    return curves, chosen, label, target


def _same(setting: Setting) -> Setting:
    return setting


def _by_label(found: Calibration, held_out: Observations) -> Callable[[Setting], Setting]:
    """Settings carried over to the held-out observations' slots, matched by label (a slot
    with no score there stays off)."""
    labels = [s.label for s in found.observations.slots]
    offs = [
        min(held_out.scores(j, range(len(held_out.ids))), default=0.0) for j in range(len(held_out.slots))
    ]

    def translate(setting: Setting) -> Setting:
        return tuple(
            setting[labels.index(s.label)] if s.label in labels else offs[j]
            for j, s in enumerate(held_out.slots)
        )

    return translate


def _measure(
    simulator: Simulator,
    ladder: tuple[int, ...],
    setting: Setting,
    records: list[int],
    top: tuple[int, Decimal],
    max_loss: float | None,
) -> tuple[float, float]:
    n = len(records)
    correct, cost = simulator.run(setting, records, ladder)
    top_correct, top_cost = top
    share = cost / float(top_cost) if top_cost else 0.0
    error = (top_correct - correct) / n if max_loss is not None else 1 - correct / n
    return share, error
