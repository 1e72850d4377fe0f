"""Exact binomial tails, and the p-values and intervals that calibration's guarantee rests on
(pure Python, in log space; see docs/calibration.md for the argument).

The paired loss of a cascade against the top tier alone, on one request, is +1 when the top
tier is right and the cascade wrong ("worse"), -1 when the cascade is right and the top tier
wrong ("better"), 0 otherwise; its mean is p_worse - p_better.
"""

from __future__ import annotations

import functools
import math
import statistics


@functools.lru_cache(maxsize=65536)
def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    # terms beyond 40 standard deviations of the mean are below e**-800: left out
    mean, width = n * p, 40 * math.sqrt(n * p * (1 - p)) + 20
    low, high = max(0, math.floor(mean - width)), min(n, math.ceil(mean + width))
    if k < low:
        return 0.0
    if k >= high:
        return 1.0
    if k - low <= high - k:
        return min(1.0, _sum_terms(n, p, low, k))
    return max(0.0, 1.0 - _sum_terms(n, p, k + 1, high))


def _sum_terms(n: int, p: float, first: int, last: int) -> float:
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [_log_comb(n, i) + i * log_p + (n - i) * log_q for i in range(first, last + 1)]
    top = max(terms)
    return math.exp(top) * sum(math.exp(t - top) for t in terms)


def _log_comb(n: int, i: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)


@functools.lru_cache(maxsize=65536)
def binomial_lower_bound(successes: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound of a success rate: the p at which `successes` or
    more out of `trials` has probability 1 - `confidence`."""
    if not 0 <= successes <= trials or trials < 1:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, not {successes}/{trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is a level between 0 and 1, not {confidence!r}")
    alpha = 1 - confidence
    if successes == 0:
        return 0.0
    if successes == trials:
        return float(alpha ** (1 / trials))
    low, high = 0.0, successes / trials
    for _ in range(100):  # P(X >= successes) grows with p: bisect
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if 1 - binomial_cdf(successes - 1, trials, middle) < alpha:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def binomial_upper_bound(successes: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound of a success rate."""
    return 1.0 - binomial_lower_bound(trials - successes, trials, confidence)


def accuracy_p_value(correct: int, n: int, target: float) -> float:
    """Exact p-value of "the accuracy is below `target`", from `correct` out of `n`."""
    return 1.0 - binomial_cdf(correct - 1, n, target)


def loss_p_value(worse: int, better: int, n: int, max_loss: float, nuisance: float) -> float:
    """A valid p-value of "the paired loss exceeds `max_loss`" (>= 0), from `worse` and
    `better` counts out of `n` requests.

    Given the m = worse + better discordant requests, `worse` is Binomial(m, q) with
    q = p_worse / d, d = p_worse + p_better; the loss exceeds max_loss only if
    q > (1 + max_loss / d) / 2. That bound on q falls as d grows, so it is taken at d's
    Clopper-Pearson upper bound at level 1 - `nuisance`, and `nuisance` is added to the
    p-value (Berger and Boos, 1994). With max_loss 0 it is the exact one-sided McNemar test
    and needs no such bound.
    """
    if max_loss < 0:
        raise ValueError(f"max_loss must be >= 0, not {max_loss!r}")
    m = worse + better
    if max_loss == 0:
        return binomial_cdf(worse, m, 0.5)
    d_up = binomial_upper_bound(m, n, 1 - nuisance)
    if d_up <= max_loss:  # no loss above max_loss fits the discordance seen
        return nuisance
    q0 = (1 + max_loss / d_up) / 2
    return min(1.0, nuisance + binomial_cdf(worse, m, q0))


def loss_interval(worse: int, better: int, n: int, confidence: float) -> tuple[float, float]:
    """A conservative two-sided interval of the paired loss: each discordant rate's
    Clopper-Pearson bounds at (1 - confidence) / 4."""
    level = 1 - (1 - confidence) / 4
    return (
        binomial_lower_bound(worse, n, level) - binomial_upper_bound(better, n, level),
        binomial_upper_bound(worse, n, level) - binomial_lower_bound(better, n, level),
    )


def accuracy_interval(correct: int, n: int, confidence: float) -> tuple[float, float]:
    """The two-sided Clopper-Pearson interval of an accuracy."""
    level = 1 - (1 - confidence) / 2
    return binomial_lower_bound(correct, n, level), binomial_upper_bound(correct, n, level)


REQUESTS_CAP = 1_000_000  # beyond this, "more than a million" is answer enough


def requests_needed(
    worse_rate: float, better_rate: float, max_loss: float, risk: float, nuisance: float
) -> float | None:
    """About how many requests certify a loss <= max_loss at level `risk` if the discordant
    rates are what was observed (the counts at those rates): None when the observed loss is
    already at or above max_loss (no amount of data would do), inf beyond REQUESTS_CAP."""
    margin = max_loss - (worse_rate - better_rate)
    if margin <= 1e-12:
        return None

    def certifies(n: int) -> bool:
        p = loss_p_value(round(n * worse_rate), round(n * better_rate), n, max_loss, nuisance)
        return p <= risk

    # the normal approximation says where to look; the exact test decides
    z = statistics.NormalDist().inv_cdf(1 - (risk - nuisance))
    guess = max(8, math.ceil(z * z * max(worse_rate + better_rate, max_loss) / margin**2))
    if guess > 4 * REQUESTS_CAP:
        return math.inf
    low, high = guess // 2, guess
    while not certifies(high):
        low, high = high, high * 2
        if high > REQUESTS_CAP:
            return math.inf
    while low > 8 and certifies(low):
        low, high = low // 2, low
    while high - low > max(1, low // 100):  # to about 1 %
        middle = (low + high) // 2
        low, high = (low, middle) if certifies(middle) else (middle, high)
    return high
