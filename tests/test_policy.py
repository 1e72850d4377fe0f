"""The pure rules of `cascade.core.policy` at their edges: which rejected answer is best, and
when a streamed answer can no longer be withdrawn."""

from __future__ import annotations

import pytest

from cascade.core.policy import UNFINISHED, StreamPolicy, must_finish, pick_best
from cascade.core.values import Attempt, Outcome, Verdict

TIERS = {"small": 0, "large": 1}


def answer(tier: str, *passed: bool, finished: bool = True) -> Attempt:
    verdicts = tuple(Verdict(f"check{i}", p, "") for i, p in enumerate(passed))
    if not finished:
        verdicts += (Verdict(UNFINISHED, False, "cut off"),)
    return Attempt(tier=tier, model=tier, outcome=Outcome.REJECTED, verdicts=verdicts, output="text")


def test_return_best_ranks_verifiers_passed_before_the_tier():
    assert pick_best([answer("small", True, True, False), answer("large", True, False, False)], TIERS) == 0
    assert (
        pick_best([answer("small", True, False), answer("large", False, True)], TIERS) == 1
    )  # a tie: the tier


def test_return_best_ranks_a_finished_answer_first_and_a_later_attempt_last():
    assert pick_best([answer("small", False), answer("large", True, True, finished=False)], TIERS) == 0
    assert pick_best([answer("small", True, False), answer("small", True, False)], TIERS) == 1


def test_return_best_never_picks_a_failed_call():
    failed = Attempt(tier="large", model="large", outcome=Outcome.ERROR, error="HTTP 500")
    assert pick_best([answer("small", False), failed], TIERS) == 0
    assert pick_best([failed], TIERS) is None


@pytest.mark.parametrize(
    "policy",
    [StreamPolicy("restart", threshold_tokens=20), StreamPolicy("restart", threshold_fraction=0.2)],
    ids=["tokens", "a fifth of max_tokens"],
)
def test_the_restart_threshold_is_reached_at_exactly_its_tokens(policy):
    assert policy.threshold(100) == 20
    assert must_finish(policy, shown_chars=80, shown_tokens=20, max_tokens=100)
    assert not must_finish(policy, shown_chars=76, shown_tokens=19, max_tokens=100)
