"""Tests for cascade.testing.server, driven through the REAL openai / anthropic SDKs.

Every test talks HTTP over loopback to a FakeProviderServer with `max_retries=0`.
The exception classes asserted here are what the installed SDKs (openai 3.54,
anthropic 2.12 over httpx2) actually raise for each fault; the error classifier
relies on them, so a change in an SDK should fail here first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import MessageParam, RawMessageStartEvent, TextBlock, TextDelta, ToolParam, ToolUseBlock
from openai.types.chat import ChatCompletionMessageParam

from cascade.testing.server import DEFAULT_DROP_TEXT, FakeProviderServer, RecordedRequest, Reply

# the same message, typed once per SDK (each SDK's TypedDict rejects the other's)
MSGS: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
AN_MSGS: list[MessageParam] = [{"role": "user", "content": "Say hello"}]
MODEL_OA = "gpt-4o-mini"
MODEL_AN = "claude-haiku"


@pytest.fixture
def server():
    with FakeProviderServer() as s:
        yield s
        assert s.errors == [], s.errors[0]


@pytest.fixture
def slow_server():
    # a pause between stream chunks, so clients can hang up in the middle
    with FakeProviderServer(chunk_delay_s=0.05) as s:
        yield s
        assert s.errors == [], s.errors[0]


def oa_client(server: FakeProviderServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="test-key", max_retries=0, **kw)


def an_client(server: FakeProviderServer, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test-key", max_retries=0, **kw)


def aoa_client(server: FakeProviderServer, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test-key", max_retries=0, **kw)


def aan_client(server: FakeProviderServer, **kw) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key="test-key", max_retries=0, **kw
    )


def text_of(part: object) -> str:
    """The text of an Anthropic text block or text delta (the SDK types each as a union of kinds)."""
    assert isinstance(part, TextBlock | TextDelta), part
    return part.text


def tool_use(block: object) -> ToolUseBlock:
    assert isinstance(block, ToolUseBlock), block
    return block


def error_body(err: openai.APIError | anthropic.APIError) -> dict[str, Any]:
    """An SDK error's parsed JSON body (typed `object` by both SDKs)."""
    assert isinstance(err.body, dict), err.body
    return err.body


def wait_until(pred, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def default_input_tokens(messages, system=None) -> int:
    n = len(json.dumps(messages, separators=(",", ":")))
    if system:
        n += len(json.dumps(system, separators=(",", ":")))
    return max(1, n // 4)


# --------------------------------------------------------------------------- OpenAI: normal answers


def test_openai_json_text_usage_and_record(server):
    server.script(MODEL_OA, [Reply.text("hello there, friend")])
    with oa_client(server) as client:
        c = client.chat.completions.create(model=MODEL_OA, messages=MSGS, temperature=0.5)
    assert c.choices[0].message.content == "hello there, friend"
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].finish_reason == "stop"
    assert c.model == MODEL_OA
    assert c.usage is not None
    assert c.usage.prompt_tokens == default_input_tokens(MSGS)
    assert c.usage.completion_tokens == len("hello there, friend") // 4
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens

    (rec,) = server.requests
    assert isinstance(rec, RecordedRequest)
    assert (rec.wire, rec.path, rec.model, rec.stream) == (
        "openai",
        "/v1/chat/completions",
        MODEL_OA,
        False,
    )
    assert rec.body["temperature"] == 0.5 and rec.body["messages"] == MSGS
    assert rec.headers["authorization"] == "Bearer test-key"
    assert rec.reply_kind == "text"
    assert wait_until(lambda: rec.completed) and rec.client_closed is False


def test_openai_explicit_tokens_and_length_finish(server):
    server.script(MODEL_OA, Reply.text("cut", input_tokens=11, output_tokens=22, finish_reason="max_tokens"))
    with oa_client(server) as client:
        c = client.chat.completions.create(model=MODEL_OA, messages=MSGS)
    # the Anthropic spelling is translated to OpenAI's
    assert c.choices[0].finish_reason == "length"
    assert c.usage is not None
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (11, 22, 33)


def test_openai_usage_false_omits_usage(server):
    server.script(MODEL_OA, Reply.text("no usage here", usage=False))
    with oa_client(server) as client:
        c = client.chat.completions.create(model=MODEL_OA, messages=MSGS)
    assert c.choices[0].message.content == "no usage here"
    assert c.usage is None


def test_openai_stream_text_with_include_usage():
    async def main():
        with FakeProviderServer() as server:
            text = "streaming is fun, isn't it?"
            server.script(MODEL_OA, Reply.text(text, chunk_chars=5, input_tokens=9, output_tokens=7))
            async with aoa_client(server) as client:
                stream = await client.chat.completions.create(
                    model=MODEL_OA,
                    messages=MSGS,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                chunks = [c async for c in stream]
            return server, text, chunks

    server, text, chunks = asyncio.run(main())
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text
    deltas = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert deltas[0] == text[:5] and len(deltas) == -(-len(text) // 5)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        9,
        7,
        16,
    )
    (rec,) = server.requests
    assert rec.stream is True and wait_until(lambda: rec.completed) and rec.client_closed is False


def test_openai_stream_without_include_usage_has_no_usage_chunk(server):
    server.script(MODEL_OA, Reply.text("abc def ghi"))
    with oa_client(server) as client:
        chunks = list(client.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abc def ghi"


def test_openai_logprobs_json_and_stream(server):
    lps = [-0.1, -0.2, -0.3]
    server.script(
        MODEL_OA,
        [
            Reply.text("abcdefg", logprobs=lps),
            Reply.text("abcdefg", logprobs=lps),
            Reply.text("abcdefg", logprobs=lps),
        ],
    )
    with oa_client(server) as client:
        c = client.chat.completions.create(model=MODEL_OA, messages=MSGS, logprobs=True)
        chunks = list(
            client.chat.completions.create(model=MODEL_OA, messages=MSGS, logprobs=True, stream=True)
        )
        plain = client.chat.completions.create(model=MODEL_OA, messages=MSGS)  # did not ask: no logprobs
    assert c.choices[0].logprobs is not None
    content = c.choices[0].logprobs.content
    assert content is not None
    assert [t.logprob for t in content] == lps
    assert "".join(t.token for t in content) == "abcdefg"
    assert content[0].top_logprobs == [] and content[0].bytes is None
    streamed = [
        t
        for ch in chunks
        if ch.choices and ch.choices[0].logprobs
        for t in ch.choices[0].logprobs.content or []
    ]
    assert [t.logprob for t in streamed] == lps
    assert "".join(t.token for t in streamed) == "abcdefg"
    assert plain.choices[0].logprobs is None


def test_openai_tool_use_renders_as_json_text(server):
    server.script(MODEL_OA, Reply.tool_use({"verdict": "pass", "score": 0.9}))
    with oa_client(server) as client:
        c = client.chat.completions.create(model=MODEL_OA, messages=MSGS)
    assert c.choices[0].message.content is not None
    assert json.loads(c.choices[0].message.content) == {"verdict": "pass", "score": 0.9}


# ----------------------------------------------------------------- Anthropic: normal answers


def test_anthropic_json_text_usage_and_record(server):
    server.script(MODEL_AN, Reply.text("bonjour tout le monde"))
    with an_client(server) as client:
        m = client.messages.create(model=MODEL_AN, messages=AN_MSGS, system="be nice", max_tokens=50)
    assert m.content[0].type == "text" and m.content[0].text == "bonjour tout le monde"
    assert m.stop_reason == "end_turn"
    assert m.model == MODEL_AN
    assert m.usage.input_tokens == default_input_tokens(MSGS, "be nice")
    assert m.usage.output_tokens == len("bonjour tout le monde") // 4
    (rec,) = server.requests
    assert (rec.wire, rec.path, rec.model, rec.stream) == (
        "anthropic",
        "/v1/messages",
        MODEL_AN,
        False,
    )
    assert rec.body["system"] == "be nice" and rec.body["max_tokens"] == 50
    # anthropic 2.12 authenticates with a bearer token, not x-api-key
    assert rec.headers["authorization"] == "Bearer test-key"
    assert "anthropic-version" in rec.headers
    assert wait_until(lambda: rec.completed) and rec.client_closed is False


def test_anthropic_length_finish_translated_to_max_tokens(server):
    server.script(MODEL_AN, Reply.text("trunc", finish_reason="length", output_tokens=50))
    with an_client(server) as client:
        m = client.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=50)
    assert m.stop_reason == "max_tokens"
    assert m.usage.output_tokens == 50


def test_anthropic_usage_false_gives_usage_none(server):
    # The SDK does not validate: a missing `usage` shows up as None on the Message.
    server.script(MODEL_AN, Reply.text("hi", usage=False))
    with an_client(server) as client:
        m = client.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)
    assert text_of(m.content[0]) == "hi"
    assert m.usage is None


def test_anthropic_stream_without_usage_raw_events_ok_but_helper_crashes(server):
    server.script(MODEL_AN, [Reply.text("no usage", usage=False)] * 2)
    with an_client(server) as client:
        events = list(client.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True))
        assert isinstance(events[0], RawMessageStartEvent)
        assert events[0].message.usage is None
        assert next(e for e in events if e.type == "message_delta").usage is None
        # the SDK's accumulator (messages.stream) assumes usage and fails with a bare AttributeError
        with (
            pytest.raises(AttributeError),
            client.messages.stream(model=MODEL_AN, messages=AN_MSGS, max_tokens=5) as stream,
        ):
            stream.get_final_message()


def test_anthropic_stream_events_and_usage():
    text = "a streamed anthropic answer"

    async def main():
        with FakeProviderServer() as server:
            server.script(MODEL_AN, Reply.text(text, chunk_chars=6, output_tokens=12))
            async with aan_client(server) as client:
                stream = await client.messages.create(
                    model=MODEL_AN, messages=AN_MSGS, max_tokens=50, stream=True
                )
                events = [e async for e in stream]
            return server, events

    server, events = asyncio.run(main())
    types = [e.type for e in events]  # the SDK drops `ping`
    n_deltas = -(-len(text) // 6)
    assert types == (
        ["message_start", "content_block_start"]
        + ["content_block_delta"] * n_deltas
        + ["content_block_stop", "message_delta", "message_stop"]
    )
    assert events[0].message.usage.input_tokens == default_input_tokens(MSGS)
    assert "".join(text_of(e.delta) for e in events if e.type == "content_block_delta") == text
    md = events[-2]
    assert md.delta.stop_reason == "end_turn" and md.usage.output_tokens == 12
    assert wait_until(lambda: server.requests[0].completed)


def test_anthropic_stream_helper_final_message(server):
    server.script(MODEL_AN, Reply.text("helper text", output_tokens=3))
    with (
        an_client(server) as client,
        client.messages.stream(model=MODEL_AN, messages=AN_MSGS, max_tokens=50) as stream,
    ):
        final = stream.get_final_message()
    assert text_of(final.content[0]) == "helper text"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3


def test_anthropic_tool_use_with_forced_tool_choice(server):
    tools: list[ToolParam] = [
        {"name": "get_weather", "description": "w", "input_schema": {"type": "object"}},
        {"name": "grade", "description": "g", "input_schema": {"type": "object"}},
    ]
    server.script(MODEL_AN, [Reply.tool_use({"score": 7, "ok": True})] * 2)
    with an_client(server) as client:
        m = client.messages.create(
            model=MODEL_AN,
            messages=AN_MSGS,
            max_tokens=50,
            tools=tools,
            tool_choice={"type": "tool", "name": "grade"},
        )
        with client.messages.stream(
            model=MODEL_AN,
            messages=AN_MSGS,
            max_tokens=50,
            tools=tools,
            tool_choice={"type": "tool", "name": "grade"},
        ) as stream:
            raw_types = [e.type for e in stream]
            streamed = stream.get_final_message()
    for msg in (m, streamed):
        block = tool_use(msg.content[0])
        assert block.type == "tool_use"
        assert block.name == "grade"  # the forced tool, not the first one
        assert block.input == {"score": 7, "ok": True}
        assert msg.stop_reason == "tool_use"
    assert "input_json" in raw_types  # the helper's event for input_json_delta


def test_anthropic_tool_use_defaults_to_first_tool(server):
    tools: list[ToolParam] = [
        {"name": "first_tool", "input_schema": {"type": "object"}},
        {"name": "second_tool", "input_schema": {"type": "object"}},
    ]
    server.script(MODEL_AN, Reply.tool_use({"a": 1}))
    with an_client(server) as client:
        m = client.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=50, tools=tools)
    assert tool_use(m.content[0]).name == "first_tool"


# --------------------------------------------------------------------------- HTTP status errors


@pytest.mark.parametrize(
    "code, exc",
    [
        (500, openai.InternalServerError),
        (429, openai.RateLimitError),
        (
            529,
            openai.InternalServerError,
        ),  # openai has no 529 class: any >= 500 -> InternalServerError
        (401, openai.AuthenticationError),
        (503, openai.InternalServerError),
    ],
)
def test_openai_status_errors(server, code, exc):
    server.script(MODEL_OA, Reply.status(code))
    with oa_client(server) as client, pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model=MODEL_OA, messages=MSGS)
    assert type(ei.value) is exc
    assert ei.value.status_code == code
    assert set(error_body(ei.value)) >= {"message", "type", "code"}  # openai unwraps {"error": {...}}


@pytest.mark.parametrize(
    "code, exc, etype",
    [
        (500, anthropic.InternalServerError, "api_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (
            529,
            anthropic.OverloadedError,
            "overloaded_error",
        ),  # OverloadedError subclasses InternalServerError
        (401, anthropic.AuthenticationError, "authentication_error"),
        (
            503,
            anthropic.ServiceUnavailableError,
            "api_error",
        ),  # also an InternalServerError subclass
    ],
)
def test_anthropic_status_errors(server, code, exc, etype):
    server.script(MODEL_AN, Reply.status(code))
    with an_client(server) as client, pytest.raises(anthropic.APIStatusError) as ei:
        client.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)
    assert type(ei.value) is exc
    assert ei.value.status_code == code
    assert ei.value.type == etype
    assert error_body(ei.value)["type"] == "error" and error_body(ei.value)["error"]["type"] == etype


def test_anthropic_529_is_internal_server_error_subclass(server):
    server.script(MODEL_AN, Reply.status(529))
    with an_client(server) as client, pytest.raises(anthropic.InternalServerError) as ei:
        client.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)
    assert isinstance(ei.value, anthropic.OverloadedError)


def test_retry_after_header_visible_on_exception(server):
    server.script(MODEL_OA, Reply.status(429, retry_after=7, message="slow down"))
    server.script(MODEL_AN, Reply.status(429, retry_after=3))
    with oa_client(server) as oa, pytest.raises(openai.RateLimitError) as e1:
        oa.chat.completions.create(model=MODEL_OA, messages=MSGS)
    with an_client(server) as an, pytest.raises(anthropic.RateLimitError) as e2:
        an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)
    assert e1.value.response.headers["retry-after"] == "7"
    assert error_body(e1.value)["message"] == "slow down"
    assert e2.value.response.headers["retry-after"] == "3"


def test_status_error_on_stream_request_raises_at_create():
    async def main():
        with FakeProviderServer() as server:
            server.script(MODEL_OA, Reply.status(500))
            server.script(MODEL_AN, Reply.status(529))
            async with aoa_client(server) as oa, aan_client(server) as an:
                with pytest.raises(openai.InternalServerError):
                    await oa.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
                with pytest.raises(anthropic.OverloadedError):
                    await an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True)

    asyncio.run(main())


# --------------------------------------------------------------------------- malformed bodies


def test_malformed_json_body_raises_json_decode_error(server):
    # Neither SDK wraps this: a 200 with a non-JSON application/json body raises a bare
    # json.JSONDecodeError (a ValueError), not an APIError.
    server.script(MODEL_OA, Reply.malformed())
    server.script(MODEL_AN, Reply.malformed("<html>oops</html>"))
    with oa_client(server) as oa, pytest.raises(json.JSONDecodeError):
        oa.chat.completions.create(model=MODEL_OA, messages=MSGS)
    with an_client(server) as an, pytest.raises(json.JSONDecodeError):
        an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)


def test_malformed_stream_line_raises_json_decode_error_while_iterating(server):
    server.script(MODEL_OA, Reply.malformed())
    server.script(MODEL_AN, Reply.malformed())
    with oa_client(server) as oa:
        stream = oa.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
        first = next(iter(stream))  # the role chunk is valid
        assert first.choices[0].delta.role == "assistant"
        with pytest.raises(json.JSONDecodeError):
            list(stream)
    with an_client(server) as an:
        an_stream = an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True)
        with pytest.raises(json.JSONDecodeError):
            list(an_stream)


# --------------------------------------------------------------------------- stalls / timeouts


def test_stall_triggers_sdk_timeout_and_is_logged_as_client_closed(server):
    server.script(MODEL_OA, Reply.stall(2.0))
    server.script(MODEL_AN, Reply.stall(2.0))
    t0 = time.monotonic()
    # both wrap httpx2.ReadTimeout in their APITimeoutError (a subclass of APIConnectionError)
    with oa_client(server, timeout=0.2) as oa, pytest.raises(openai.APITimeoutError) as e1:
        oa.chat.completions.create(model=MODEL_OA, messages=MSGS)
    with an_client(server, timeout=0.2) as an, pytest.raises(anthropic.APITimeoutError) as e2:
        an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)
    assert time.monotonic() - t0 < 1.5
    assert isinstance(e1.value.__cause__, httpx2.ReadTimeout)
    assert isinstance(e2.value.__cause__, httpx2.ReadTimeout)
    recs = server.requests
    assert [r.reply_kind for r in recs] == ["stall", "stall"]
    assert wait_until(lambda: all(r.client_closed for r in recs))
    assert not any(r.completed for r in recs)


def test_stall_answers_late_when_client_waits(server):
    server.script(MODEL_AN, Reply.stall(0.3))
    t0 = time.monotonic()
    with an_client(server, timeout=5) as an:
        m = an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)
    assert time.monotonic() - t0 >= 0.3
    assert text_of(m.content[0]) == "late"


def test_stall_mid_stream_continues_after_pause(server):
    text = "first part, then the second part"
    server.script(MODEL_OA, Reply.stall_mid_stream(text, 10, 0.3))
    with oa_client(server, timeout=5) as oa:
        stream = oa.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
        stamps = []
        content = ""
        for c in stream:
            if c.choices and c.choices[0].delta.content:
                content += c.choices[0].delta.content
                stamps.append((len(content), time.monotonic()))
    assert content == text
    # the gap is between the chunk that completes text[:10] and the next one
    gaps = [(n, b - a) for (n, a), (_, b) in itertools.pairwise(stamps)]
    big = [n for n, g in gaps if g >= 0.25]
    assert big == [10]


def test_stall_mid_stream_read_timeout_while_iterating(server):
    server.script(MODEL_OA, Reply.stall_mid_stream("0123456789abcdef", 8, 2.0))
    server.script(MODEL_AN, Reply.stall_mid_stream("0123456789abcdef", 8, 2.0))
    with oa_client(server, timeout=0.3) as oa:
        stream = oa.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
        got = []
        # openai wraps the read timeout inside the stream: APITimeoutError
        with pytest.raises(openai.APITimeoutError):
            for c in stream:
                got.append(c)
        assert "".join(c.choices[0].delta.content or "" for c in got) == "01234567"
    with an_client(server, timeout=0.3) as an:
        an_stream = an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True)
        # anthropic does NOT wrap errors raised while iterating: bare httpx2.ReadTimeout
        with pytest.raises(httpx2.ReadTimeout):
            list(an_stream)
    assert wait_until(lambda: all(r.client_closed for r in server.requests))


# --------------------------------------------------------------------------- dropped connections


def test_drop_without_response_is_connection_error(server):
    server.script(MODEL_OA, Reply.drop())
    server.script(MODEL_AN, Reply.drop())
    # both: APIConnectionError <- httpx2.RemoteProtocolError
    #   ("Server disconnected without sending a response.")
    with oa_client(server) as oa, pytest.raises(openai.APIConnectionError) as e1:
        oa.chat.completions.create(model=MODEL_OA, messages=MSGS)
    with an_client(server) as an, pytest.raises(anthropic.APIConnectionError) as e2:
        an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)
    assert type(e1.value) is openai.APIConnectionError
    assert type(e2.value) is anthropic.APIConnectionError
    assert isinstance(e1.value.__cause__, httpx2.RemoteProtocolError)
    assert isinstance(e2.value.__cause__, httpx2.RemoteProtocolError)
    assert all(r.reply_kind == "drop" and not r.completed for r in server.requests)


def test_drop_mid_stream_openai_raises_api_connection_error():
    async def main():
        with FakeProviderServer() as server:
            server.script(MODEL_OA, Reply.drop(after_chars=20))
            async with aoa_client(server) as client:
                stream = await client.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
                got = ""
                # openai wraps it: APIConnectionError <- httpx2.RemoteProtocolError ("peer closed
                # connection without sending complete message body (incomplete chunked read)")
                with pytest.raises(openai.APIConnectionError) as ei:
                    async for c in stream:
                        got += c.choices[0].delta.content or ""
                return got, ei.value

    got, err = asyncio.run(main())
    assert got == DEFAULT_DROP_TEXT[:20]
    assert type(err) is openai.APIConnectionError
    assert isinstance(err.__cause__, httpx2.RemoteProtocolError)


def test_drop_mid_stream_anthropic_raises_bare_httpx2_error():
    async def main():
        with FakeProviderServer() as server:
            server.script(MODEL_AN, Reply.drop(after_chars=20, text="x" * 15 + "y" * 30))
            async with aan_client(server) as client:
                stream = await client.messages.create(
                    model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True
                )
                got = ""
                # anthropic does NOT wrap transport errors raised during iteration: the caller sees
                # httpx2.RemoteProtocolError itself (not an anthropic.APIError)
                with pytest.raises(httpx2.RemoteProtocolError) as ei:
                    async for e in stream:
                        if e.type == "content_block_delta":
                            got += text_of(e.delta)
                return server, got, ei.value

    server, got, err = asyncio.run(main())
    assert got == "x" * 15 + "y" * 5
    assert not isinstance(err, anthropic.APIError)
    (rec,) = server.requests
    assert rec.reply_kind == "drop" and rec.completed is False


def test_drop_mid_stream_sync_clients(server):
    server.script(MODEL_OA, Reply.drop(8))
    server.script(MODEL_AN, Reply.drop(8))
    with oa_client(server) as oa, pytest.raises(openai.APIConnectionError):
        list(oa.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True))
    with an_client(server) as an, pytest.raises(httpx2.RemoteProtocolError):
        list(an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True))


# ----------------------------------------------------- truncated streams / in-stream errors


def test_truncated_stream_openai_ends_without_finish_reason(server):
    server.script(MODEL_OA, Reply.truncated("hello world, truncated", 11))
    with oa_client(server) as oa:
        chunks = list(
            oa.chat.completions.create(
                model=MODEL_OA, messages=MSGS, stream=True, stream_options={"include_usage": True}
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "hello world"
    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert wait_until(lambda: server.requests[0].completed)  # the HTTP body did end cleanly


def test_truncated_stream_anthropic_ends_without_message_stop(server):
    server.script(MODEL_AN, [Reply.truncated("hello world, truncated", 11)] * 2)
    with an_client(server) as an:
        events = list(an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True))
        # the stream helper does not complain either: it returns a message with stop_reason None
        with an.messages.stream(model=MODEL_AN, messages=AN_MSGS, max_tokens=5) as stream:
            final = stream.get_final_message()
    types = {e.type for e in events}
    assert "message_stop" not in types and "message_delta" not in types
    assert "".join(text_of(e.delta) for e in events if e.type == "content_block_delta") == "hello world"
    assert final.stop_reason is None
    assert text_of(final.content[0]) == "hello world"


def test_truncated_non_stream_is_cut_json(server):
    server.script(MODEL_OA, Reply.truncated("hello world", 5))
    with oa_client(server) as oa, pytest.raises(json.JSONDecodeError):
        oa.chat.completions.create(model=MODEL_OA, messages=MSGS)


def test_stream_error_anthropic_raises_api_status_error_with_status_200(server):
    server.script(MODEL_AN, Reply.stream_error("some partial text", 5))
    with an_client(server) as an:
        stream = an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True)
        got = ""
        with pytest.raises(anthropic.APIStatusError) as ei:
            for e in stream:
                if e.type == "content_block_delta":
                    got += text_of(e.delta)
    # The class comes from the HTTP status (200), so it is the bare APIStatusError,
    # NOT OverloadedError; the error type is only in `.type` / `.body`.
    assert type(ei.value) is anthropic.APIStatusError
    assert ei.value.status_code == 200
    assert ei.value.type == "overloaded_error"
    assert ei.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert got == "some "


def test_stream_error_openai_raises_plain_api_error():
    async def main():
        with FakeProviderServer() as server:
            server.script(MODEL_OA, Reply.stream_error("some partial text", 5))
            async with aoa_client(server) as client:
                stream = await client.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
                got = ""
                with pytest.raises(openai.APIError) as ei:
                    async for c in stream:
                        got += c.choices[0].delta.content or ""
                return got, ei.value

    got, err = asyncio.run(main())
    # openai raises the base APIError (not an APIStatusError: no status_code / response)
    assert type(err) is openai.APIError
    assert err.message == "Overloaded"
    assert err.body == {
        "message": "Overloaded",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert got == "some "


def test_stream_error_non_stream_maps_to_status(server):
    server.script(MODEL_AN, Reply.stream_error("x", 0))
    with an_client(server) as an, pytest.raises(anthropic.OverloadedError):
        an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5)


# --------------------------------------------------------------------------- client closing early


def test_client_closing_openai_stream_early_is_logged(slow_server):
    slow_server.script(MODEL_OA, Reply.text("x" * 200))

    async def main():
        async with aoa_client(slow_server) as client:
            stream = await client.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
            n = 0
            async for _ in stream:
                n += 1
                if n == 3:
                    break
            await stream.close()

    asyncio.run(main())
    (rec,) = slow_server.requests
    assert wait_until(lambda: rec.client_closed)  # updated in place on the logged object
    assert rec.completed is False


def test_client_closing_anthropic_stream_early_is_logged(slow_server):
    slow_server.script(MODEL_AN, Reply.text("y" * 200))
    with (
        an_client(slow_server) as an,
        an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True) as stream,
    ):
        for i, _ in enumerate(stream):
            if i == 3:
                break
    (rec,) = slow_server.requests
    assert wait_until(lambda: rec.client_closed)
    assert rec.completed is False


def test_full_read_with_chunk_delay_is_completed(slow_server):
    slow_server.script(MODEL_AN, Reply.text("abcdefghijkl", chunk_chars=4))
    t0 = time.monotonic()
    with (
        an_client(slow_server) as an,
        an.messages.stream(model=MODEL_AN, messages=AN_MSGS, max_tokens=5) as stream,
    ):
        assert stream.get_final_text() == "abcdefghijkl"
    assert time.monotonic() - t0 >= 0.05 * 5  # several chunk pauses happened
    (rec,) = slow_server.requests
    assert wait_until(lambda: rec.completed) and rec.client_closed is False


# --------------------------------------------------------------------------- scripting


def test_scripts_are_fifo_per_model_and_fall_back_to_default(server):
    server.script("a", [Reply.text("a1"), Reply.text("a2")])
    server.script("b", [Reply.text("b1")])
    server.script("a", Reply.text("a3"))  # script() appends
    server.default = Reply.text("DEFAULT")
    with oa_client(server) as client:
        got = [
            client.chat.completions.create(model=m, messages=MSGS).choices[0].message.content
            for m in ["a", "b", "a", "b", "a", "a"]
        ]
    assert got == ["a1", "b1", "a2", "DEFAULT", "a3", "DEFAULT"]
    assert [r.model for r in server.requests] == ["a", "b", "a", "b", "a", "a"]
    assert [r.body["model"] for r in server.requests_for("b")] == ["b", "b"]
    assert server.pending("a") == 0


def test_default_is_OK_and_can_be_a_callable(server):
    seen = []

    def answer(req: RecordedRequest) -> Reply:
        seen.append(req)
        return Reply.text(f"{req.wire}:{req.model}:{len(req.body['messages'])}")

    with oa_client(server) as oa, an_client(server) as an:
        assert oa.chat.completions.create(model="m1", messages=MSGS).choices[0].message.content == "OK"
        server.default = answer
        assert (
            oa.chat.completions.create(model="m1", messages=MSGS).choices[0].message.content == "openai:m1:1"
        )
        assert (
            text_of(an.messages.create(model="m2", messages=AN_MSGS, max_tokens=5).content[0])
            == "anthropic:m2:1"
        )
    assert [r.model for r in seen] == ["m1", "m2"]
    assert seen[0] is server.requests[1]


def test_same_script_serves_both_wires(server):
    server.script("shared", [Reply.text("one"), Reply.text("two")])
    with oa_client(server) as oa, an_client(server) as an:
        assert oa.chat.completions.create(model="shared", messages=MSGS).choices[0].message.content == "one"
        assert text_of(an.messages.create(model="shared", messages=AN_MSGS, max_tokens=5).content[0]) == "two"
    assert [r.wire for r in server.requests_for("shared")] == ["openai", "anthropic"]


def test_reset_clears_scripts_and_log_and_requests_is_a_copy(server):
    server.script(MODEL_OA, [Reply.text("scripted")])
    with oa_client(server) as oa:
        oa.chat.completions.create(model="other", messages=MSGS)
        snapshot = server.requests
        snapshot.clear()
        assert len(server.requests) == 1  # mutating the snapshot does not touch the log
        server.reset()
        assert server.requests == []
        assert oa.chat.completions.create(model=MODEL_OA, messages=MSGS).choices[0].message.content == "OK"
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- HTTP plumbing


def test_keep_alive_reuses_one_connection(server):
    with oa_client(server) as oa, an_client(server) as an:
        for _ in range(20):
            oa.chat.completions.create(model=MODEL_OA, messages=MSGS)
        for _ in range(5):
            list(an.messages.create(model=MODEL_AN, messages=AN_MSGS, max_tokens=5, stream=True))
    assert len(server.requests) == 25
    assert server.connections == 2  # one per client


def test_sync_openai_stream_closes_its_connection(server):
    # SDK behaviour worth knowing for benchmarks: the sync openai Stream stops at [DONE] and
    # closes the response without reading the end of the chunked body, so httpcore drops the
    # connection: each sync openai stream costs a new TCP connection. (AsyncStream drains it.)
    with oa_client(server) as oa:
        for _ in range(3):
            list(oa.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True))
    assert server.connections == 3
    # the server marks a reply completed after the client may have read it: wait for the mark
    assert wait_until(lambda: all(r.completed for r in server.requests))
    assert not any(r.client_closed for r in server.requests)

    async def main():
        async with aoa_client(server) as aoa:
            for _ in range(3):
                stream = await aoa.chat.completions.create(model=MODEL_OA, messages=MSGS, stream=True)
                async for _ in stream:
                    pass

    asyncio.run(main())
    assert server.connections == 4


def test_many_concurrent_requests():
    async def main():
        with FakeProviderServer() as server:
            async with aoa_client(server) as oa, aan_client(server) as an:

                async def one(i: int) -> str | None:
                    if i % 2:
                        c = await oa.chat.completions.create(model=f"m{i}", messages=MSGS)
                        return c.choices[0].message.content
                    stream = await an.messages.create(
                        model=f"m{i}", messages=AN_MSGS, max_tokens=5, stream=True
                    )
                    return "".join(
                        [text_of(e.delta) async for e in stream if e.type == "content_block_delta"]
                    )

                out = await asyncio.gather(*[one(i) for i in range(200)])
            return server, out

    server, out = asyncio.run(main())
    assert out == ["OK"] * 200
    assert len(server.requests) == 200
    assert all(r.completed for r in server.requests)
    assert server.connections > 50  # they really were concurrent


def test_unknown_path_is_404_in_wire_format(server):
    with oa_client(server) as oa, pytest.raises(openai.NotFoundError):
        oa.models.list()
    with an_client(server) as an, pytest.raises(anthropic.NotFoundError) as ei:
        an.models.list()
    assert ei.value.type == "not_found_error"
    assert [r.reply_kind for r in server.requests] == ["not_found", "not_found"]


def test_non_json_body_is_400_and_chunked_body_is_accepted(server):
    with httpx2.Client(base_url=server.openai_base_url) as http:
        bad = http.post(
            "/chat/completions", content=b"not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"

        body = json.dumps({"model": "chunky", "messages": MSGS}).encode()

        def gen():  # no length known -> Transfer-Encoding: chunked
            yield body[:10]
            yield body[10:]

        ok = http.post("/chat/completions", content=gen())
        assert ok.status_code == 200
        assert ok.json()["choices"][0]["message"]["content"] == "OK"
    recs = server.requests
    assert recs[0].reply_kind == "bad_request"
    assert recs[1].model == "chunky" and recs[1].headers.get("transfer-encoding") == "chunked"


def test_stop_is_prompt_with_idle_and_stalled_connections():
    server = FakeProviderServer().start()
    idle = socket.create_connection(("127.0.0.1", server.port))
    server.script(MODEL_OA, Reply.stall(30))
    errors = []

    def call():
        with oa_client(server, timeout=30) as oa:
            try:
                oa.chat.completions.create(model=MODEL_OA, messages=MSGS)
            except Exception as e:
                errors.append(e)

    t = threading.Thread(target=call)
    t.start()
    assert wait_until(lambda: len(server.requests) == 1)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 3
    t.join(5)
    assert not t.is_alive()
    assert isinstance(errors[0], openai.APIConnectionError)
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
