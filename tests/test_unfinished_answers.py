"""Answers that did not finish are never accepted: cut off at a token limit, withheld by a
filter, refused, or a tool call nobody offered. Over both wire formats, plain and streamed,
through the real SDKs against the loopback provider."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cascade import Cascade, ConfigError, Outcome, Result
from cascade.config import parse_config
from cascade.core.events import StreamResult
from cascade.testing.server import Reply
from tests.conftest import loopback_url

SMALL = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
LARGE = "claude-opus-4-8"
RETRY = {"max_attempts": 2, "initial_wait_s": 0, "max_wait_s": 1}
GOOD = "Paris is the capital of France."


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-Uq7Rw2Zp")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-Hv5Kx9Lm")


def config_for(server, wire: str, *, verifiers=None, small=None) -> dict[str, Any]:
    base = loopback_url(server, wire)
    return {
        "tiers": [
            {"name": "small", "provider": wire, "model": SMALL[wire], "base_url": base, "retry": RETRY}
            | (small or {}),
            {"name": "large", "provider": "anthropic", "model": LARGE, "base_url": server.anthropic_base_url}
            | {"retry": RETRY},
        ],
        # no verifier at all: what stops these answers is how they ended, nothing else
        "verifiers": verifiers or [],
    }


def answer(server, wire: str, mode: str, **config) -> Result:
    cascade = Cascade.from_config(parse_config(config_for(server, wire, **config)))

    async def go() -> Result:
        async with cascade:
            if mode == "plain":
                return await cascade.arun("What is the capital of France?")
            events = [e async for e in cascade.astream("What is the capital of France?")]
            return next(e.result for e in events if isinstance(e, StreamResult))

    return asyncio.run(go())


CUT_OFF = {"openai": "length", "anthropic": "max_tokens"}


@pytest.mark.parametrize("mode", ["plain", "stream"])
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_truncated_answer_is_rejected_billed_and_escalated(fake_server, wire, mode):
    fake_server.script(SMALL[wire], [Reply.text("Paris is the capital of", finish_reason=CUT_OFF[wire])])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, wire, mode)
    assert result.verified and result.output == GOOD and result.tier == "large"
    cut = result.attempts[0]
    assert cut.outcome is Outcome.REJECTED and cut.finish_reason == CUT_OFF[wire]
    assert cut.cost_usd > 0 and result.cost.wasted_usd == cut.cost_usd
    (verdict,) = cut.verdicts
    assert verdict.verifier == "finish_reason" and not verdict.passed
    assert "cut off" in verdict.reason and CUT_OFF[wire] in verdict.reason


@pytest.mark.parametrize("mode", ["plain", "stream"])
@pytest.mark.parametrize(("wire", "reason"), [("openai", "content_filter"), ("anthropic", "refusal")])
def test_a_filtered_answer_is_rejected(fake_server, wire, reason, mode):
    fake_server.script(SMALL[wire], [Reply.text("Paris is", finish_reason=reason)])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, wire, mode)
    assert result.output == GOOD and result.attempts[0].outcome is Outcome.REJECTED
    assert "withheld" in result.attempts[0].verdicts[0].reason


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_an_openai_refusal_is_rejected(fake_server, mode):
    fake_server.script(SMALL["openai"], [Reply.refusal("I can't help with that request.")])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, "openai", mode)
    assert result.output == GOOD
    assert "refused: I can't help" in result.attempts[0].verdicts[0].reason


def test_anthropic_pause_turn_is_an_unfinished_answer(fake_server):
    fake_server.script(SMALL["anthropic"], [Reply.text("Paris", finish_reason="pause_turn")])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, "anthropic", "plain")
    assert result.output == GOOD and "pause_turn" in result.attempts[0].verdicts[0].reason


@pytest.mark.parametrize("mode", ["plain", "stream"])
@pytest.mark.parametrize(
    ("reason", "why"),
    [
        ("abort", "not known to mean it is finished"),  # vLLM
        ("error", "not known to mean it is finished"),  # Mistral
        ("model_length", "cut off"),  # Mistral
        ("MAX_TOKENS", "cut off"),  # Gemini's OpenAI layer
        ("SAFETY", "withheld"),
        ("function_call", "called a tool"),  # the legacy OpenAI spelling
    ],
)
def test_a_compatible_servers_finish_reasons_are_read_too(fake_server, reason, why, mode):
    fake_server.script(SMALL["openai"], [Reply.text("Paris is the capital of", finish_reason=reason)])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, "openai", mode)
    assert result.output == GOOD and result.attempts[0].outcome is Outcome.REJECTED
    assert why in result.attempts[0].verdicts[0].reason


def test_on_truncated_accept_still_rejects_a_paused_turn(fake_server):
    fake_server.script(SMALL["anthropic"], [Reply.text("Paris", finish_reason="pause_turn")])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, "anthropic", "plain", small={"on_truncated": "accept"})
    assert result.output == GOOD and "paused the turn" in result.attempts[0].verdicts[0].reason


@pytest.mark.parametrize("mode", ["plain", "stream"])
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_on_truncated_accept_lets_the_verifiers_judge_a_cut_answer(fake_server, wire, mode):
    fake_server.script(SMALL[wire], [Reply.text("Paris, of course", finish_reason=CUT_OFF[wire])])
    result = answer(
        fake_server, wire, mode, small={"on_truncated": "accept"}, verifiers=[{"type": "non_empty"}]
    )
    assert result.verified and result.tier == "small" and result.output == "Paris, of course"
    assert result.attempts[0].finish_reason == CUT_OFF[wire]


@pytest.mark.parametrize("mode", ["plain", "stream"])
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_tool_call_nobody_offered_is_rejected(fake_server, wire, mode):
    fake_server.script(SMALL[wire], [Reply.tool_call({"city": "Paris"}, name="lookup_capital")])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, wire, mode)
    assert result.output == GOOD and result.tier == "large"
    called = result.attempts[0]
    assert called.outcome is Outcome.REJECTED and called.cost_usd > 0
    assert "lookup_capital" in called.verdicts[0].reason and "offered no tools" in called.verdicts[0].reason
    assert "Paris" not in (called.output or "")  # the tool's arguments are no answer text


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_tool_call_after_some_text_is_rejected_too(fake_server, wire):
    fake_server.script(SMALL[wire], [Reply.tool_call({"q": "capital"}, text="Let me look that up.")])
    fake_server.script(LARGE, [Reply.text(GOOD)])
    result = answer(fake_server, wire, "plain")
    assert result.output == GOOD and result.attempts[0].output == "Let me look that up."


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_the_forced_structured_output_tool_is_the_answer_not_a_stray_call(fake_server, mode):
    fake_server.script(SMALL["anthropic"], [Reply.tool_use({"city": "Paris"})])
    result = answer(
        fake_server,
        "anthropic",
        mode,
        small={"structured_output": True},
        verifiers=[{"type": "json_schema", "schema": SCHEMA}],
    )
    assert result.verified and result.tier == "small" and result.output is not None
    assert json.loads(result.output) == {"city": "Paris"}


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_structured_output_rejects_a_truncated_answer_even_when_it_parses(fake_server, wire):
    fake_server.script(SMALL[wire], [Reply.text('{"city": "Paris"}', finish_reason=CUT_OFF[wire])])
    fake_server.script(LARGE, [Reply.text('{"city": "Paris"}')])
    config = config_for(fake_server, wire, verifiers=[{"type": "json_schema", "schema": SCHEMA}])
    config["tiers"][0]["structured_output"] = True
    cascade = Cascade.from_config(parse_config(config))
    # a tier built in code may ask to accept truncation: structured output overrules it
    tiers = [cascade.tiers[0].__class__(t.name, t.models, "accept") for t in cascade.tiers]
    result = cascade.with_tiers(tiers).run("capital?")
    assert result.tier == "large" and "cut off" in result.attempts[0].verdicts[0].reason


def test_on_truncated_accept_with_structured_output_is_a_config_error(fake_server):
    config = config_for(fake_server, "openai", small={"on_truncated": "accept", "structured_output": True})
    with pytest.raises(ConfigError, match="on_truncated: accept cannot be combined with structured_output"):
        parse_config(config)


def test_an_unknown_on_truncated_value_names_the_field(fake_server):
    with pytest.raises(ConfigError, match=r"tiers\.0\.on_truncated"):
        parse_config(config_for(fake_server, "openai", small={"on_truncated": "maybe"}))


def test_a_truncated_answer_is_the_last_choice_of_return_best(fake_server):
    fake_server.script(SMALL["openai"], [Reply.text("I'm not sure, Paris?")])
    fake_server.script(LARGE, [Reply.text("The capital of France is", finish_reason="max_tokens")])
    result = answer(fake_server, "openai", "plain", verifiers=[{"type": "hedging"}])
    # both rejected, each passing no verifier: the whole answer of the lower tier beats the cut one
    assert not result.verified and result.output == "I'm not sure, Paris?" and result.tier == "small"
