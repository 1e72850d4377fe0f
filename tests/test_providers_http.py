"""Both adapters through the real SDKs over loopback HTTP, against the fake provider."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from cascade import Cascade, ExhaustedError, Outcome
from cascade.config import parse_config
from cascade.core.tokens import count_tokens
from cascade.testing.server import Reply
from tests.conftest import loopback_url, sdk_client

FAST = {"max_attempts": 3, "initial_wait_s": 0, "max_wait_s": 5}


def two_tier(server, **overrides) -> Cascade:
    small = {
        "name": "small",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": server.openai_base_url,
        "retry": FAST,
        "timeout_s": 5,
    }
    large = {
        "name": "large",
        "provider": "anthropic",
        "model": "claude-opus-4-8",
        "base_url": server.anthropic_base_url,
        "retry": FAST,
        "timeout_s": 5,
    }
    small.update(overrides.pop("small", {}))
    large.update(overrides.pop("large", {}))
    config = parse_config({"tiers": [small, large], "verifiers": [{"type": "hedging"}], **overrides})
    return Cascade.from_config(config)


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-SECRET123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-SECRET456")


def test_hedged_openai_answer_escalates_to_anthropic_with_both_billed(fake_server):
    fake_server.script(
        "gpt-4o-mini", [Reply.text("I'm not sure, maybe 41?", input_tokens=20, output_tokens=8)]
    )
    fake_server.script("claude-opus-4-8", [Reply.text("It is 42.", input_tokens=22, output_tokens=5)])
    with two_tier(fake_server) as cascade:
        result = cascade.run("What is 6 times 7?", system="Be brief.")
    assert result.output == "It is 42." and result.verified and result.tier == "large"
    small, large = result.attempts
    assert (small.outcome, large.outcome) == (Outcome.REJECTED, Outcome.ACCEPTED)
    assert (small.usage.input_tokens, small.usage.output_tokens) == (20, 8)
    assert (large.usage.input_tokens, large.usage.output_tokens) == (22, 5)
    assert not small.usage.estimated and not large.usage.estimated
    # gpt-4o-mini 0.15/0.60 and claude-opus-4-8 5/25 per Mtok, from genai-prices
    assert small.cost_usd == (20 * Decimal("0.15") + 8 * Decimal("0.60")) / 10**6
    assert large.cost_usd == Decimal(22 * 5 + 5 * 25) / 10**6
    assert result.cost.total_usd == small.cost_usd + large.cost_usd
    # the SDKs sent what the providers expect
    openai_req, anthropic_req = fake_server.requests
    assert openai_req.wire == "openai" and anthropic_req.wire == "anthropic"
    assert openai_req.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert anthropic_req.body["system"] == "Be brief." and anthropic_req.body["max_tokens"] > 0
    assert openai_req.headers["authorization"] == "Bearer sk-test-openai-SECRET123"
    assert "sk-ant-test-SECRET456" in (
        anthropic_req.headers.get("x-api-key", "") + anthropic_req.headers.get("authorization", "")
    )


def test_500_then_success_is_retried_on_the_same_tier(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(500), Reply.text("Fine answer.")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert [(a.tier, a.outcome) for a in result.attempts] == [
        ("small", Outcome.ERROR),
        ("small", Outcome.ACCEPTED),
    ]
    assert result.attempts[0].error is not None
    assert "HTTP 500" in result.attempts[0].error
    assert len(fake_server.requests_for("claude-opus-4-8")) == 0


def test_429_retry_after_is_honoured(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(429, retry_after=1), Reply.text("ok then")])
    started = time.monotonic()
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert time.monotonic() - started >= 0.9
    assert result.attempts[0].error is not None
    assert result.output == "ok then" and result.attempts[0].error.startswith("HTTP 429")


def test_retry_after_longer_than_max_wait_moves_on_at_once(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(429, retry_after=60)])
    fake_server.script("claude-opus-4-8", [Reply.text("from the top")])
    started = time.monotonic()
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert time.monotonic() - started < 5
    assert result.tier == "large" and len(fake_server.requests_for("gpt-4o-mini")) == 1


def test_anthropic_529_overloaded_is_retried(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(400, message="bad request")])
    fake_server.script("claude-opus-4-8", [Reply.status(529), Reply.text("done")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert [a.outcome for a in result.attempts] == [Outcome.ERROR, Outcome.ERROR, Outcome.ACCEPTED]
    assert result.attempts[1].error is not None
    assert "HTTP 529" in result.attempts[1].error


def test_a_tier_that_keeps_failing_falls_through(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(503)] * 3)
    fake_server.script("claude-opus-4-8", [Reply.text("rescued")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert len(fake_server.requests_for("gpt-4o-mini")) == 3  # max_attempts
    assert result.output == "rescued" and result.tier == "large"
    assert [a.retry for a in result.attempts[:3]] == [0, 1, 2]


def test_401_is_not_retried(fake_server):
    fake_server.script(
        "gpt-4o-mini", [Reply.status(401, message="Incorrect API key provided: sk-test-openai-SECRET123")]
    )
    fake_server.script("claude-opus-4-8", [Reply.text("rescued")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert len(fake_server.requests_for("gpt-4o-mini")) == 1
    assert result.attempts[0].error is not None
    assert "HTTP 401" in result.attempts[0].error
    assert "SECRET123" not in result.attempts[0].error  # the server echoed the key; we never do


def test_timeout_is_retried_and_its_input_is_billed_as_an_estimate(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.stall(3), Reply.text("quick now")])
    with two_tier(fake_server, small={"timeout_s": 0.5}) as cascade:
        result = cascade.run("a question that takes long")
    timed_out = result.attempts[0]
    assert timed_out.outcome is Outcome.ERROR
    assert timed_out.error is not None and timed_out.error.startswith("timeout")
    assert timed_out.usage.estimated and timed_out.usage.input_tokens > 0 and timed_out.cost_usd > 0
    assert result.output == "quick now"


def test_malformed_body_is_an_error_not_an_answer(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.malformed()] * 3)
    fake_server.script("claude-opus-4-8", [Reply.malformed(), Reply.text("clean")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert result.output == "clean"
    assert all(a.outcome is Outcome.ERROR for a in result.attempts[:-1])
    assert all("<html>" not in (a.output or "") for a in result.attempts)


def test_dropped_connection_is_retried(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.drop(), Reply.text("second time lucky")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert result.output == "second time lucky"
    assert result.attempts[0].error is not None
    assert result.attempts[0].error.startswith("connection error")


def test_missing_usage_is_estimated_and_flagged(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("An answer of some length.", usage=False)])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    attempt = result.attempts[0]
    assert attempt.usage.estimated and attempt.cost_usd > 0
    assert attempt.usage.output_tokens == count_tokens("An answer of some length.", "gpt-4o-mini") == 6


def test_every_tier_failing_raises_with_each_error(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(403, message="forbidden")])
    fake_server.script("claude-opus-4-8", [Reply.status(404, message="no such model")])
    with two_tier(fake_server) as cascade, pytest.raises(ExhaustedError) as info:
        cascade.run("q")
    message = str(info.value)
    assert message.startswith("every tier failed")
    assert "HTTP 403: forbidden" in message and "HTTP 404: no such model" in message


def test_alternate_model_is_tried_before_escalating(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(404, message="model not found")])
    fake_server.script("gpt-4.1-nano", [Reply.text("from the alternate")])
    alternate = {
        "provider": "openai",
        "model": "gpt-4.1-nano",
        "base_url": fake_server.openai_base_url,
        "retry": FAST,
    }
    with two_tier(fake_server, small={"alternates": [alternate]}) as cascade:
        result = cascade.run("q")
    assert result.output == "from the alternate" and result.tier == "small"
    assert result.model == "gpt-4.1-nano"


def test_missing_key_fails_that_tier_only(fake_server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    fake_server.script("gpt-4o-mini", [Reply.text("I don't know.")])
    # on Anthropic's own API (no base_url): the key is needed, and nothing is sent without it
    with two_tier(fake_server, on_exhausted="return_best", large={"base_url": None}) as cascade:
        result = cascade.run("q")
    assert result.attempts[-1].error == "no API key: environment variable ANTHROPIC_API_KEY is not set"
    assert not result.verified and result.output == "I don't know."


def test_a_server_of_ones_own_needs_no_key(fake_server, monkeypatch):
    """With a base_url and no key set, a placeholder is sent (a local server or proxy ignores
    it), on either wire."""
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    fake_server.script("gpt-4o-mini", [Reply.text("I don't know.")])
    fake_server.script("claude-opus-4-8", [Reply.text("It is 42.")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert result.output == "It is 42." and result.verified
    for sent in (r.headers for r in fake_server.requests):  # each SDK's own header
        assert "not-needed" in sent.get("authorization", "") + sent.get("x-api-key", "")


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_the_sdks_base_url_variables_are_where_the_calls_go(fake_server, monkeypatch, wire):
    """OPENAI_BASE_URL / ANTHROPIC_BASE_URL stand for a tier's missing base_url, as in the SDKs;
    an endpoint set that way is one's own too: no key is needed."""
    env_var = "OPENAI_BASE_URL" if wire == "openai" else "ANTHROPIC_BASE_URL"
    monkeypatch.setenv(env_var, loopback_url(fake_server, wire))
    monkeypatch.delenv("OPENAI_API_KEY" if wire == "openai" else "ANTHROPIC_API_KEY")
    model = "gpt-4o-mini" if wire == "openai" else "claude-opus-4-8"
    fake_server.script(model, [Reply.text("from the variable's server")])
    tier = {"name": "only", "provider": wire, "model": model, "retry": FAST, "timeout_s": 5}
    with Cascade.from_config(parse_config({"tiers": [tier]})) as cascade:
        result = cascade.run("q")
    assert result.output == "from the variable's server" and len(fake_server.requests_for(model)) == 1


def test_async_api(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("Paris.")])
    cascade = two_tier(fake_server)

    async def go():
        async with cascade:
            return await cascade.arun("Capital of France?")

    assert asyncio.run(go()).output == "Paris."


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_not_retried(fake_server, status):
    fake_server.script("gpt-4o-mini", [Reply.status(status)])
    fake_server.script("claude-opus-4-8", [Reply.text("rescued")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("q")
    assert len(fake_server.requests_for("gpt-4o-mini")) == 1
    assert result.output == "rescued"


def test_connection_refused_is_retried_then_falls_through(fake_server):
    closed_port = "http://127.0.0.1:9/v1"  # discard port: nothing listens there
    fake_server.script("claude-opus-4-8", [Reply.text("rescued")])
    with two_tier(fake_server, small={"base_url": closed_port}) as cascade:
        result = cascade.run("q")
    errors = [a for a in result.attempts if a.tier == "small"]
    assert len(errors) == FAST["max_attempts"]
    assert all(
        a.error is not None and a.error.startswith("connection error") and a.cost_usd == 0 for a in errors
    )
    assert result.output == "rescued"


def test_every_provider_call_is_an_attempt(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(500), Reply.malformed(), Reply.text("I'm not sure.")])
    fake_server.script("claude-opus-4-8", [Reply.status(529), Reply.text("Sure: 4.")])
    with two_tier(fake_server) as cascade:
        result = cascade.run("2+2?")
    assert len(result.attempts) == len(fake_server.requests) == 5


def test_close_releases_the_sdk_clients(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("fine")])
    cascade = two_tier(fake_server)
    cascade.run("q")
    cascade.close()
    assert all(sdk_client(m.provider).is_closed() for t in cascade.tiers for m in t.models)


def test_tiers_on_one_server_share_one_connection_pool(fake_server):
    """Escalating from one model to another on the same server reuses the kept-alive
    connection: the tiers share one SDK client's pool (each keeps its own timeout)."""
    small = {"name": "small", "provider": "openai", "model": "gpt-4o-mini", "timeout_s": 5}
    large = {"name": "large", "provider": "openai", "model": "gpt-4o", "timeout_s": 7}
    for tier in (small, large):
        tier.update(base_url=fake_server.openai_base_url, retry=FAST)
    fake_server.script("gpt-4o-mini", [Reply.text("I'm not sure, maybe 41?")] * 3)
    fake_server.script("gpt-4o", [Reply.text("It is 42.")] * 3)
    config = parse_config({"tiers": [small, large], "verifiers": [{"type": "hedging"}]})
    with Cascade.from_config(config) as cascade:
        for _ in range(3):
            assert cascade.run("6 times 7?").tier == "large"
        timeouts = [sdk_client(m.provider).timeout for t in cascade.tiers for m in t.models]
    assert len(fake_server.requests) == 6 and fake_server.connections == 1
    assert timeouts == [5, 7]
