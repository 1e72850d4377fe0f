"""The false-accept estimate per tier and slice (pure): its states, its bound and the
number of audits its alarm needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cascade.core.binomial import binomial_upper_bound
from cascade.live.drift import DriftMonitor, groups_of, min_audits

TIER = ("small", "")


def test_a_tier_is_warming_until_the_limit_can_be_certified_then_ok():
    monitor = DriftMonitor(limit=0.05, confidence=0.95, window=500)
    needed = min_audits(0.05, 0.95)
    assert needed == 59  # (1 - 0.05) ** 59 < 0.05 <= (1 - 0.05) ** 58
    for _ in range(needed - 1):
        monitor.observe([TIER], agreed=True)
    assert monitor.state(TIER) == "warming"
    monitor.observe([TIER], agreed=True)
    assert monitor.state(TIER) == "ok" and monitor.estimate(TIER).upper <= 0.05


def test_the_alarm_comes_after_exactly_the_disagreements_it_predicts():
    monitor = DriftMonitor(limit=0.05, confidence=0.95, window=300)
    for _ in range(300):
        monitor.observe([TIER], agreed=True)
    predicted = monitor.audits_to_alarm(TIER)
    assert predicted is not None and predicted > 0
    changes = [monitor.observe([TIER], agreed=False) for _ in range(predicted)]
    assert all(not c for c in changes[:-1]) and changes[-1][0].new == "drift"


def test_the_window_keeps_a_long_good_run_from_hiding_a_change():
    short, long = (DriftMonitor(limit=0.05, confidence=0.95, window=200) for _ in range(2))
    for _ in range(200):
        short.observe([TIER], agreed=True)
    for _ in range(20_000):
        long.observe([TIER], agreed=True)
    assert long.audits_to_alarm(TIER) == short.audits_to_alarm(TIER)


def test_a_slice_alarms_on_its_own():
    monitor = DriftMonitor(limit=0.1, confidence=0.9, window=100)
    for i in range(400):
        tags = {"feature": "billing" if i % 4 == 0 else "search"}
        monitor.observe(groups_of("small", tags), agreed=tags["feature"] != "billing" or i < 200)
    assert monitor.state(("small", "feature=billing")) == "drift"
    assert monitor.state(("small", "feature=search")) == "ok"


@given(st.lists(st.booleans(), max_size=120), st.sampled_from([0.05, 0.1, 0.2]))
def test_the_state_is_what_the_bound_over_the_window_says(agreements, limit):
    monitor = DriftMonitor(limit=limit, confidence=0.9, window=40)
    for agreed in agreements:
        monitor.observe([TIER], agreed)
    window = agreements[-40:]
    n, k = len(window), window.count(False)
    if n == 0:
        assert monitor.state(TIER) == "warming"
        return
    upper = binomial_upper_bound(k, n, 0.9)
    expected = "ok" if upper <= limit else "drift" if n >= min_audits(limit, 0.9) else "warming"
    assert monitor.state(TIER) == expected and monitor.estimate(TIER).disagreements == k
