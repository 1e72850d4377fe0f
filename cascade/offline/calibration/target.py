"""What a calibration must reach: a quality target, and the binomial bound that holds it
with confidence on a validation split."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

from cascade.core.errors import ConfigError

TargetKind = Literal["accuracy", "match_top", "of_top"]


@dataclass(frozen=True)
class Target:
    """What the cascade must reach: an accuracy, the top tier's, or a share of it."""

    kind: TargetKind
    value: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value > 0):
            raise ConfigError(f"the target must be a positive number, not {self.value!r}")
        if self.kind == "accuracy" and self.value > 1:
            raise ConfigError(f"--target-accuracy is a fraction from 0 to 1, not {self.value:g}")

    def required(self, top_accuracy: float) -> float:
        """The accuracy the cascade must reach, given the top tier's on the same data."""
        return self.value if self.kind == "accuracy" else self.value * top_accuracy

    def describe(self) -> str:
        if self.kind == "accuracy":
            return f"accuracy >= {self.value:.1%}"
        if self.kind == "match_top":
            return "accuracy >= the top tier alone's"
        return f"accuracy >= {self.value:.1%} of the top tier alone's"


@functools.cache
def binomial_lower_bound(successes: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound of a success rate: the p at which `successes` or
    more out of `trials` has probability 1 - `confidence` (pure Python, in log space)."""
    if not 0 <= successes <= trials or trials < 1:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, not {successes}/{trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is a level between 0 and 1, not {confidence!r}")
    alpha = 1 - confidence
    if successes == 0:
        return 0.0
    if successes == trials:
        return float(alpha ** (1 / trials))
    log_comb = [math.log(math.comb(trials, i)) for i in range(successes, trials + 1)]

    def tail(p: float) -> float:  # P(X >= successes) for X ~ Binomial(trials, p)
        log_p, log_q = math.log(p), math.log1p(-p)
        terms = [c + i * log_p + (trials - i) * log_q for i, c in enumerate(log_comb, successes)]
        top = max(terms)
        return math.exp(top) * sum(math.exp(t - top) for t in terms)

    low, high = 0.0, successes / trials
    for _ in range(200):  # the tail grows with p: bisect
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if tail(middle) < alpha:
            low = middle
        else:
            high = middle
    return (low + high) / 2
