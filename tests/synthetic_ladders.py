"""Synthetic ladders with known truth, for the calibration's guarantee.

A population of requests, each with a difficulty; tier k is right when the difficulty is
below its skill (each answer then flipped with a small chance, so a cheap tier is sometimes
right where the top tier is wrong), and its verifier scores the answer with a noisy
function of whether it is right. A draw samples requests from the population with
replacement: independent draws from a known distribution, whose true figures are the
population's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

from cascade.offline.calibration.observations import Check, Observations, Slot, TierOutcome
from cascade.offline.calibration.simulate import Ladder, Setting


class Identity:
    """A calibratable verifier whose threshold is the cut-off itself."""

    def threshold_for(self, score: float) -> float:
        return score


@dataclass(frozen=True)
class Request:
    right: tuple[bool, ...]  # per tier
    score: tuple[float, ...]  # per tier below the top


@dataclass(frozen=True)
class Ladder3:
    skills: tuple[float, ...] = (0.55, 0.7, 0.85)
    costs: tuple[float, ...] = (1.0, 4.0, 20.0)
    flip: float = 0.06
    signal: float = 1.6  # how far apart right and wrong answers score, in noise units

    def population(self, size: int, seed: int) -> list[Request]:
        rng = random.Random(seed)
        requests = []
        for _ in range(size):
            difficulty = rng.random()
            right = tuple((difficulty < s) != (rng.random() < self.flip) for s in self.skills)
            score = tuple(
                1 / (1 + math.exp(-(self.signal * (1 if r else -1) / 2 + rng.gauss(0, 1))))
                for r in right[:-1]
            )
            requests.append(Request(right, score))
        return requests

    def observations(self, requests: list[Request]) -> Observations:
        tiers = [f"t{k}" for k in range(len(self.skills))]
        slots = [
            Slot(tiers[k], k, k, 0, "synthetic", Identity(), f"{tiers[k]}/synthetic")
            for k in range(len(tiers) - 1)
        ]
        rows = []
        for request in requests:
            row = []
            for k, right in enumerate(request.right):
                cost = Decimal(str(self.costs[k]))
                checks = (Check(k, True, request.score[k], Decimal(0)),) if k < len(tiers) - 1 else ()
                row.append(TierOutcome((), True, cost, checks, right, right, cost))
            rows.append(row)
        return Observations(
            ids=[str(i) for i in range(len(requests))],
            tiers=tiers,
            models_per_tier=[1] * len(tiers),
            slots=slots,
            rows=rows,
            stop_at_first_failure=True,
            reasks=[0] * len(tiers),
            budget=None,
        )

    def true_figures(self, requests: list[Request], ladder: Ladder, setting: Setting) -> tuple[float, float]:
        """(paired loss against the top tier, mean cost share of the top tier's) over `requests`,
        by the plain rule, written apart from the simulator: the first kept tier whose score
        reaches its cut-off answers, else the top tier."""
        top = len(requests[0].right) - 1
        loss = cost = 0.0
        costs = self.costs
        for request in requests:
            answer = top
            spent = 0.0
            for k in ladder[:-1]:
                spent += costs[k]
                if request.score[k] >= setting[k]:
                    answer = k
                    break
            else:
                spent += costs[top]
            loss += request.right[top] - request.right[answer]
            cost += spent / costs[top]
        return loss / len(requests), cost / len(requests)
