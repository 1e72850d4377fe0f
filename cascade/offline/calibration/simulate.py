"""The cascade replayed in pure Python from observations, under any cut-offs.

Under a setting (a cut-off per calibratable verifier), each tier's answer to a record has a
pattern of checks passed: a fixed gate's verdict stands, a calibratable one passes iff its
score reaches its cut-off. From there the request goes up the ladder by the cascade's own
rules, each decided by `cascade.core.policy` as the engine decides it: which checks the
chain runs, whether the answer is accepted, reasks, the next tier, the budget, and which
rejected answer is returned. A replay gives the same answer each time it is asked, and a
tier's failed calls are replayed as observed (they already followed the alternates).

A `ladder` (the tiers kept, by index, always ending with the top tier) simulates the config
with the other tiers dropped: a request passes them by without a call.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cascade.core.policy import (
    START,
    AnswerRank,
    Position,
    answer_rank,
    budget_exhausted,
    judged,
    keep_checking,
    next_position,
    should_reask,
)
from cascade.core.values import ZERO, Outcome
from cascade.offline.calibration.observations import Observations, TierOutcome

Setting = tuple[float, ...]  # a cut-off per slot
Ladder = tuple[int, ...]  # the tiers kept, by index, ending with the top tier
NO_ANSWER = -1  # the pattern of a tier whose every call failed
SKIPPED = -2  # the pattern of a tier the ladder drops


@dataclass(frozen=True)
class Simulated:
    """What the cascade does with one request: the tier whose answer it returns (None when
    there is none), whether that answer was verified, and what the request cost."""

    tier: int | None
    verified: bool
    cost: Decimal
    correct: bool
    cost_f: float  # `cost` as a float, for the search


@dataclass(frozen=True)
class _Answer:
    """A tier's answer judged under a pattern of checks passed."""

    outcome: Outcome
    passed: int  # verdicts passed among those the chain ran
    cost: Decimal  # the call and the checks the chain ran


class Simulator:
    """The cascade replayed from observations under any cut-offs (see the module doc)."""

    def __init__(self, observations: Observations) -> None:
        self.obs = observations
        self.tier_slots = [
            [i for i, s in enumerate(observations.slots) if s.tier_index == k]
            for k in range(len(observations.tiers))
        ]
        self._patterns: dict[tuple[int, Setting], list[int]] = {}
        # a request's fate depends on the setting only through each tier's pattern
        self._walks: dict[tuple[int, tuple[int, ...]], Simulated] = {}

    def patterns(self, k: int, setting: Setting) -> list[int]:
        """Per record, the checks of tier `k`'s answer that pass under `setting` (a bit
        each, in chain order), or NO_ANSWER."""
        cuts = tuple(setting[i] for i in self.tier_slots[k])
        key = (k, cuts)
        if key not in self._patterns:
            self._patterns[key] = [_pattern(row[k], setting) for row in self.obs.rows]
        return self._patterns[key]

    def full(self) -> Ladder:
        return tuple(range(len(self.obs.tiers)))

    def _all_patterns(self, setting: Setting, ladder: Ladder | None) -> list[list[int] | None]:
        kept = set(self.full() if ladder is None else ladder)
        return [self.patterns(k, setting) if k in kept else None for k in range(len(self.obs.tiers))]

    def outcome(self, setting: Setting, r: int, ladder: Ladder | None = None) -> Simulated:
        """What the cascade does with record `r` under `setting` (on `ladder`, all by default)."""
        return self.outcomes(setting, [r], ladder)[0]

    def outcomes(
        self, setting: Setting, records: Sequence[int], ladder: Ladder | None = None
    ) -> list[Simulated]:
        """What the cascade does with each of `records` (the search's inner loop: kept lean)."""
        columns = [
            itertools.repeat(SKIPPED) if p is None else [p[r] for r in records]
            for p in self._all_patterns(setting, ladder)
        ]
        walks, out = self._walks, []
        for r, patterns in zip(records, zip(*columns)):  # noqa: B905 (repeat() is endless)
            done = walks.get((r, patterns))
            if done is None:
                done = walks[r, patterns] = self._drive(r, patterns)
            out.append(done)
        return out

    def run(
        self, setting: Setting, records: Sequence[int], ladder: Ladder | None = None
    ) -> tuple[int, float]:
        """(requests answered correctly, cost in USD as a float) on `records`: for the search."""
        done = self.outcomes(setting, records, ladder)
        return sum(d.correct for d in done), sum(d.cost_f for d in done)

    def run_exact(
        self, setting: Setting, records: Sequence[int], ladder: Ladder | None = None
    ) -> tuple[int, Decimal]:
        """(requests answered correctly, cost in USD, exact) on `records`."""
        done = self.outcomes(setting, records, ladder)
        return sum(d.correct for d in done), sum((d.cost for d in done), ZERO)

    def against_top(
        self, setting: Setting, records: Sequence[int], ladder: Ladder | None = None
    ) -> tuple[int, int, int]:
        """(correct, worse, better) on `records`: the requests the cascade answers correctly,
        those where the top tier alone is right and the cascade wrong, and the other way round."""
        top = len(self.obs.tiers) - 1
        correct = worse = better = 0
        for r, done in zip(records, self.outcomes(setting, records, ladder), strict=True):
            top_right = self.obs.rows[r][top].alone_correct
            correct += done.correct
            worse += top_right and not done.correct
            better += done.correct and not top_right
        return correct, worse, better

    def alone(self, k: int, records: Sequence[int]) -> tuple[int, Decimal]:
        """(correct, cost) of tier `k`'s primary model alone on `records`."""
        rows = self.obs.rows
        return (
            sum(rows[r][k].alone_correct for r in records),
            sum((rows[r][k].alone_cost for r in records), ZERO),
        )

    def _drive(self, r: int, patterns: tuple[int, ...]) -> Simulated:
        """Record `r` up the ladder, attempt by attempt, as the engine drives a request."""
        obs, row = self.obs, self.obs.rows[r]
        spent, attempts = ZERO, 0
        best: AnswerRank | None = None
        returned: int | None = None
        here: Position | None = START
        while here is not None:
            k = here.tier
            if patterns[k] == SKIPPED:  # dropped from the ladder: no call (never the top)
                here = Position(k + 1, 0)
                continue
            outcome = row[k]
            for cost in outcome.failed:
                if budget_exhausted(spent, obs.budget):
                    return self._done(r, returned, False, spent)
                spent, attempts = spent + cost, attempts + 1
            if not outcome.answered:
                last = Position(k, obs.models_per_tier[k] - 1)
                here = next_position(obs.models_per_tier, last, Outcome.ERROR)
                continue
            here = Position(k, outcome.model)
            answer = self._answer(outcome, patterns[k])
            reasks = 0
            while True:
                if budget_exhausted(spent, obs.budget):
                    return self._done(r, returned, False, spent)
                spent, attempts = spent + answer.cost, attempts + 1
                if answer.outcome is Outcome.ACCEPTED:
                    return self._done(r, k, True, spent)
                rank = answer_rank(outcome.finished, answer.passed, k, attempts - 1)
                if best is None or rank > best:
                    best, returned = rank, k
                if not should_reask(answer.outcome, reasks, obs.reasks[k]):
                    break
                reasks += 1
            here = next_position(obs.models_per_tier, here, answer.outcome)
        return self._done(r, returned, False, spent)

    def _answer(self, outcome: TierOutcome, pattern: int) -> _Answer:
        """The answer judged as the chain judges it: checks run in order, and the chain stops
        where the engine's stops."""
        passed: list[bool] = []
        cost = outcome.cost
        for i, check in enumerate(outcome.checks):
            ok = bool(pattern >> i & 1)
            passed.append(ok)
            cost += check.cost
            if not keep_checking(ok, stop_at_first_failure=self.obs.stop_at_first_failure):
                break
        return _Answer(judged(passed), sum(passed), cost)

    def _done(self, r: int, tier: int | None, verified: bool, spent: Decimal) -> Simulated:
        correct = tier is not None and self.obs.rows[r][tier].correct
        return Simulated(tier, verified, spent, correct, float(spent))


def _pattern(outcome: TierOutcome, setting: Setting) -> int:
    if not outcome.answered:
        return NO_ANSWER
    pattern = 0
    for i, check in enumerate(outcome.checks):
        if check.passed if check.slot is None else check.score >= setting[check.slot]:
            pattern |= 1 << i
    return pattern
