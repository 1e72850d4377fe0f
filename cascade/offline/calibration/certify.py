"""The guarantee: a setting chosen so that its loss holds on unseen traffic with a stated
confidence, by Learn-then-Test with fixed-sequence testing (Angelopoulos et al., 2021).

1. The labelled requests are split once, at random: a learn share and a certify share.
2. On the learn share, each calibratable verifier gets a monotone map from its score to
   P(correct) (`reliability`), so one probability level gives comparable cut-offs on every
   tier. Every sub-ladder at every level is scored there; the settings of their (cost,
   accuracy) frontier that are cheaper than the top tier alone, from the most accurate to
   the cheapest, are the testing order.
3. On the certify share, the settings are tested in that order, each at the full level,
   with an exact p-value (`bounds.loss_p_value` for a paired loss, `accuracy_p_value` for an
   accuracy), and testing stops at the first that fails. Every setting certified is within
   the target at once, with probability at least the confidence, so the cheapest on all
   the data is chosen (the top tier alone, when it is cheaper).

Nothing certified means the data cannot support the target at that confidence: the top tier
alone is the answer (its loss is zero), with an estimate of the data that would do.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from cascade.core.binomial import accuracy_p_value, loss_p_value, requests_needed
from cascade.core.errors import ConfigError
from cascade.offline.calibration.observations import Observations
from cascade.offline.calibration.reliability import Isotonic, fit_isotonic
from cascade.offline.calibration.search import Explored, pareto
from cascade.offline.calibration.simulate import Ladder, Setting, Simulator
from cascade.offline.calibration.target import Target

LEARN_SHARE = 0.3  # the path needs less data than the bound: most of it goes to the bound
NUISANCE_SHARE = 0.1  # of the risk, spent on bounding the discordance rate
MIN_LEARN, MIN_CERTIFY = 5, 10  # requests: below these, neither share means anything


@dataclass(frozen=True)
class Step:
    """One test of the fixed sequence, with the counts it was decided on (certify share)."""

    point: Explored  # scored on the learn share
    correct: int
    worse: int
    better: int
    p_value: float
    certified: bool


@dataclass
class Certification:
    learn: list[int]
    certify: list[int]
    risk: float  # 1 - confidence
    top: Explored  # the top tier alone, scored on the learn share
    calibrators: dict[int, Isotonic]  # slot -> P(correct), fitted on the learn share
    candidates: list[Explored]  # every sub-ladder at every level, scored on the learn share
    path: list[Explored]  # the testing order
    steps: list[Step]  # as far as testing went
    needed: float | None  # labelled requests that would certify the path's first setting (inf: too many)

    @property
    def certified(self) -> list[Explored]:
        return [s.point for s in self.steps if s.certified]

    @property
    def nuisance(self) -> float:
        return self.risk * NUISANCE_SHARE


def check_split(requests: int, share: float) -> None:
    """Refuse a learn share that leaves either share too small to use."""
    if not 0 < share < 1:
        raise ConfigError(f"--learn-share is a fraction between 0 and 1, not {share:g}")
    learn = round(requests * share)
    if learn < MIN_LEARN or requests - learn < MIN_CERTIFY:
        raise ConfigError(
            f"{requests} labelled requests split at --learn-share {share:g} leave {learn} to learn the "
            f"order and {requests - learn} to certify it: at least {MIN_LEARN} and {MIN_CERTIFY} are needed"
        )


def split(records: Sequence[int], share: float, seed: int) -> tuple[list[int], list[int]]:
    """(learn, certify): `records` shuffled with `seed` and cut at `share`."""
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    cut = round(len(shuffled) * share)
    return sorted(shuffled[:cut]), sorted(shuffled[cut:])


def fit_calibrators(observations: Observations, records: Sequence[int]) -> dict[int, Isotonic]:
    """Per slot, its score's P(correct) on `records` (the answers it scored)."""
    return {i: fit_isotonic(*observations.scored(i, records)) for i in range(len(observations.slots))}


def probability_family(
    simulator: Simulator,
    calibrators: dict[int, Isotonic],
    ladders: Sequence[Ladder],
    offs: Setting,
    learn: Sequence[int],
) -> list[Explored]:
    """Every ladder (but the top tier alone) at every probability level: each kept slot's
    cut-off is the lowest score whose P(correct) reaches the level. Scored on `learn`."""
    slots = simulator.obs.slots
    levels = sorted({v for m in calibrators.values() for v in m.values})
    points: dict[tuple[Ladder, Setting], Explored] = {}
    for ladder in ladders:
        if len(ladder) == 1:
            continue
        for level in levels:
            setting = tuple(
                calibrators[i].lowest_reaching(level) if s.tier_index in ladder else offs[i]
                for i, s in enumerate(slots)
            )
            if any(math.isinf(c) for c in setting) or (ladder, setting) in points:
                continue  # a tier that accepts nothing: the ladder without it does better
            correct, cost = simulator.run(setting, learn, ladder)
            points[ladder, setting] = Explored(setting, correct, cost, ladder)
    return list(points.values())


def certify(
    simulator: Simulator,
    target: Target,
    records: Sequence[int],
    ladders: Sequence[Ladder],
    offs: Setting,
    *,
    confidence: float,
    seed: int,
    learn_share: float = LEARN_SHARE,
) -> Certification:
    """Learn the testing order on one share, test along it on the other (see the module doc)."""
    learn, rest = split(records, learn_share, seed)
    calibrators = fit_calibrators(simulator.obs, learn)
    candidates = probability_family(simulator, calibrators, ladders, offs, learn)
    top = len(simulator.obs.tiers) - 1
    correct, top_cost = simulator.run(offs, learn, (top,))
    top_alone = Explored(offs, correct, top_cost, (top,))
    # a setting no cheaper than the top tier alone is never worth choosing, nor testing
    path = [p for p in pareto(candidates) if p.cost < top_cost]
    if target.max_loss is None and (top,) in ladders:  # an accuracy: the top tier alone is tested too
        path.append(top_alone)
    path.sort(key=lambda p: (-p.correct, p.cost))
    found = Certification(learn, rest, 1 - confidence, top_alone, calibrators, candidates, path, [], None)
    for point in path:
        step = test(simulator, target, point, rest, found)
        found.steps.append(step)
        if not step.certified:
            break
    if not found.certified and path and target.max_loss is not None:
        first = found.steps[0]
        n = len(rest)
        in_certify = requests_needed(
            first.worse / n, first.better / n, target.max_loss, found.risk, found.nuisance
        )
        found.needed = None if in_certify is None else in_certify / (1 - learn_share)
    return found


def test(
    simulator: Simulator, target: Target, point: Explored, records: Sequence[int], found: Certification
) -> Step:
    """The p-value of "`point` misses the target", on `records`."""
    n = len(records)
    correct, worse, better = simulator.against_top(point.setting, records, point.ladder)
    if target.max_loss is not None:
        p = loss_p_value(worse, better, n, target.max_loss, found.nuisance)
    else:
        p = accuracy_p_value(correct, n, target.value)
    return Step(point, correct, worse, better, p, p <= found.risk)
