"""The whole calibration: which records, which ladders, the search, and the setting chosen.

Every sub-ladder that keeps the top tier is a candidate (`search.sub_ladders`), the top tier
alone included, so a target relative to the top tier can always be met.

Without a confidence level, the cheapest explored setting that meets the target on the
data wins: a point estimate, which over-fits small data. With one, the setting comes from
`certify` and its target holds on unseen data from the same traffic with that confidence.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from cascade.core.errors import ConfigError
from cascade.offline.calibration.certify import LEARN_SHARE, Certification, certify, check_split
from cascade.offline.calibration.observations import Observations
from cascade.offline.calibration.reliability import Isotonic, Reliability, fit_isotonic, reliability
from cascade.offline.calibration.search import (
    Explored,
    candidates,
    explore,
    pareto,
    restricted,
    start_setting,
    sub_ladders,
)
from cascade.offline.calibration.simulate import Ladder, Setting, Simulator
from cascade.offline.calibration.target import Target
from cascade.offline.calibration.thresholds import written_threshold

TOLERANCE = 1e-9


@dataclass
class Calibration:
    """What `calibrate` found; `chosen` is None when the target could not be met."""

    observations: Observations
    simulator: Simulator
    target: Target
    train: list[int]  # every record used
    fit: list[int]  # the records the explored points are scored on
    confidence: float | None
    grid: list[list[float]]
    ladders: list[Ladder]
    method: str = ""
    grid_size: int = 0
    explored: list[Explored] = field(default_factory=list)
    frontier: list[Explored] = field(default_factory=list)
    chosen: Explored | None = None
    best: Explored | None = None  # the most accurate explored setting (for an impossible target)
    certification: Certification | None = None
    reliability: list[Reliability] = field(default_factory=list)
    _observed: dict[int, list[float]] = field(default_factory=dict, repr=False)
    _calibrators: dict[int, Isotonic] = field(default_factory=dict, repr=False)

    @property
    def top(self) -> int:
        return len(self.observations.tiers) - 1

    @functools.cached_property
    def top_on_train(self) -> tuple[int, Decimal]:
        """(correct, cost) of the top tier alone on the training data."""
        return self.simulator.alone(self.top, self.train)

    @property
    def fell_back(self) -> bool:
        """Nothing could be certified (the top tier alone is chosen, when it is a candidate)."""
        return self.certification is not None and not self.certification.certified

    def accuracy(self, point: Explored) -> float:
        return point.correct / len(self.fit)

    def observed(self, slot: int) -> list[float]:
        """Every positive score the slot gave on the whole training data, sorted."""
        if slot not in self._observed:
            self._observed[slot] = sorted(set(self.observations.scores(slot, self.train)))
        return self._observed[slot]

    def kept(self, point: Explored) -> list[int]:
        """The slots on the tiers `point`'s ladder keeps."""
        return [i for i, s in enumerate(self.observations.slots) if s.tier_index in point.ladder]

    def thresholds(self, setting: Setting) -> list[float]:
        """The thresholds written for `setting`, per slot: with a confidence level, exactly
        the certified cut-offs; without, short decimals that decide alike on the data."""
        slots = self.observations.slots
        if self.certification is not None:
            return [slot.threshold_for(cut) for slot, cut in zip(slots, setting, strict=True)]
        return [
            written_threshold(slot, cut, self.observed(i))
            for i, (slot, cut) in enumerate(zip(slots, setting, strict=True))
        ]

    def probability(self, slot: int, cut: float) -> float:
        """P(correct) of an answer the slot scores `cut`: by the map the setting was chosen
        with (the learn share's), else by one fitted on the training data."""
        if self.certification is not None:
            return self.certification.calibrators[slot](cut)
        if slot not in self._calibrators:
            self._calibrators[slot] = fit_isotonic(*self.observations.scored(slot, self.train))
        return self._calibrators[slot](cut)

    def on_train(self, point: Explored) -> tuple[int, Decimal]:
        return self.simulator.run_exact(point.setting, self.train, point.ladder)


def calibrate(
    observations: Observations,
    target: Target,
    *,
    confidence: float | None = None,
    seed: int = 0,
    records: Sequence[int] | None = None,
    learn_share: float = LEARN_SHARE,
    skip_tiers: bool = True,
) -> Calibration:
    """Search for the cheapest cascade that meets `target` on `records` (all by default; see
    the module doc). `skip_tiers=False` searches the full ladder only."""
    simulator = Simulator(observations)
    train = sorted(records) if records is not None else list(range(len(observations.ids)))
    ladders = sub_ladders(len(observations.tiers)) if skip_tiers else [simulator.full()]
    offs = [min(observations.scores(i, train), default=0.0) for i in range(len(observations.slots))]
    grid = [candidates(observations, i, train, offs[i]) for i in range(len(observations.slots))]
    found = Calibration(observations, simulator, target, train, train, confidence, grid, ladders)
    found.reliability = _reliability(observations, train)
    if confidence is None:
        return _point_estimate(found)
    check_confidence(confidence, target)
    check_split(len(train), learn_share)
    certification = certify(
        simulator,
        target,
        train,
        ladders,
        tuple(offs),
        confidence=confidence,
        seed=seed,
        learn_share=learn_share,
    )
    found.certification = certification
    found.fit = certification.learn
    found.method = "probability levels"
    found.explored = certification.candidates
    found.grid_size = len(certification.candidates)
    found.frontier = pareto(certification.candidates)
    top_point = certification.top
    found.best = max([*found.explored, top_point], key=lambda p: (p.correct, -p.cost))
    certified = certification.certified
    if target.max_loss is not None and (found.top,) in ladders:  # it loses nothing against itself
        certified = [*certified, top_point]
    if certified:  # the cheapest on all the data (the top tier alone when none is cheaper)
        found.chosen = min(certified, key=lambda p: (found.on_train(p)[1], len(p.ladder) > 1))
    return found


def check_confidence(confidence: float, target: Target) -> None:
    """Refuse a confidence level, or a target, that the guarantee cannot hold."""
    if not 0.5 <= confidence < 1:
        raise ConfigError(f"--confidence is a level from 0.5 up to (not including) 1, not {confidence:g}")
    if target.kind == "of_top":
        raise ConfigError("--of-top has no --confidence: use --max-loss (a paired loss against the top tier)")


def _point_estimate(found: Calibration) -> Calibration:
    simulator, observations, train, target = found.simulator, found.observations, found.train, found.target
    top_correct, _ = simulator.alone(found.top, train)
    required = target.required(top_correct / len(train))

    def meets(correct: int) -> bool:
        return correct >= required * len(train) - TOLERANCE

    points: list[Explored] = []
    methods = set()
    for ladder in found.ladders:
        grid = restricted(found.grid, observations, ladder)
        start = start_setting(observations, grid, train)
        explored, method, size = explore(simulator, grid, start, train, meets, ladder)
        points += explored.values()
        methods.add(method)
        found.grid_size += size
    found.method = " and ".join(sorted(methods))
    found.explored = points
    found.frontier = pareto(points)
    found.best = max(points, key=lambda p: (p.correct, -p.cost))
    by_cost = sorted(points, key=lambda p: (p.cost, -p.correct, -len(p.ladder)))
    found.chosen = next((p for p in by_cost if meets(p.correct)), None)
    return found


def _reliability(observations: Observations, records: Sequence[int]) -> list[Reliability]:
    found = []
    for i, slot in enumerate(observations.slots):
        scores, correct = observations.scored(i, records)
        if scores:
            found.append(reliability(slot.label, scores, correct))
    return found
