"""The calibration's guarantee: its p-values are valid, and the setting it chooses with a
confidence level keeps its loss within the target on unseen data at least that often."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator

import pytest

from cascade.core.binomial import (
    accuracy_p_value,
    binomial_cdf,
    loss_interval,
    loss_p_value,
    requests_needed,
)
from cascade.offline.calibration import Target, calibrate
from cascade.offline.calibration.reliability import expected_calibration_error, fit_isotonic, out_of_fold
from cascade.offline.calibration.simulate import Ladder, Setting
from tests.synthetic_ladders import Ladder3, Request

RISK = 0.1
MAX_LOSS = 0.01


def multinomial(n: int, p_worse: float, p_better: float) -> list[tuple[int, int, float]]:
    """Every (worse, better) count out of `n` requests, with its probability."""
    p_same = 1 - p_worse - p_better
    out = []
    for a in range(n + 1):
        for b in range(n - a + 1):
            log = (
                math.lgamma(n + 1)
                - math.lgamma(a + 1)
                - math.lgamma(b + 1)
                - math.lgamma(n - a - b + 1)
                + (a * math.log(p_worse) if a else 0.0)
                + (b * math.log(p_better) if b else 0.0)
                + ((n - a - b) * math.log(p_same) if n - a - b else 0.0)
            )
            out.append((a, b, math.exp(log)))
    return out


@pytest.mark.parametrize("max_loss", [0.0, 0.05, 0.1])
def test_the_loss_p_value_is_valid_at_every_null_it_is_tested_on(max_loss):
    """Exactly, by enumeration: where the loss is above max_loss, P(p <= alpha) <= alpha."""
    n, nuisance = 40, 0.01
    worst = 0.0
    for discordance in (0.12, 0.25, 0.5, 0.9):
        p_worse = (discordance + max_loss) / 2 + 1e-9
        p_better = discordance - p_worse
        if p_better <= 0:
            continue
        counts = multinomial(n, p_worse, p_better)
        for alpha in (0.05, 0.1, 0.2):
            rejected = sum(p for a, b, p in counts if loss_p_value(a, b, n, max_loss, nuisance) <= alpha)
            worst = max(worst, rejected - alpha)
    assert worst <= 1e-9
    # and it has power where the loss is well below max_loss
    counts = multinomial(n, 0.02, 0.3)
    assert sum(p for a, b, p in counts if loss_p_value(a, b, n, max_loss, nuisance) <= 0.1) > 0.5


def test_exact_tails_and_intervals_match_hand_values():
    assert binomial_cdf(3, 10, 0.5) == pytest.approx(176 / 1024)
    assert binomial_cdf(0, 5, 0.2) == pytest.approx(0.8**5)
    assert accuracy_p_value(10, 10, 0.8) == pytest.approx(0.8**10)
    assert loss_p_value(0, 0, 1000, MAX_LOSS, 0.01) == pytest.approx(0.01)  # no discordance at all
    low, high = loss_interval(10, 30, 400, 0.95)
    assert low < (10 - 30) / 400 < high
    assert loss_interval(5, 60, 400, 0.95)[1] < 0
    even, better = (requests_needed(w, b, MAX_LOSS, RISK, 0.01) for w, b in ((0.05, 0.05), (0.03, 0.06)))
    assert even is not None and better is not None and even > better
    assert requests_needed(0.06, 0.05, MAX_LOSS, RISK, 0.01) is None  # observed loss above the target
    assert requests_needed(0.3, 0.2905, MAX_LOSS, RISK, 0.01) == math.inf  # beyond a million


def test_isotonic_fit_is_monotone_and_calibrates_a_distorted_score():
    rng = random.Random(3)
    truth = [rng.random() for _ in range(3000)]
    correct = [rng.random() < t for t in truth]
    distorted = [t**3 for t in truth]  # ranks kept, probabilities wrong
    fitted = fit_isotonic(distorted, correct)
    assert list(fitted.values) == sorted(fitted.values)
    before = expected_calibration_error(distorted, correct)
    after = expected_calibration_error(out_of_fold(distorted, correct), correct)
    assert before > 0.15 and after < 0.05
    assert fitted.lowest_reaching(2.0) == math.inf
    assert fitted(fitted.lowest_reaching(0.5)) >= 0.5


@pytest.fixture(scope="module")
def ladder_and_population() -> tuple[Ladder3, list[Request]]:
    ladder = Ladder3()
    return ladder, ladder.population(20_000, seed=1)


def draws(
    ladder: Ladder3, population: list[Request], count: int, size: int, confidence: float | None
) -> Iterator[tuple[float, float, Ladder]]:
    """The true (loss, cost share) of the setting chosen on each of `count` draws, and its ladder."""
    truth: dict[tuple[Ladder, Setting], tuple[float, float]] = {}
    for d in range(count):
        rng = random.Random(1000 + d)
        sample = [population[rng.randrange(len(population))] for _ in range(size)]
        found = calibrate(
            ladder.observations(sample), Target("max_loss", MAX_LOSS), confidence=confidence, seed=d
        )
        chosen = found.chosen
        assert chosen is not None  # a loss target is never refused
        key = (chosen.ladder, chosen.setting)
        if key not in truth:
            truth[key] = ladder.true_figures(population, *key)
        yield (*truth[key], chosen.ladder)


def test_the_chosen_setting_keeps_its_loss_within_the_target_on_unseen_data(ladder_and_population):
    """On repeated draws from a known population, the setting chosen with 90 % confidence has
    a true loss above the target in at most 10 % of draws (with room for the Monte Carlo
    error of 150 draws), while often being cheaper than the top tier alone."""
    ladder, population = ladder_and_population
    results = list(draws(ladder, population, 150, 400, 1 - RISK))
    violations = sum(loss > MAX_LOSS for loss, _, _ in results) / len(results)
    assert violations <= RISK + 2.5 * math.sqrt(RISK * (1 - RISK) / len(results))
    assert sum(len(kept) > 1 for _, _, kept in results) >= 0.2 * len(results)
    assert sum(cost for _, cost, _ in results) / len(results) < 0.97


def test_the_same_harness_catches_a_point_estimate_that_overfits(ladder_and_population):
    """Without a confidence level, the cheapest setting within the target on the data misses
    it on unseen data most of the time: the check above can fail."""
    ladder, population = ladder_and_population
    results = list(draws(ladder, population, 20, 400, None))
    assert sum(loss > MAX_LOSS for loss, _, _ in results) / len(results) > 0.3


def test_every_sub_ladder_is_searched_and_match_top_is_always_feasible():
    ladder = Ladder3(signal=0.0)  # scores say nothing: no cheaper setting matches the top tier
    sample = ladder.population(300, seed=5)
    found = calibrate(ladder.observations(sample), Target("match_top"))
    assert set(found.ladders) == {(0, 1, 2), (0, 2), (1, 2), (2,)}
    assert {p.ladder for p in found.explored} == set(found.ladders)
    assert found.chosen is not None
    correct, _ = found.on_train(found.chosen)
    top_correct, _ = found.simulator.alone(2, found.train)
    assert correct >= top_correct
    for kept in itertools.combinations((0, 1), 1):  # each pairwise cascade is on the search
        assert any(p.ladder == (*kept, 2) for p in found.explored)
