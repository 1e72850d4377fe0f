"""The token log-probability verifier."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import Cascade
from cascade.config import parse_config
from cascade.core.errors import ConfigError
from cascade.core.values import Candidate, Completion, Request, Usage, Verdict
from cascade.testing.server import Reply
from cascade_verifiers.logprob import MISSING_REASON, LogprobVerifier
from tests.conftest import loopback_tier


def candidate(logprobs: tuple[float, ...] | None, text: str = "Paris.") -> Candidate:
    return Candidate(
        request=Request.from_prompt("Capital of France?"),
        completion=Completion(text=text, model="m", usage=Usage(1, 1), logprobs=logprobs),
        tier="small",
    )


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")


def test_prepare_request_asks_for_logprobs():
    request = Request.from_prompt("q", system="s")
    sent = LogprobVerifier(threshold=-0.5).prepare_request(request)
    assert sent.logprobs is True and sent.system == "s" and sent.messages == request.messages


def test_mean_above_threshold_passes_with_probability_score():
    verdict = LogprobVerifier(threshold=-0.5)(candidate((-0.1, -0.3, -0.2)))
    assert verdict.passed
    assert verdict.reason == "mean token logprob -0.20 >= threshold -0.50"
    assert verdict.score == pytest.approx(math.exp(-0.2))


def test_mean_below_threshold_fails():
    verdict = LogprobVerifier(threshold=-0.5)(candidate((-0.1, -2.0, -0.3)))
    assert not verdict.passed
    assert verdict.reason == "mean token logprob -0.80 < threshold -0.50"
    assert verdict.score == pytest.approx(math.exp(-0.8))


def test_min_statistic_fails_on_one_unlikely_token_the_mean_would_pass():
    logprobs = (-0.01, -0.01, -0.01, -0.01, -1.2)
    assert LogprobVerifier(threshold=-0.5)(candidate(logprobs)).passed
    verdict = LogprobVerifier(threshold=-0.5, statistic="min")(candidate(logprobs))
    assert not verdict.passed
    assert verdict.reason == "min token logprob -1.20 < threshold -0.50"
    assert verdict.score == pytest.approx(math.exp(-1.2))


def test_min_statistic_passes_when_every_token_is_likely():
    verdict = LogprobVerifier(threshold=-0.5, statistic="min")(candidate((-0.1, -0.4)))
    assert verdict.passed and verdict.reason == "min token logprob -0.40 >= threshold -0.50"


@pytest.mark.parametrize("logprobs", [None, ()])
def test_missing_logprobs_fail_by_default(logprobs):
    verdict = LogprobVerifier(threshold=-0.5)(candidate(logprobs))
    assert not verdict.passed and verdict.reason == MISSING_REASON
    assert verdict.reason == "no token logprobs (the provider returned none)"


def test_missing_logprobs_pass_with_on_missing_pass():
    verdict = LogprobVerifier(threshold=-0.5, on_missing="pass")(candidate(None))
    assert verdict.passed and verdict.reason == MISSING_REASON and verdict.score is None


def test_impossible_token_scores_zero():
    verdict = LogprobVerifier(threshold=-0.5)(candidate((-0.1, -math.inf)))
    assert not verdict.passed and verdict.score == 0.0


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"threshold": 0.5}, "finite number <= 0"),
        ({"threshold": "low"}, "threshold must be a number"),
        ({"threshold": -0.5, "statistic": "median"}, "statistic must be one of mean, min"),
        ({"threshold": -0.5, "on_missing": "ignore"}, "on_missing must be one of fail, pass"),
    ],
)
def test_bad_settings_are_config_errors(fake_server, settings_, message):
    config = parse_config(
        {
            "tiers": [loopback_tier(fake_server, "t0", "gpt-4o-mini")],
            "verifiers": [{"type": "logprob", **settings_}],
        }
    )
    with pytest.raises(ConfigError, match=message):
        Cascade.from_config(config)


def test_missing_threshold_is_a_config_error(fake_server):
    config = parse_config(
        {"tiers": [loopback_tier(fake_server, "t0", "gpt-4o-mini")], "verifiers": [{"type": "logprob"}]}
    )
    with pytest.raises(ConfigError, match="threshold"):
        Cascade.from_config(config)


# -- end to end over the OpenAI wire ----------------------------------------------------------


def test_uncertain_answer_escalates_using_the_returned_logprobs(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("Lyon, I think.", logprobs=[-0.1, -2.0, -0.3])])
    fake_server.script("gpt-4o", [Reply.text("Paris.", logprobs=[-0.05, -0.15])])
    config = parse_config(
        {
            "tiers": [
                loopback_tier(fake_server, "small", "gpt-4o-mini"),
                loopback_tier(fake_server, "large", "gpt-4o"),
            ],
            "verifiers": [{"type": "logprob", "threshold": -0.5}],
        }
    )
    with Cascade.from_config(config) as c:
        result = c.run("Capital of France?")
    assert all(r.body.get("logprobs") is True for r in fake_server.requests)
    assert result.verified and result.tier == "large" and result.output == "Paris."
    small, large = (a.verdicts[0] for a in result.attempts)
    assert small.reason == "mean token logprob -0.80 < threshold -0.50"
    assert large.reason == "mean token logprob -0.10 >= threshold -0.50"
    assert large.score == pytest.approx(math.exp(-0.1))


def test_provider_without_logprobs_follows_on_missing(fake_server):
    anthropic_tier = loopback_tier(fake_server, "claude", "claude-opus-4-8", wire="anthropic")
    fake_server.script("claude-opus-4-8", [Reply.text("Paris.", logprobs=[-0.1])])
    config = parse_config(
        {
            "tiers": [anthropic_tier],
            "verifiers": [{"type": "logprob", "threshold": -0.5, "on_missing": "pass"}],
        }
    )
    with Cascade.from_config(config) as c:
        result = c.run("Capital of France?")
    assert result.verified and result.output == "Paris."
    assert result.attempts[0].verdicts[0].reason == MISSING_REASON


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.lists(st.floats(allow_nan=True, allow_infinity=True)).map(tuple)),
    st.text(),
    st.sampled_from(["mean", "min"]),
)
def test_verifier_never_raises_and_scores_a_probability(logprobs, text, statistic):
    verdict = LogprobVerifier(threshold=-0.5, statistic=statistic)(candidate(logprobs, text))
    assert isinstance(verdict, Verdict)
    assert verdict.score is None or 0 <= verdict.score <= 1
