"""The false-accept estimate per tier and slice (pure): its states, its bound and the
number of audits its alarm needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cascade.core.binomial import binomial_lower_bound, binomial_upper_bound
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
        monitor.observe(groups_of("small", tags), agreed=tags["feature"] != "billing" or i < 300)
    assert monitor.state(("small", "feature=billing")) == "drift"
    assert monitor.state(("small", "feature=search")) == "ok"


def test_noise_before_certification_is_no_alarm_but_a_tier_plainly_bad_is():
    monitor = DriftMonitor(limit=0.05, confidence=0.95, window=500)
    for agreed in [False, *[True] * 70]:  # one early disagreement: the bound stays over 5 %
        monitor.observe([TIER], agreed)
    assert monitor.state(TIER) == "warming"
    bad = ("bad", "")
    raised = [change for _ in range(monitor.needed) for change in monitor.observe([bad], agreed=False)]
    assert monitor.state(bad) == "drift" and len(raised) == 1 and raised[0].estimate.audited == monitor.needed


@given(st.lists(st.booleans(), max_size=120), st.sampled_from([0.05, 0.1, 0.2]))
def test_the_state_follows_the_bounds_over_the_window(agreements, limit):
    monitor = DriftMonitor(limit=limit, confidence=0.9, window=40)
    state = "warming"
    for i, agreed in enumerate(agreements):
        monitor.observe([TIER], agreed)
        window = agreements[max(0, i - 39) : i + 1]
        n, k = len(window), window.count(False)
        upper, lower = binomial_upper_bound(k, n, 0.9), binomial_lower_bound(k, n, 0.9)
        # plainly over (on enough audits); certified; or between: an alarm stays up until certified
        if lower > limit and n >= min_audits(limit, 0.9):
            state = "drift"
        elif upper <= limit:
            state = "ok"
        elif state != "warming":
            state = "drift"
        assert monitor.state(TIER) == state, (i, n, k)
    assert monitor.estimate(TIER).disagreements == agreements[-40:].count(False)


def test_a_tag_with_endless_values_does_not_grow_the_monitor_without_bound(monkeypatch):
    import cascade.live.drift as drift

    monkeypatch.setattr(drift, "MAX_GROUPS", 50)
    monitor = DriftMonitor(limit=0.05, confidence=0.95, window=10)
    for i in range(200):
        monitor.observe(groups_of("small", {"user": f"u{i}"}), agreed=True)
    assert len(monitor.groups()) == 50 and monitor.untracked == 151
    assert monitor.estimate(TIER).audited == 10  # the tier itself is always counted
