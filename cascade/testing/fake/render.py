"""Which response answers a request: the reply's kind, the request's wire and its
``stream`` flag choose between a JSON body, an SSE stream, an HTTP error and a fault.

The result is a `Plan`, still free of HTTP framing, which the server then sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from cascade.testing.fake import anthropic_wire, openai_wire
from cascade.testing.fake.content import answer_text, dumps, split, split_even
from cascade.testing.fake.replies import Call, Reply


@dataclass
class Plan:
    """How to answer one request: wait ``pre_delay`` seconds, then send ``status`` with
    ``headers`` and ``body`` or, when ``streaming``, the SSE ``events`` one chunk each
    (a float is a pause in seconds).  ``cut`` closes the TCP connection instead of
    ending the body; with ``status`` None nothing is sent before the cut."""

    status: int | None
    headers: list[tuple[str, str]]  # the server adds content type, framing and connection
    body: bytes = b""
    events: list[bytes | float] = field(default_factory=list)
    streaming: bool = False
    cut: bool = False
    pre_delay: float = 0.0


def _id_headers(call: Call) -> list[tuple[str, str]]:
    name = openai_wire.REQUEST_ID_HEADER if call.wire == "openai" else anthropic_wire.REQUEST_ID_HEADER
    return [(name, f"req_fake_{call.rid}")]


def json_plan(
    call: Call,
    payload: dict[str, Any] | str | bytes,
    *,
    status: int = 200,
    extra: Iterable[tuple[str, str]] = (),
    pre_delay: float = 0.0,
) -> Plan:
    """A plain response; a str or bytes payload goes out as it is, JSON or not."""
    if isinstance(payload, dict):
        data = dumps(payload).encode()
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = payload
    return Plan(status, [*_id_headers(call), *extra], body=data, pre_delay=pre_delay)


def error_plan(
    call: Call,
    code: int,
    *,
    message: str | None = None,
    error_type: str | None = None,
    retry_after: int | float | str | None = None,
    pre_delay: float = 0.0,
) -> Plan:
    """An HTTP error with the body ``call.wire``'s SDK expects (and ``retry-after``)."""
    extra = []
    if retry_after is not None:
        if isinstance(retry_after, float) and retry_after.is_integer():
            retry_after = int(retry_after)
        extra.append(("retry-after", str(retry_after)))
    if call.wire == "openai":
        body = openai_wire.error_body(code, message, error_type)
    else:
        body = anthropic_wire.error_body(code, message, error_type, call.rid)
    return json_plan(call, body, status=code, extra=extra, pre_delay=pre_delay)


def _stream_plan(
    call: Call, events: list[bytes | float], *, cut: bool = False, pre_delay: float = 0.0
) -> Plan:
    return Plan(200, _id_headers(call), events=events, streaming=True, cut=cut, pre_delay=pre_delay)


def _plain(call: Call, reply: Reply, pre: float) -> Plan:
    """The answer to a request that did not ask to stream."""
    kind = reply.kind
    openai = call.wire == "openai"
    if kind == "malformed":
        return json_plan(call, reply.body, pre_delay=pre)
    if kind == "drop":
        return Plan(None, [], cut=True, pre_delay=pre)
    if kind == "stream_error":
        et = reply.error_type or "overloaded_error"
        if openai:
            return error_plan(call, openai_wire.stream_error_status(et), message=reply.message, pre_delay=pre)
        code = anthropic_wire.stream_error_status(et)
        return error_plan(call, code, message=reply.message, error_type=et, pre_delay=pre)
    payload = openai_wire.completion(call, reply) if openai else anthropic_wire.completion(call, reply)
    if kind == "truncated":
        body = dumps(payload).encode()
        return json_plan(call, body[: max(1, len(body) // 2)], pre_delay=pre)
    return json_plan(call, payload, pre_delay=pre)


def _streamed(call: Call, reply: Reply, pre: float) -> Plan:
    """The answer to a request with ``"stream": true``."""
    kind = reply.kind
    openai = call.wire == "openai"
    if kind == "malformed":
        events = (
            openai_wire.malformed_stream(call, reply)
            if openai
            else anthropic_wire.malformed_stream(call, reply)
        )
        return _stream_plan(call, events)  # delay_s is not applied to a malformed stream
    full_text = answer_text(reply)
    logprobs = None
    ending: Literal["full", "error", "none"]
    pieces: list[str | float]
    if kind in ("text", "tool_use", "stall"):
        ending = "full"
        logprobs = openai_wire.logprobs_for(call, reply) if openai else None
        if logprobs is not None:
            pieces = list(split_even(full_text, len(logprobs)))
        else:
            pieces = list(split(full_text, reply.chunk_chars))
    else:
        pieces = list(split(full_text[: reply.after_chars], reply.chunk_chars))
        if kind == "stall_mid_stream":
            ending = "full"
            pieces.append(float(reply.seconds))
            pieces.extend(split(full_text[reply.after_chars :], reply.chunk_chars))
        elif kind in ("drop", "truncated"):
            ending = "none"
        elif kind == "stream_error":
            ending = "error"
        else:
            raise ValueError(f"unknown reply kind {kind!r}")
    if openai:
        events = openai_wire.stream(call, reply, pieces, ending, full_text, logprobs)
    else:
        events = anthropic_wire.stream(call, reply, pieces, ending, full_text)
    return _stream_plan(call, events, cut=kind == "drop", pre_delay=pre)


def render(call: Call, reply: Reply) -> Plan:
    """How ``reply`` answers ``call``; raises ValueError for a kind it cannot stream."""
    pre = reply.delay_s
    if reply.kind == "status":
        return error_plan(
            call,
            reply.status_code,
            message=reply.message,
            error_type=reply.error_type,
            retry_after=reply.retry_after,
            pre_delay=pre,
        )
    if reply.kind == "stall" or (reply.kind == "stall_mid_stream" and not call.stream):
        pre += reply.seconds
    openai = call.wire == "openai"
    if reply.kind in ("tool_call", "refusal"):
        if call.stream:
            events = (
                openai_wire.message_stream(call, reply)
                if openai
                else anthropic_wire.message_stream(call, reply)
            )
            return _stream_plan(call, events, pre_delay=pre)
        payload = (
            openai_wire.message_completion(call, reply)
            if openai
            else anthropic_wire.message_completion(call, reply)
        )
        return json_plan(call, payload, pre_delay=pre)
    return _streamed(call, reply, pre) if call.stream else _plain(call, reply, pre)
