"""Typed structured output (`response_model`) and tool calls, through both SDKs to the loopback server."""

from __future__ import annotations

import asyncio
import json
from typing import Any, assert_type

import pytest
from pydantic import BaseModel

from cascade import Cascade, ExhaustedError, Outcome, Result
from cascade.config import parse_config
from cascade.core.events import StreamDelta, StreamResult
from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import loopback_tier


class Invoice(BaseModel):
    number: str
    total: float


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city"],
        },
    },
}

WEATHER_CALL = {"name": "get_weather", "arguments": '{"city":"Oslo"}'}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-SECRET123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-SECRET456")


def two_tier(server: FakeProviderServer, *, reask: int = 0, on_exhausted: str = "return_best") -> Cascade:
    small = {**loopback_tier(server, "small", "small"), "structured_output": True}
    large = {**loopback_tier(server, "large", "large", "anthropic"), "structured_output": True}
    config = {"tiers": [small, large], "reask": reask, "on_exhausted": on_exhausted}
    return Cascade.from_config(parse_config(config))


# -- response_model ------------------------------------------------------------------------


def test_parsed_is_an_instance_of_the_response_model_and_output_the_raw_text(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text('{"number": "A-1", "total": 9.5}')])
    with two_tier(fake_server) as cascade:
        result = cascade.run([{"role": "user", "content": "Extract."}], response_model=Invoice)
    invoice = assert_type(result.parsed, Invoice)  # mypy checks the type (the suite runs mypy on tests)
    assert isinstance(invoice, Invoice) and invoice == Invoice(number="A-1", total=9.5)
    assert result.output == '{"number": "A-1", "total": 9.5}' and result.tier == "small"
    (sent,) = fake_server.requests_for("small")
    assert sent.body["response_format"]["json_schema"]["schema"] == Invoice.model_json_schema()


def test_an_invalid_object_is_reasked_with_the_error_then_escalated(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text('{"number": "A-1"}'), Reply.text('{"number": 7, "total": 1}')])
    fake_server.script("large", [Reply.tool_use({"number": "A-1", "total": 12.0})])

    async def extract() -> Result[Invoice]:
        async with two_tier(fake_server, reask=1) as cascade:
            return await cascade.arun("Extract.", response_model=Invoice)

    result = asyncio.run(extract())
    assert result.parsed == Invoice(number="A-1", total=12.0) and result.tier == "large"
    assert [a.outcome for a in result.attempts] == [Outcome.REJECTED, Outcome.REJECTED, Outcome.ACCEPTED]
    reask = fake_server.requests_for("small")[1].body["messages"]
    assert "$.total" in reask[-1]["content"]  # the feedback names the failing field
    (large,) = fake_server.requests_for("large")
    assert large.body["tool_choice"] == {"type": "tool", "name": "Invoice"}  # Anthropic's forced tool


def test_no_valid_object_from_any_tier_raises_even_when_returning_the_best(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text("no idea")])
    fake_server.script("large", [Reply.tool_use({"number": "A-1"})])
    with (
        two_tier(fake_server) as cascade,
        pytest.raises(ExhaustedError, match="no tier gave a valid Invoice"),
    ):
        cascade.run("Extract.", response_model=Invoice)


def test_a_response_model_must_be_a_pydantic_class(fake_server: FakeProviderServer):
    with two_tier(fake_server) as cascade, pytest.raises(TypeError, match="pydantic model class"):
        cascade.run("Extract.", response_model=dict)  # type: ignore[type-var]
    assert fake_server.requests == []


def test_a_streamed_answer_ends_with_the_typed_result(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text('{"number": "B-2", "total": 3}')])
    with two_tier(fake_server) as cascade:
        events = list(cascade.stream("Extract.", response_model=Invoice, policy="buffer"))
    last = events[-1]
    assert isinstance(last, StreamResult) and last.result.parsed == Invoice(number="B-2", total=3)


# -- tools ----------------------------------------------------------------------------------


def tool_cascade(server: FakeProviderServer, wires: tuple[str, ...] = ("openai", "anthropic")) -> Cascade:
    tiers = [
        loopback_tier(server, name, name, wire) for name, wire in zip(("small", "large"), wires, strict=True)
    ]
    return Cascade.from_config(parse_config({"tiers": tiers, "verifiers": [{"type": "non_empty"}]}))


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_an_answer_may_be_a_tool_call_checked_against_the_tools_schema(
    fake_server: FakeProviderServer, wire: str
):
    fake_server.script("small", [Reply.tool_call({"city": "Oslo"}, name="get_weather")])
    with tool_cascade(fake_server, (wire, "anthropic")) as cascade:
        result = cascade.run("Weather in Oslo?", tools=[WEATHER], tool_choice="required")
    assert result.verified and result.tier == "small" and result.output == ""
    (call,) = result.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Oslo"}) and call.id
    verdicts = {v.verifier: v.passed for v in result.attempts[0].verdicts}
    assert verdicts == {"tool_call": True, "non_empty": True}
    body = fake_server.requests_for("small")[0].body
    if wire == "openai":
        assert body["tools"] == [WEATHER] and body["tool_choice"] == "required"
    else:
        function: dict[str, Any] = WEATHER["function"]  # type: ignore[assignment]
        assert body["tools"] == [
            {
                "name": "get_weather",
                "description": function["description"],
                "input_schema": function["parameters"],
            }
        ]
        assert body["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize(
    ("bad_call", "problem"),
    [
        (Reply.tool_call({"city": "Oslo"}, name="get_wether"), "get_wether: no such tool"),
        (Reply.tool_call({"unit": "C"}, name="get_weather"), "missing required argument(s) city"),
        (Reply.tool_call({"city": "Oslo", "unit": "K"}, name="get_weather"), "arguments.unit"),
        (Reply.tool_call(["Oslo"], name="get_weather"), "not a JSON object"),  # type: ignore[arg-type]
    ],
)
def test_an_invalid_tool_call_escalates_like_any_rejected_answer(
    fake_server: FakeProviderServer, bad_call: Reply, problem: str
):
    fake_server.script("small", [bad_call])
    fake_server.script("large", [Reply.tool_call({"city": "Oslo", "unit": "C"}, name="get_weather")])
    with tool_cascade(fake_server) as cascade:
        result = cascade.run("Weather in Oslo?", tools=[WEATHER])
    assert result.tier == "large" and result.verified
    rejected = result.attempts[0]
    assert rejected.outcome is Outcome.REJECTED
    assert problem in next(v.reason for v in rejected.verdicts if not v.passed)


def test_a_conversation_with_tool_results_is_sent_as_anthropic_blocks(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text("It is 12 C in Oslo.")])
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "12 C"},
    ]
    with tool_cascade(fake_server, ("anthropic", "anthropic")) as cascade:
        result = cascade.run(conversation, tools=[WEATHER])
    assert result.output == "It is 12 C in Oslo." and result.tool_calls == ()
    assert fake_server.requests_for("small")[0].body["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "12 C"}]},
    ]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_streamed_tool_calls_come_whole_in_the_result_once_verified(
    fake_server: FakeProviderServer, wire: str
):
    fake_server.script("small", [Reply.tool_call({"unit": "C"}, name="get_weather", chunk_chars=3)])
    fake_server.script("large", [Reply.tool_call({"city": "Oslo"}, name="get_weather", chunk_chars=3)])
    with tool_cascade(fake_server, (wire, wire)) as cascade:
        events = list(cascade.stream("Weather?", tools=[WEATHER], policy="restart"))
    assert not [e for e in events if isinstance(e, StreamDelta)]  # no argument text leaks as answer text
    last = events[-1]
    assert isinstance(last, StreamResult) and last.result.tier == "large"
    (call,) = last.result.tool_calls
    assert json.loads(call.arguments) == {"city": "Oslo"}


def test_a_tool_call_without_tools_offered_is_still_rejected(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.tool_call({"city": "Oslo"}, name="get_weather")])
    fake_server.script("large", [Reply.text("Sunny.")])
    with tool_cascade(fake_server) as cascade:
        result = cascade.run("Weather?")
    assert result.output == "Sunny." and result.tier == "large"


def test_a_rejected_tool_call_is_reasked_as_text_the_apis_accept(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.tool_call({"unit": "C"}, name="get_weather"), Reply.text("Sunny.")])
    small = loopback_tier(fake_server, "small", "small", "anthropic")
    with Cascade.from_config(parse_config({"tiers": [small], "reask": 1})) as cascade:
        result = cascade.run("Weather?", tools=[WEATHER])
    assert result.output == "Sunny." and result.verified
    asked_again = fake_server.requests_for("small")[1].body["messages"]
    assistant = asked_again[-2]
    assert assistant == {"role": "assistant", "content": '(called get_weather with arguments {"unit": "C"})'}
    assert "missing required argument(s) city" in asked_again[-1]["content"]


def test_min_tier_starts_the_ladder_higher_for_one_call(fake_server: FakeProviderServer):
    fake_server.script("large", [Reply.text("Straight from the top.")])
    with tool_cascade(fake_server) as cascade:
        result = cascade.run("Hard one.", min_tier="large")
        assert result.tier == "large" and [a.tier for a in result.attempts] == ["large"]
        assert fake_server.requests_for("small") == []
        with pytest.raises(ValueError, match="not a tier of this cascade"):
            cascade.run("Hard one.", min_tier="huge")
