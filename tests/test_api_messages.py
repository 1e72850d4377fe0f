"""Messages lists, per-call parameters and images, through both SDKs to the loopback server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cascade import Cascade
from cascade.config import parse_config
from cascade.core.messages import MessagesError, read_messages, to_request, write_messages
from cascade.providers.anthropic import accepted_params
from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import loopback_tier

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a prime."},
    {"role": "assistant", "content": "7."},
    {"role": "user", "content": "Another one?"},
]
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-SECRET123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-SECRET456")


def one_tier(server: FakeProviderServer, wire: str, model: str, **tier: object) -> Cascade:
    return Cascade.from_config(
        parse_config({"tiers": [{**loopback_tier(server, "only", model, wire), **tier}]})
    )


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_messages_list_reaches_the_provider_as_a_conversation(fake_server: FakeProviderServer, wire: str):
    fake_server.script("m", [Reply.text("11.")])
    with one_tier(fake_server, wire, "m") as cascade:
        result = cascade.run(CONVERSATION)
    assert result.output == "11." and result.verified
    (body,) = [r.body for r in fake_server.requests_for("m")]
    turns = [
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7."},
        {"role": "user", "content": "Another one?"},
    ]
    if wire == "openai":
        assert body["messages"] == [{"role": "system", "content": "Be brief."}, *turns]
    else:
        assert body["system"] == "Be brief." and body["messages"] == turns


def test_per_call_parameters_go_to_every_tier_over_its_own(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text("I'm not sure.")])
    fake_server.script("large", [Reply.text("Sure.")])
    small = {**loopback_tier(fake_server, "small", "small"), "params": {"temperature": 0.9, "top_p": 0.5}}
    large = {**loopback_tier(fake_server, "large", "large", "anthropic"), "params": {"max_tokens": 900}}
    config = parse_config({"tiers": [small, large], "verifiers": [{"type": "hedging"}]})
    with Cascade.from_config(config) as cascade:
        result = cascade.run("Hi", temperature=0.1, max_tokens=50, stop=["\n\n"], seed=3)
    assert result.tier == "large"
    (openai_body,) = [r.body for r in fake_server.requests_for("small")]
    (anthropic_body,) = [r.body for r in fake_server.requests_for("large")]
    assert (openai_body["temperature"], openai_body["top_p"], openai_body["max_tokens"]) == (0.1, 0.5, 50)
    assert (openai_body["stop"], openai_body["seed"]) == (["\n\n"], 3)
    assert (anthropic_body["max_tokens"], anthropic_body["stop_sequences"]) == (50, ["\n\n"])
    # not in this API (the SDK's messages.create takes no temperature since 2.x)
    assert not {"seed", "stop"} & set(anthropic_body)
    assert ("temperature" in anthropic_body) == ("temperature" in accepted_params())


def test_an_unknown_per_call_parameter_is_refused_before_any_call(fake_server: FakeProviderServer):
    with one_tier(fake_server, "openai", "m") as cascade, pytest.raises(ValueError, match="tempreature"):
        cascade.run("Hi", tempreature=0.2)
    assert fake_server.requests == []


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_an_image_part_is_passed_in_each_providers_own_shape(fake_server: FakeProviderServer, wire: str):
    fake_server.script("m", [Reply.text("A cat.")])
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    with one_tier(fake_server, wire, "m") as cascade:
        result = cascade.run([{"role": "user", "content": parts}])
    assert result.output == "A cat."
    (body,) = [r.body for r in fake_server.requests_for("m")]
    (message,) = body["messages"]
    if wire == "openai":
        assert message["content"] == parts
    else:
        assert message["content"] == [
            {"type": "text", "text": "What is this?"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
            },
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ]


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([], "non-empty list"),
        ("hi", "non-empty list"),
        ([{"role": "robot", "content": "x"}], "messages[0].role must be one of"),
        ([{"role": "user"}], "messages[0].content must be a string"),
        ([{"role": "user", "content": [{"type": "audio"}]}], "messages[0].content[0] must be"),
        ([{"role": "system", "content": "x"}], "only system messages"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "last message"),
        ([{"role": "tool", "content": "42"}], "tool_call_id"),
        ([{"role": "assistant", "content": [{"type": "image_url", "image_url": PNG}]}], "only user messages"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": "file:///etc/passwd"}]}], "http"),
    ],
)
def test_a_malformed_messages_list_is_an_error_naming_the_message(messages: object, problem: str):
    with pytest.raises(MessagesError, match=re.escape(problem)):
        read_messages(messages)  # type: ignore[arg-type]


def test_system_and_developer_messages_join_the_system_prompt():
    request = to_request(
        [{"role": "developer", "content": "Rule one."}, {"role": "user", "content": "Hi"}], system="Base."
    )
    assert request.system == "Base.\n\nRule one." and [m.role for m in request.messages] == ["user"]


def test_written_messages_read_back_the_same():
    turns: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": PNG}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    read, system = read_messages(turns)
    assert system is None and write_messages(read) == turns


def test_a_request_with_tools_params_and_a_schema_is_hashable_and_compares_whole():
    def ask(temperature: float) -> Any:
        request = to_request(CONVERSATION, tools=[{"type": "function", "function": {"name": "f"}}])
        return request.replace(params={"temperature": temperature}, response_schema={"type": "object"})

    assert hash(ask(0.1)) == hash(ask(0.1)) and ask(0.1) == ask(0.1)
    assert ask(0.1) != ask(0.2) and len({ask(0.1), ask(0.2)}) == 2


def test_an_empty_assistant_turn_is_left_out_of_an_anthropic_conversation(fake_server: FakeProviderServer):
    fake_server.script("m", [Reply.text("Fine.")])
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Still there?"},
    ]
    with one_tier(fake_server, "anthropic", "m") as cascade:
        assert cascade.run(turns).output == "Fine."
    (body,) = [r.body for r in fake_server.requests_for("m")]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Still there?"}],
        }
    ]
