"""The tier-by-tier loop on in-process scripted providers."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import structlog

from cascade import (
    Candidate,
    Cascade,
    ExhaustedError,
    Outcome,
    PermanentProviderError,
    TransientProviderError,
    Verdict,
)
from cascade_verifiers.hedging import HedgingVerifier
from tests.conftest import DEAR, scripted, scripted_tier


def rejects_bad(candidate: Candidate) -> Verdict:
    ok = "bad" not in candidate.text
    return Verdict("no_bad", ok, "fine" if ok else "contains 'bad'")


def outcomes(result) -> list[tuple[str, str]]:
    return [(a.tier, str(a.outcome)) for a in result.attempts]


def test_accepted_answer_on_first_tier_stops_there():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["good"])), scripted_tier("large", ("l", []))], [rejects_bad]
    )
    result = cascade.run("q")
    assert result.output == "good" and result.verified and result.tier == "small"
    assert outcomes(result) == [("small", "accepted")]


def test_rejected_answer_escalates_and_both_attempts_are_billed():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad"])), scripted_tier("large", ("l", ["good"]), price=DEAR)],
        [rejects_bad],
    )
    result = cascade.run("question")
    assert outcomes(result) == [("small", "rejected"), ("large", "accepted")]
    small, large = result.attempts
    assert small.cost_usd > 0 and large.cost_usd > 0
    assert result.cost.total_usd == small.cost_usd + large.cost_usd
    assert result.cost.wasted_usd == small.cost_usd
    assert small.verdicts[0].reason == "contains 'bad'"


def test_baseline_is_the_top_tier_attempt_when_there_was_one():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad"])), scripted_tier("large", ("l", ["good"]), price=DEAR)],
        [rejects_bad],
    )
    result = cascade.run("question")
    assert result.cost.baseline_usd == result.attempts[1].cost_usd
    assert result.cost.saved_usd == -result.attempts[0].cost_usd  # escalation costs extra


def test_baseline_prices_the_answer_at_top_tier_rates_when_top_tier_unused():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["good answer"])), scripted_tier("large", ("l", []), price=DEAR)]
    )
    result = cascade.run("question")
    usage = result.attempts[0].usage
    assert result.cost.baseline_usd == DEAR.cost(usage)
    assert result.cost.saved_usd == DEAR.cost(usage) - result.attempts[0].cost_usd > 0


def test_transient_error_is_retried_on_the_same_model():
    cascade = Cascade([scripted_tier("small", ("s", [TransientProviderError("HTTP 500"), "good"]))])
    result = cascade.run("q")
    assert outcomes(result) == [("small", "error"), ("small", "accepted")]
    assert [a.retry for a in result.attempts] == [0, 1]


def test_permanent_error_is_not_retried_and_falls_through():
    cascade = Cascade(
        [
            scripted_tier("small", ("s", [PermanentProviderError("HTTP 401"), "never used"])),
            scripted_tier("large", ("l", ["good"])),
        ]
    )
    result = cascade.run("q")
    assert outcomes(result) == [("small", "error"), ("large", "accepted")]
    assert result.attempts[0].error == "HTTP 401"


def test_alternate_is_tried_when_the_primary_fails_but_not_when_it_is_rejected():
    failing = scripted_tier("small", ("a", [PermanentProviderError("down")]), ("b", ["good"]))
    assert [a.model for a in Cascade([failing]).run("q").attempts] == ["a", "b"]

    rejected = scripted_tier("small", ("a", ["bad"]), ("b", ["good"]))
    cascade = Cascade([rejected, scripted_tier("large", ("l", ["good"]))], [rejects_bad])
    assert [a.model for a in cascade.run("q").attempts] == ["a", "l"]


def test_exhausted_return_best_gives_unverified_answer():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad 1"])), scripted_tier("large", ("l", ["bad 2"]))],
        [rejects_bad],
        on_exhausted="return_best",
    )
    result = cascade.run("q")
    assert not result.verified and result.output == "bad 2" and result.tier == "large"
    assert result.stop_reason == "exhausted"


def test_return_best_prefers_more_checks_passed_to_a_higher_tier():
    def short(candidate: Candidate) -> Verdict:
        return Verdict("short", len(candidate.text) < 8, "length")

    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad 1"])), scripted_tier("large", ("l", ["a bad answer"]))],
        [rejects_bad, short],
        stop_at_first_failure=False,
    )
    result = cascade.run("q")  # small passed one check of two, large none
    assert not result.verified and result.tier == "small" and result.output == "bad 1"


def test_exhausted_raise_carries_every_attempt():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad 1"])), scripted_tier("large", ("l", ["bad 2"]))],
        [rejects_bad],
        on_exhausted="raise",
    )
    with pytest.raises(ExhaustedError) as info:
        cascade.run("q")
    assert [a.output for a in info.value.result.attempts] == ["bad 1", "bad 2"]
    assert "contains 'bad'" in str(info.value)


def test_every_tier_failing_raises_even_with_return_best():
    cascade = Cascade(
        [
            scripted_tier("small", ("s", [PermanentProviderError("HTTP 403: no")])),
            scripted_tier("large", ("l", [PermanentProviderError("HTTP 404: gone")])),
        ]
    )
    with pytest.raises(ExhaustedError, match="every tier failed") as info:
        cascade.run("q")
    assert "HTTP 403" in str(info.value) and "HTTP 404" in str(info.value)
    assert info.value.result.output is None


def test_budget_stops_escalation():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad " * 100])), scripted_tier("large", ("l", ["good"]))],
        [rejects_bad],
        max_cost_usd=Decimal("0.0000001"),
    )
    result = cascade.run("q")
    assert result.stop_reason == "budget" and not result.verified
    assert [a.tier for a in result.attempts] == ["small"]


def test_a_verifier_that_raises_fails_the_check_without_crashing():
    def broken(candidate: Candidate) -> Verdict:
        raise RuntimeError("boom")

    cascade = Cascade(
        [scripted_tier("small", ("s", ["x"])), scripted_tier("large", ("l", ["y"]))],
        [broken],
        on_exhausted="return_best",
    )
    result = cascade.run("q")
    assert result.attempts[0].verdicts[0].reason == "verifier raised RuntimeError: boom"
    assert not result.verified


def test_async_and_bool_verifiers_work():
    async def long_enough(candidate: Candidate) -> bool:
        await asyncio.sleep(0)
        return len(candidate.text) > 3

    cascade = Cascade(
        [scripted_tier("small", ("s", ["no"])), scripted_tier("large", ("l", ["yes indeed"]))], [long_enough]
    )
    result = cascade.run("q")
    assert outcomes(result) == [("small", "rejected"), ("large", "accepted")]
    assert result.attempts[0].verdicts[0].verifier == "long_enough"


def test_chain_stops_at_first_failure():
    calls: list[str] = []

    def first(c: Candidate) -> bool:
        calls.append("first")
        return False

    def second(c: Candidate) -> bool:
        calls.append("second")
        return True

    Cascade([scripted_tier("small", ("s", ["x"]))], [first, second]).run("q")
    assert calls == ["first"]


def test_hedged_answer_escalates_with_the_phrases_in_the_reason():
    cascade = Cascade(
        [
            scripted_tier("small", ("s", ["I'm not sure, but it may be 42."])),
            scripted_tier("large", ("l", ["42"])),
        ],
        [HedgingVerifier()],
    )
    result = cascade.run("q")
    assert result.tier == "large"
    assert "i'm not sure" in result.attempts[0].verdicts[0].reason


def test_arun_works_inside_a_running_loop():
    cascade = Cascade([scripted_tier("small", ("s", ["good"]))])
    result = asyncio.run(cascade.arun("q"))
    assert result.output == "good"


def test_result_json_has_the_documented_shape():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad"])), scripted_tier("large", ("l", ["good"]))], [rejects_bad]
    )
    data = cascade.run("q").to_dict()
    assert {"output", "verified", "tier", "model", "attempts", "cost"} <= set(data)
    assert {"total_usd", "wasted_usd", "verification_usd", "baseline_usd", "saved_usd"} <= set(data["cost"])
    attempt_keys = {
        "tier",
        "model",
        "outcome",
        "verdicts",
        "input_tokens",
        "output_tokens",
        "usage_estimated",
        "latency_s",
        "cost_usd",
        "error",
    }
    assert all(attempt_keys <= set(a) for a in data["attempts"])
    assert set(data["attempts"][0]["verdicts"][0]) >= {"verifier", "passed", "score", "reason"}
    assert data["attempts"][0]["outcome"] == Outcome.REJECTED


def test_attempts_carry_the_configured_model_name_not_the_served_alias():
    from cascade import Completion, Usage

    served = Completion("good", model="l-2024-08-06", usage=Usage(10, 2))
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad"])), scripted_tier("large", ("l", [served]), price=DEAR)],
        [rejects_bad],
    )
    result = cascade.run("q")
    assert [a.model for a in result.attempts] == ["s", "l"]
    assert result.cost.baseline_usd == DEAR.cost(Usage(10, 2))  # the top tier's own attempt


def test_budget_is_checked_between_retries():
    from cascade import ProviderTimeout

    timeouts = [ProviderTimeout("timeout")] * 3
    cascade = Cascade(
        [scripted_tier("small", ("s", timeouts), price=DEAR), scripted_tier("large", ("l", ["good"]))],
        max_cost_usd=Decimal("0.000001"),
    )
    with pytest.raises(ExhaustedError, match="budget") as info:
        cascade.run("a prompt long enough to cost something at these prices")
    result = info.value.result
    assert result.stop_reason == "budget" and len(result.attempts) == 1
    assert result.attempts[0].cost_usd > 0 and result.attempts[0].usage.estimated


def test_unexpected_provider_exception_is_an_error_attempt_and_logs_no_key(monkeypatch, capsys):
    from cascade.core.redaction import read_key
    from cascade.logs import configure_logging

    monkeypatch.setenv("MY_KEY", "verysecretvalue-123")
    key = read_key("MY_KEY")
    configure_logging("json", "info")
    try:
        boom = RuntimeError({"headers": {"Authorization": f"Bearer {key}"}})
        cascade = Cascade([scripted_tier("small", ("s", [boom])), scripted_tier("large", ("l", ["good"]))])
        result = cascade.run("q")
    finally:
        structlog.reset_defaults()
    assert result.output == "good"
    assert result.attempts[0].error is not None
    assert result.attempts[0].error.startswith("unexpected RuntimeError")
    assert "verysecretvalue" not in result.attempts[0].error
    captured = capsys.readouterr()
    assert "provider_raised_unexpectedly" in captured.err
    assert "verysecretvalue" not in captured.err + captured.out


def test_reask_feeds_the_reason_back_and_bills_each_try():
    small = scripted_tier("small", ("s", ["bad one", "good now"]))
    cascade = Cascade([small, scripted_tier("large", ("l", ["never"]))], [rejects_bad], reask=1)
    result = cascade.run("question")
    assert [(a.tier, str(a.outcome), a.reask) for a in result.attempts] == [
        ("small", "rejected", 0),
        ("small", "accepted", 1),
    ]
    assert all(a.cost_usd > 0 for a in result.attempts)
    second = scripted(small.primary.provider).requests[1]
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]
    assert second.messages[1].content == "bad one"
    assert "contains 'bad'" in second.messages[2].content


def test_reask_limit_then_escalates():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad", "bad again"])), scripted_tier("large", ("l", ["good"]))],
        [rejects_bad],
        reask={"small": 1},
    )
    result = cascade.run("q")
    assert [(a.tier, a.reask) for a in result.attempts] == [("small", 0), ("small", 1), ("large", 0)]


def test_per_tier_chains_replace_the_default():
    always_fail = lambda c: False  # noqa: E731
    cascade = Cascade(
        [scripted_tier("small", ("s", ["x"])), scripted_tier("large", ("l", ["y"]))],
        [always_fail],
        chains={"large": ()},
    )
    result = cascade.run("q")
    assert [str(a.outcome) for a in result.attempts] == ["rejected", "accepted"]


def test_run_all_verifiers_records_every_verdict():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad"]))],
        [rejects_bad, lambda c: True],
        stop_at_first_failure=False,
    )
    result = cascade.run("q")
    assert len(result.attempts[0].verdicts) == 2


def test_run_works_when_called_from_inside_a_running_loop():
    cascade = Cascade([scripted_tier("small", ("s", ["good"]))])

    async def caller():  # e.g. a notebook cell: a loop is running, and sync code calls run()
        return cascade.run("q")

    assert asyncio.run(caller()).output == "good"


def test_a_raising_hook_is_skipped_not_fatal():
    class BrokenHooks:
        name = "broken_hooks"

        def prepare_request(self, request):
            raise RuntimeError("prepare broke")

        def clean_output(self, text):
            raise RuntimeError("clean broke")

        def __call__(self, candidate):
            return True

    result = Cascade([scripted_tier("small", ("s", ["good"]))], [BrokenHooks()]).run("q")
    assert result.output == "good" and result.verified


def test_reask_prompt_may_hold_other_braces():
    cascade = Cascade(
        [scripted_tier("small", ("s", ["bad", "good"]))],
        [rejects_bad],
        reask=1,
        reask_prompt='Fix this: {reasons}. Reply like {"answer": ...} or {0}.',
    )
    result = cascade.run("q")
    assert result.output == "good"
    feedback = scripted(cascade.tiers[0].primary.provider).requests[1].messages[-1].content
    assert feedback == "Fix this: no_bad: contains 'bad'. Reply like {\"answer\": ...} or {0}."


def test_any_and_all_combine_at_run_time():
    from decimal import Decimal

    from cascade.verification.chain import AllOf, AnyOf

    def costly(ok: bool, name: str):
        def check(candidate):
            return Verdict(name, ok, name, score=0.5 if ok else 0.1, cost_usd=Decimal("0.001"))

        check.__name__ = name
        return check

    result = Cascade(
        [scripted_tier("small", ("s", ["x"])), scripted_tier("large", ("l", ["y"]))],
        [AnyOf([costly(False, "a"), costly(True, "b")]), AllOf([costly(True, "c"), costly(False, "d")])],
    ).run("q")
    any_verdict, all_verdict = result.attempts[0].verdicts
    assert any_verdict.passed and not all_verdict.passed
    assert any_verdict.cost_usd == all_verdict.cost_usd == Decimal("0.002")
    assert "a: fail" in any_verdict.reason and "d: fail" in all_verdict.reason
    assert result.cost.verification_usd == Decimal("0.008")  # both tiers' checks, each paid
