"""`cascade.openai_client()`: code written for `openai.AsyncOpenAI` runs on a cascade unchanged."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import openai
import pytest
from openai.types.chat import ChatCompletionSystemMessageParam, ChatCompletionToolParam

from cascade import Cascade
from cascade.config import parse_config
from cascade.integrations.openai_client import CascadeAPIError
from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import loopback_tier

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def assistant(client: openai.AsyncOpenAI) -> dict[str, Any]:
    """Code written for the openai SDK, and nothing else: a plain answer, a streamed one with
    usage, a tool call and its follow-up, and an error handled the SDK's way."""
    system: ChatCompletionSystemMessageParam = {"role": "system", "content": "Be brief."}
    reply = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[system, {"role": "user", "content": "Capital of France?"}],
        temperature=0.2,
        max_tokens=50,
    )
    streamed, streamed_tokens = [], 0
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[system, {"role": "user", "content": "Capital of Spain?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            streamed.append(chunk.choices[0].delta.content)
        if chunk.usage:
            streamed_tokens = chunk.usage.total_tokens
    question: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    called = await client.chat.completions.create(model="gpt-4o-mini", messages=question, tools=[WEATHER])
    message = called.choices[0].message
    assert message.tool_calls
    call = message.tool_calls[0]
    assert call.type == "function"
    arguments = json.loads(call.function.arguments)
    question += [message, {"role": "tool", "tool_call_id": call.id, "content": "12 C"}]
    follow_up = await client.chat.completions.create(model="gpt-4o-mini", messages=question, tools=[WEATHER])
    try:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "?"}])
        failed = False
    except openai.APIError:
        failed = True
    return {
        "answer": reply.choices[0].message.content,
        "finish": reply.choices[0].finish_reason,
        "usage": reply.usage.total_tokens if reply.usage else None,
        "streamed": "".join(streamed),
        "streamed_tokens": streamed_tokens,
        "tool": (call.function.name, arguments, called.choices[0].finish_reason),
        "follow_up": follow_up.choices[0].message.content,
        "failed": failed,
    }


def script(server: FakeProviderServer, last: Reply) -> None:
    server.script(
        "gpt-4o-mini",
        [
            Reply.text("Paris.", input_tokens=12, output_tokens=2),
            Reply.text("Madrid.", input_tokens=12, output_tokens=3, chunk_chars=2),
            Reply.tool_call({"city": "Oslo"}, name="get_weather", input_tokens=20, output_tokens=9),
            Reply.text("It is 12 C.", input_tokens=30, output_tokens=5),
            last,
        ],
    )


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-SECRET123")


def test_code_written_for_the_sdk_gives_the_same_on_a_cascade(fake_server: FakeProviderServer):
    script(fake_server, Reply.status(400, message="bad request"))
    direct = openai.AsyncOpenAI(base_url=fake_server.openai_base_url, api_key="sk-test", max_retries=0)
    expected = asyncio.run(assistant(direct))

    script(fake_server, Reply.text("I'm not sure."))  # hedged: the cascade has no answer to give
    tier = loopback_tier(fake_server, "small", "gpt-4o-mini")
    config = {"tiers": [tier], "verifiers": [{"type": "hedging"}], "on_exhausted": "raise"}
    cascade = Cascade.from_config(parse_config(config))

    async def on_cascade() -> dict[str, Any]:
        async with cascade.openai_client() as client:
            return await assistant(cast(openai.AsyncOpenAI, client))  # the same code, unchanged

    assert asyncio.run(on_cascade()) == expected
    assert expected["answer"] == "Paris." and expected["streamed"] == "Madrid." and expected["failed"]


def test_the_cascades_account_rides_along_and_the_error_carries_the_result(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text("I'm not sure.")])
    fake_server.script("large", [Reply.text("Paris.")])
    tiers = [loopback_tier(fake_server, "small", "small"), loopback_tier(fake_server, "large", "large")]
    cascade = Cascade.from_config(parse_config({"tiers": tiers, "verifiers": [{"type": "hedging"}]}))

    async def ask() -> Any:
        async with cascade.openai_client() as client:
            return await client.chat.completions.create(
                model="any", messages=[{"role": "user", "content": "?"}]
            )

    reply = asyncio.run(ask())
    account = reply.cascade  # an extra field: the SDK's models keep it
    assert reply.model == "large" and account["tier"] == "large" and len(account["attempts"]) == 2
    assert account["cost"]["wasted_usd"] > 0


def test_exhaustion_is_an_openai_api_error_with_the_result(fake_server: FakeProviderServer):
    fake_server.script("small", [Reply.text("I'm not sure.")])
    tier = loopback_tier(fake_server, "small", "small")
    config = {"tiers": [tier], "verifiers": [{"type": "hedging"}], "on_exhausted": "raise"}
    cascade = Cascade.from_config(parse_config(config))

    async def ask() -> None:
        async with cascade.openai_client() as client:
            await client.chat.completions.create(model="any", messages=[{"role": "user", "content": "?"}])

    with pytest.raises(CascadeAPIError) as caught:
        asyncio.run(ask())
    assert isinstance(caught.value, openai.APIError) and caught.value.result.attempts


def test_an_option_the_cascade_cannot_honour_is_refused(fake_server: FakeProviderServer):
    cascade = Cascade.from_config(parse_config({"tiers": [loopback_tier(fake_server, "small", "small")]}))

    async def ask(**options: Any) -> None:
        async with cascade.openai_client() as client:
            await client.chat.completions.create(messages=[{"role": "user", "content": "?"}], **options)

    with pytest.raises(TypeError, match="n > 1"):
        asyncio.run(ask(n=2))
    with pytest.raises(TypeError, match="logit_bias"):
        asyncio.run(ask(logit_bias={1: 2}))
    assert fake_server.requests == []
