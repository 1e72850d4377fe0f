"""Verifier scores read as probabilities: a monotone map from score to P(correct), fitted by
isotonic regression (pool-adjacent-violators), and the expected calibration error.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

BINS = 10  # of the expected calibration error
FOLDS = 5  # of the out-of-fold fit that measures the error after calibration


@dataclass(frozen=True)
class Isotonic:
    """A non-decreasing step function: P(correct) = `values[i]` for scores from `starts[i]`
    up to the next start (the first value below the first start)."""

    starts: tuple[float, ...]
    values: tuple[float, ...]

    def __call__(self, score: float) -> float:
        i = bisect.bisect_right(self.starts, score) - 1
        return self.values[max(i, 0)]

    def lowest_reaching(self, probability: float) -> float:
        """The lowest score mapped to at least `probability` (inf when none is)."""
        i = bisect.bisect_left(self.values, probability)
        return self.starts[i] if i < len(self.starts) else math.inf


def fit_isotonic(scores: Sequence[float], correct: Sequence[bool]) -> Isotonic:
    """The least-squares non-decreasing fit of `correct` on `scores` (ties pooled)."""
    if not scores:
        return Isotonic((0.0,), (0.5,))
    by_score: dict[float, list[float]] = {}
    for s, c in zip(scores, correct, strict=True):
        by_score.setdefault(s, []).append(float(c))
    blocks: list[list[float]] = []  # [start score, sum, count]
    for s in sorted(by_score):
        blocks.append([s, sum(by_score[s]), len(by_score[s])])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            _, total, count = blocks.pop()
            blocks[-1][1] += total
            blocks[-1][2] += count
    return Isotonic(tuple(b[0] for b in blocks), tuple(b[1] / b[2] for b in blocks))


def expected_calibration_error(probabilities: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean |accuracy - mean probability| over equal-width bins, weighted by their sizes."""
    bins: dict[int, tuple[float, float, int]] = {}
    for p, c in zip(probabilities, correct, strict=True):
        b = min(int(p * BINS), BINS - 1)
        total_p, total_c, count = bins.get(b, (0.0, 0.0, 0))
        bins[b] = (total_p + p, total_c + c, count + 1)
    n = len(probabilities)
    return sum(abs(tp - tc) for tp, tc, _ in bins.values()) / n if n else 0.0


def out_of_fold(scores: Sequence[float], correct: Sequence[bool], seed: int = 0) -> list[float]:
    """Each score's P(correct) from an isotonic fit on the other folds: calibrated values
    that were not fitted on the answer they are scored against."""
    order = list(range(len(scores)))
    random.Random(seed).shuffle(order)
    fold_of = {r: i % FOLDS for i, r in enumerate(order)}
    probabilities = [0.0] * len(scores)
    for fold in range(FOLDS):
        rest = [r for r in order if fold_of[r] != fold]
        fitted = fit_isotonic([scores[r] for r in rest], [correct[r] for r in rest])
        for r in order:
            if fold_of[r] == fold:
                probabilities[r] = fitted(scores[r])
    return probabilities


@dataclass(frozen=True)
class Reliability:
    """How well a verifier's scores read as P(correct) on a tier, before and after the map."""

    label: str
    answers: int
    accuracy: float
    ece_raw: float | None  # None: the scores are not on a 0-1 scale
    ece_calibrated: float  # out of fold


def reliability(label: str, scores: Sequence[float], correct: Sequence[bool]) -> Reliability:
    raw = None if any(not 0 <= s <= 1 for s in scores) else expected_calibration_error(scores, correct)
    calibrated = expected_calibration_error(out_of_fold(scores, correct), correct)
    accuracy = sum(correct) / len(correct) if correct else 0.0
    return Reliability(label, len(scores), accuracy, raw, calibrated)
