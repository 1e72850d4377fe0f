"""The whole calibration: the splits, the grid of cut-offs, the search, and the setting
chosen for the target.

The cheapest explored setting that meets the target on the data wins. With a confidence
level, the search runs on a fit split and the chosen setting is the cheapest explored one
whose one-sided Clopper-Pearson lower bound on a validation split meets the target.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from cascade.core.errors import ConfigError
from cascade.offline.calibration.observations import Observations
from cascade.offline.calibration.search import Explored, candidates, explore, pareto, start_setting
from cascade.offline.calibration.simulate import Setting, Simulator
from cascade.offline.calibration.target import Target, binomial_lower_bound
from cascade.offline.calibration.thresholds import written_threshold

VALIDATION_SHARE = 0.3
TOLERANCE = 1e-9


@dataclass
class Calibration:
    """What `calibrate` found; `chosen` is None when the target could not be met."""

    observations: Observations
    simulator: Simulator
    target: Target
    train: list[int]
    fit: list[int]
    validation: list[int]
    confidence: float | None
    grid: list[list[float]]
    method: str
    grid_size: int
    explored: dict[Setting, Explored]
    frontier: list[Explored]
    required_fit: float  # accuracy required on the fit split
    required_validation: float | None
    chosen: Explored | None
    best: Explored  # the most accurate explored setting (for an impossible target)
    lower_bounds: dict[Setting, tuple[int, float]] = field(default_factory=dict)  # validation
    _observed: dict[int, list[float]] = field(default_factory=dict, repr=False)

    @property
    def top(self) -> int:
        return len(self.observations.tiers) - 1

    def accuracy(self, point: Explored) -> float:
        return point.correct / len(self.fit)

    def observed(self, slot: int) -> list[float]:
        """Every positive score the slot gave on the whole training data, sorted."""
        if slot not in self._observed:
            self._observed[slot] = sorted(set(self.observations.scores(slot, self.train)))
        return self._observed[slot]

    def thresholds(self, setting: Setting) -> list[float]:
        """The thresholds written for `setting`, per slot."""
        return [
            written_threshold(slot, cut, self.observed(i))
            for i, (slot, cut) in enumerate(zip(self.observations.slots, setting, strict=True))
        ]

    def is_off(self, slot: int, cut: float) -> bool:
        return cut <= self.grid[slot][0]

    def on_train(self, setting: Setting) -> tuple[int, Decimal]:
        return self.simulator.run_exact(setting, self.train)

    def validation_bound(self, setting: Setting) -> tuple[int, float]:
        """(correct on the validation split, its lower bound at the confidence level)."""
        if setting not in self.lower_bounds:
            assert self.confidence is not None
            correct, _ = self.simulator.run(setting, self.validation)
            self.lower_bounds[setting] = (
                correct,
                binomial_lower_bound(correct, len(self.validation), self.confidence),
            )
        return self.lower_bounds[setting]


def calibrate(
    observations: Observations,
    target: Target,
    *,
    confidence: float | None = None,
    seed: int = 0,
    validation_share: float = VALIDATION_SHARE,
) -> Calibration:
    """Search the cut-offs for the cheapest cascade that meets `target` (see the module doc)."""
    simulator = Simulator(observations)
    train = list(range(len(observations.ids)))
    fit, validation = train, []
    if confidence is not None:
        if not 0 < confidence < 1:
            raise ConfigError(f"--confidence is a level between 0 and 1, not {confidence:g}")
        shuffled = train[:]
        random.Random(seed).shuffle(shuffled)
        cut = round(len(train) * validation_share)
        if cut < 1 or cut >= len(train):
            raise ConfigError(f"too few records ({len(train)}) for a validation split")
        validation, fit = sorted(shuffled[:cut]), sorted(shuffled[cut:])
    top = len(observations.tiers) - 1
    offs = [min(observations.scores(i, train), default=0.0) for i in range(len(observations.slots))]
    grid = [candidates(observations, i, fit, offs[i]) for i in range(len(observations.slots))]
    top_fit, _ = simulator.alone(top, fit)
    required_fit = target.required(top_fit / len(fit))

    def meets(correct: int) -> bool:
        return correct >= required_fit * len(fit) - TOLERANCE

    start = start_setting(observations, grid, fit)
    explored, method, size = explore(simulator, grid, start, fit, meets)
    points = list(explored.values())
    best = max(points, key=lambda p: (p.correct, -p.cost))
    result = Calibration(
        observations,
        simulator,
        target,
        train,
        fit,
        validation,
        confidence,
        grid,
        method,
        size,
        explored,
        pareto(points),
        required_fit,
        None,
        None,
        best,
    )
    by_cost = sorted(points, key=lambda p: (p.cost, -p.correct))
    if confidence is None:
        result.chosen = next((p for p in by_cost if meets(p.correct)), None)
        return result
    top_validation, _ = simulator.alone(top, validation)
    result.required_validation = target.required(top_validation / len(validation))
    for point in by_cost:
        if result.validation_bound(point.setting)[1] >= result.required_validation - TOLERANCE:
            result.chosen = point
            break
    return result
