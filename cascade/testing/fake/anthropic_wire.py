"""Replies as Anthropic messages: the JSON body, or the named events of a stream
(message_start, content blocks, message_delta, message_stop; the server frames them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cascade.testing.fake.content import (
    dumps,
    error_message,
    finish_reason,
    input_tokens,
    output_tokens,
    split,
    tool_arguments,
    tool_name,
)
from cascade.testing.fake.replies import Call, Reply

REQUEST_ID_HEADER = "request-id"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# the status a stream's error event takes when the request did not stream
_STREAM_ERROR_STATUS = {"overloaded_error": 529, "rate_limit_error": 429}


def error_body(code: int, message: str | None, error_type: str | None, rid: int) -> dict[str, Any]:
    """An HTTP error's body, with the error type the anthropic SDK maps ``code`` to."""
    et = error_type or _ERROR_TYPES.get(code) or ("api_error" if code >= 500 else "invalid_request_error")
    return {
        "type": "error",
        "error": {"type": et, "message": error_message(code, message)},
        "request_id": f"req_fake_{rid}",
    }


def stream_error_status(error_type: str) -> int:
    """The HTTP status a ``Reply.stream_error`` answers with when the request did not stream."""
    return _STREAM_ERROR_STATUS.get(error_type, 500)


def _event(name: str, payload: dict[str, Any] | str) -> bytes:
    s = payload if isinstance(payload, str) else dumps(payload)
    return f"event: {name}\ndata: {s}\n\n".encode()


def _message(call: Call, content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
    return {
        "id": f"msg_fake{call.rid}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
    }


def _usage_in(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
    """``message_start``'s usage: output tokens are not known yet."""
    return {
        "input_tokens": input_tokens(reply, body),
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _tool_use_block(call: Call, name: str | None, input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_fake{call.rid}", "name": name, "input": input}


def completion(call: Call, reply: Reply) -> dict[str, Any]:
    """A text answer, or a ``tool_use`` reply's block, as a message."""
    if reply.kind == "tool_use":
        out_text = dumps(reply.tool_input)
        content = [_tool_use_block(call, tool_name(call.body, reply), reply.tool_input)]
        stop = "tool_use"
    else:
        out_text = reply.content
        content = [{"type": "text", "text": reply.content}]
        stop = finish_reason(reply, "anthropic")
    payload = _message(call, content, stop)
    if reply.usage:
        payload["usage"] = {
            "input_tokens": input_tokens(reply, call.body),
            "output_tokens": output_tokens(reply, out_text),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    return payload


def message_completion(call: Call, reply: Reply) -> dict[str, Any]:
    """A tool call (after any text block) or a refusal as a message."""
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.content}] if reply.content else []
    arguments = tool_arguments(reply)
    if reply.kind == "tool_call":
        content.append(_tool_use_block(call, reply.tool_name, reply.tool_input))
    payload = _message(call, content, "tool_use" if reply.kind == "tool_call" else "refusal")
    if reply.usage:
        payload["usage"] = {
            "input_tokens": input_tokens(reply, call.body),
            "output_tokens": output_tokens(reply, reply.content + arguments),
        }
    return payload


def _start(call: Call, reply: Reply, usage: bool) -> bytes:
    message = _message(call, [], None)
    if usage:
        message["usage"] = _usage_in(reply, call.body)
    return _event("message_start", {"type": "message_start", "message": message})


def _delta(index: int, delta_type: str, delta_key: str, piece: str) -> bytes:
    delta = {"type": delta_type, delta_key: piece}
    return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _stop(reply: Reply, stop: str, output_text: str, usage: bool) -> list[bytes | float]:
    """``message_delta`` with the stop reason (and output tokens), then ``message_stop``."""
    md: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
    if usage:
        md["usage"] = {"output_tokens": output_tokens(reply, output_text)}
    return [_event("message_delta", md), _event("message_stop", '{"type":"message_stop"}')]


def malformed_stream(call: Call, reply: Reply) -> list[bytes | float]:
    """A valid ``message_start``, then a ``data:`` line that is not JSON."""
    bad = f"event: content_block_delta\ndata: {reply.body}\n\n".encode()
    return [_start(call, reply, reply.usage), bad]


def stream(
    call: Call,
    reply: Reply,
    pieces: Sequence[str | float],
    ending: Literal["full", "error", "none"],
    full_text: str,
) -> list[bytes | float]:
    """A text answer (or a ``tool_use`` reply's input) in one block: ``pieces`` are
    deltas or pauses in seconds; ``ending`` closes the block and the message, sends an
    error event, or sends nothing more."""
    block: dict[str, Any]
    if reply.kind == "tool_use":
        block = _tool_use_block(call, tool_name(call.body, reply), {})
        delta_type, delta_key, stop = "input_json_delta", "partial_json", "tool_use"
    else:
        block = {"type": "text", "text": ""}
        delta_type, delta_key, stop = "text_delta", "text", finish_reason(reply, "anthropic")
    events: list[bytes | float] = [
        _start(call, reply, reply.usage),
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        _event("ping", '{"type":"ping"}'),
    ]
    for p in pieces:
        events.append(p if isinstance(p, float) else _delta(0, delta_type, delta_key, p))
    if ending == "full":
        events.append(_event("content_block_stop", '{"type":"content_block_stop","index":0}'))
        events += _stop(reply, stop, full_text, reply.usage)
    elif ending == "error":
        et = reply.error_type or "overloaded_error"
        msg = reply.message or ("Overloaded" if et == "overloaded_error" else "Internal server error")
        events.append(_event("error", {"type": "error", "error": {"type": et, "message": msg}}))
    return events


def message_stream(call: Call, reply: Reply) -> list[bytes | float]:
    """A tool call (after any text block) or a refusal, as events; usage always included."""
    blocks: list[tuple[dict[str, Any], str, str, str]] = []  # block, delta type, delta key, text
    if reply.content:
        blocks.append(({"type": "text", "text": ""}, "text_delta", "text", reply.content))
    arguments = tool_arguments(reply)
    if reply.kind == "tool_call":
        tool = _tool_use_block(call, reply.tool_name, {})
        blocks.append((tool, "input_json_delta", "partial_json", arguments))
    events: list[bytes | float] = [_start(call, reply, True)]
    for index, (block, delta_type, delta_key, text) in enumerate(blocks):
        start = {"type": "content_block_start", "index": index, "content_block": block}
        events.append(_event("content_block_start", start))
        events += [_delta(index, delta_type, delta_key, piece) for piece in split(text, reply.chunk_chars)]
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = "tool_use" if reply.kind == "tool_call" else "refusal"
    return events + _stop(reply, stop, reply.content + arguments, True)
