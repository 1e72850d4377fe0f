"""The verifier stack end to end: real SDKs, loopback provider, the shipped extraction config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cascade import Cascade, ExhaustedError
from cascade.config import parse_config
from cascade.testing.server import Reply

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GOOD = {
    "vendor": "ACME GmbH",
    "invoice_number": "2024-117",
    "date": "2024-03-05",
    "currency": "EUR",
    "items": [{"description": "Widget", "quantity": 2, "unit_price": 9.5}],
    "total": 19.0,
}
BAD = {**GOOD, "items": [{"description": "Widget", "quantity": 2, "unit_price": "9.50 EUR"}]}


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-e2e")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-e2e")


def extraction_cascade(server) -> Cascade:
    """configs/extraction.yaml, pointed at the loopback server, with retries that do not wait."""
    data = yaml.safe_load((CONFIGS / "extraction.yaml").read_text())
    for tier, url in zip(data["tiers"], [server.openai_base_url, server.anthropic_base_url], strict=True):
        tier["base_url"] = url
        tier["retry"] = {"max_attempts": 2, "initial_wait_s": 0, "max_wait_s": 1}
    return Cascade.from_config(parse_config(data), base_dir=CONFIGS)


def test_reask_with_feedback_fixes_a_schema_error_on_the_same_tier(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text(json.dumps(BAD)), Reply.text(json.dumps(GOOD))])
    with extraction_cascade(fake_server) as cascade:
        result = cascade.run("Invoice ACME GmbH no. 2024-117 of 5 March 2024: 2 widgets at 9.50 EUR.")
    assert result.verified and result.tier == "small" and result.parsed == GOOD
    assert [(a.tier, str(a.outcome), a.reask) for a in result.attempts] == [
        ("small", "rejected", 0),
        ("small", "accepted", 1),
    ]
    assert "$.items[0].unit_price" in result.attempts[0].verdicts[0].reason
    assert result.cost.wasted_usd == result.attempts[0].cost_usd > 0
    first, second = fake_server.requests_for("gpt-4o-mini")
    # structured output: the cheap model was given the schema itself
    assert first.body["response_format"]["json_schema"]["schema"]["title"] == "invoice"
    feedback = second.body["messages"][-1]["content"]
    assert "$.items[0].unit_price" in feedback and second.body["messages"][-2]["role"] == "assistant"


def test_a_schema_breaking_answer_escalates_with_the_failing_path(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text(json.dumps(BAD))] * 2)
    fake_server.script("claude-opus-4-8", [Reply.tool_use(GOOD)])
    with extraction_cascade(fake_server) as cascade:
        result = cascade.run("Invoice ACME ...")
    assert result.tier == "large" and result.parsed == GOOD
    assert all("$.items[0].unit_price" in a.verdicts[0].reason for a in result.attempts[:2])
    anthropic_request = fake_server.requests_for("claude-opus-4-8")[0].body
    assert anthropic_request["tool_choice"] == {"type": "tool", "name": "invoice"}
    assert anthropic_request["tools"][0]["input_schema"]["title"] == "invoice"


def test_extraction_that_never_validates_raises_with_every_attempt(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("Sorry, I can't read this invoice.")] * 2)
    fake_server.script("claude-opus-4-8", [Reply.tool_use(BAD)])
    with extraction_cascade(fake_server) as cascade, pytest.raises(ExhaustedError) as info:
        cascade.run("Invoice ...")
    attempts = info.value.result.attempts
    assert len(attempts) == 3 and "no JSON found" in attempts[0].verdicts[0].reason
    assert info.value.result.cost.total_usd == sum(a.cost_usd for a in attempts)
