"""The search over cut-offs: per calibratable verifier, the scores observed (thinned to
quantiles) and "off" (the lowest score observed); every combination when there are few
(for the number of records), else coordinate descent from the config's own thresholds.
Each setting explored is scored by the simulator; the (cost, accuracy) Pareto frontier of
them is kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cascade.offline.calibration.observations import Observations
from cascade.offline.calibration.simulate import Ladder, Setting, Simulator

MAX_CANDIDATES = 25  # cut-offs tried per verifier (quantiles of the observed scores)
MAX_GRID = 20_000  # settings tried exhaustively; beyond that, coordinate descent
MAX_WALKS = 3_000_000  # nor more than this many (setting, record) simulations
MAX_ROUNDS = 20  # coordinate descent rounds


def candidates(observations: Observations, slot: int, fit: Sequence[int], off: float) -> list[float]:
    """Cut-offs to try for `slot`: the scores observed on `fit`, thinned to quantiles, and `off`."""
    scores = sorted(observations.scores(slot, fit))
    distinct = sorted(set(scores))
    if len(distinct) > MAX_CANDIDATES:
        last = len(scores) - 1
        distinct = sorted({scores[round(last * i / (MAX_CANDIDATES - 1))] for i in range(MAX_CANDIDATES)})
    return sorted({off, *distinct})


def start_setting(observations: Observations, grid: list[list[float]], fit: Sequence[int]) -> Setting:
    """The cut-offs closest to the config's own thresholds: per slot, the lowest score that
    passed on `fit`, raised to the next candidate (the strictest when nothing passed)."""
    setting = []
    for i, slot in enumerate(observations.slots):
        passed = [
            c.score
            for r in fit
            for c in observations.rows[r][slot.tier_index].checks
            if c.slot == i and c.passed and c.score > 0
        ]
        lowest = min(passed, default=math.inf)
        setting.append(next((c for c in grid[i] if c >= lowest), grid[i][-1]))
    return tuple(setting)


@dataclass(frozen=True)
class Explored:
    """A setting on a ladder, scored on the records it was explored on."""

    setting: Setting
    correct: int
    cost: float
    ladder: Ladder


def sub_ladders(tiers: int) -> list[Ladder]:
    """Every ladder that keeps the top tier: each subset of the tiers below it, the full
    ladder first and the top tier alone last."""
    below = range(tiers - 1)
    return [
        (*kept, tiers - 1)
        for size in range(tiers - 1, -1, -1)
        for kept in itertools.combinations(below, size)
    ]


def restricted(grid: list[list[float]], observations: Observations, ladder: Ladder) -> list[list[float]]:
    """The grid with the slots of dropped tiers held "off": their cut-offs do not matter."""
    return [g if observations.slots[i].tier_index in ladder else g[:1] for i, g in enumerate(grid)]


def explore(
    simulator: Simulator,
    grid: list[list[float]],
    start: Setting,
    fit: Sequence[int],
    meets: Callable[[int], bool],
    ladder: Ladder,
) -> tuple[dict[Setting, Explored], str, int]:
    """Every setting explored on `ladder` on `fit` (exhaustive or coordinate descent), the
    method, the grid size."""
    size = math.prod(len(g) for g in grid)
    explored: dict[Setting, Explored] = {}

    def evaluate(setting: Setting) -> Explored:
        if setting not in explored:
            correct, cost = simulator.run(setting, fit, ladder)
            explored[setting] = Explored(setting, correct, cost, ladder)
        return explored[setting]

    if size <= MAX_GRID and size * len(fit) <= MAX_WALKS:
        for setting in itertools.product(*grid):
            evaluate(setting)
        return explored, "exhaustive", size

    def key(point: Explored) -> tuple[int, float, float]:
        return (0, point.cost, -point.correct) if meets(point.correct) else (1, -point.correct, point.cost)

    for origin in (start, tuple(g[0] for g in grid)):  # the config's thresholds, then all off
        current = evaluate(origin)
        for _ in range(MAX_ROUNDS):
            before = current
            for i in range(len(grid)):
                for cut in grid[i]:
                    trial = evaluate((*current.setting[:i], cut, *current.setting[i + 1 :]))
                    if key(trial) < key(current):
                        current = trial
            if current is before:
                break
    return explored, "coordinate descent", size


def pareto(points: Sequence[Explored]) -> list[Explored]:
    """The points no other beats on both cost and accuracy, cheapest first."""
    frontier: list[Explored] = []
    for point in sorted(points, key=lambda p: (p.cost, -p.correct)):
        if not frontier or point.correct > frontier[-1].correct:
            frontier.append(point)
    return frontier
