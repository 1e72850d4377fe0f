"""Replies as OpenAI chat.completions: the JSON body, or the ``data:`` events of a stream
(each event's bytes; the server frames them), with logprobs and usage when asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cascade.testing.fake.content import (
    answer_text,
    dumps,
    error_message,
    finish_reason,
    input_tokens,
    output_tokens,
    split,
    split_even,
    tool_arguments,
)
from cascade.testing.fake.replies import Call, Reply

REQUEST_ID_HEADER = "x-request-id"

# what an unfinished stream's `error_type` becomes here, and the status it takes without a stream
_STREAM_ERROR_TYPES = {"overloaded_error": "server_error", "api_error": "server_error"}
_STREAM_ERROR_STATUS = {"overloaded_error": 503, "rate_limit_error": 429}


def error_body(code: int, message: str | None, error_type: str | None) -> dict[str, Any]:
    """An HTTP error's body, with the type and code the openai SDK sees for ``code``."""
    if error_type:
        et, oa_code = error_type, None
    elif code == 401:
        et, oa_code = "invalid_request_error", "invalid_api_key"
    elif code == 429:
        et, oa_code = "requests", "rate_limit_exceeded"
    elif code == 404:
        et, oa_code = "invalid_request_error", "not_found"
    elif code >= 500:
        et, oa_code = "server_error", None
    else:
        et, oa_code = "invalid_request_error", None
    return {"error": {"message": error_message(code, message), "type": et, "param": None, "code": oa_code}}


def stream_error_status(error_type: str) -> int:
    """The HTTP status a ``Reply.stream_error`` answers with when the request did not stream."""
    return _STREAM_ERROR_STATUS.get(error_type, 500)


def logprobs_for(call: Call, reply: Reply) -> tuple[float, ...] | None:
    """The scripted logprobs, if the request asked for them."""
    return reply.logprobs if reply.logprobs is not None and call.body.get("logprobs") else None


def _usage(reply: Reply, body: dict[str, Any], text: str) -> dict[str, int]:
    i, o = input_tokens(reply, body), output_tokens(reply, text)
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


def _logprob_entry(token: str, lp: float) -> dict[str, Any]:
    return {"token": token, "logprob": lp, "bytes": None, "top_logprobs": []}


def _head(call: Call, object_: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-fake{call.rid}", "object": object_, "created": call.created, "model": call.model}


def _event(payload: dict[str, Any] | str) -> bytes:
    s = payload if isinstance(payload, str) else dumps(payload)
    return f"data: {s}\n\n".encode()


def completion(call: Call, reply: Reply) -> dict[str, Any]:
    """A text answer (a ``tool_use`` reply's input as its text) as a chat.completion."""
    text = answer_text(reply)
    logprobs = None
    scripted = logprobs_for(call, reply)
    if scripted is not None:
        tokens = split_even(text, len(scripted))
        logprobs = {
            "content": [_logprob_entry(t, lp) for t, lp in zip(tokens, scripted, strict=False)],
            "refusal": None,
        }
    payload: dict[str, Any] = {
        **_head(call, "chat.completion"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": logprobs,
                "finish_reason": finish_reason(reply, "openai"),
            }
        ],
        "system_fingerprint": None,
    }
    if reply.usage:
        payload["usage"] = _usage(reply, call.body, text)
    return payload


def message_completion(call: Call, reply: Reply) -> dict[str, Any]:
    """A tool call or a refusal as a chat.completion."""
    arguments = tool_arguments(reply)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
    if reply.kind == "tool_call":
        function = {"name": reply.tool_name or "tool", "arguments": arguments}
        message["tool_calls"] = [{"id": f"call_fake{call.rid}", "type": "function", "function": function}]
        finish = "tool_calls"
    else:
        message["content"], message["refusal"], finish = None, reply.content, "stop"
    payload: dict[str, Any] = {
        **_head(call, "chat.completion"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if reply.usage:
        payload["usage"] = _usage(reply, call.body, reply.content + arguments)
    return payload


def _text_chunk(call: Call, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
    return _event({**_head(call, "chat.completion.chunk"), "choices": [choice]})


def _usage_and_done(call: Call, reply: Reply, text: str) -> list[bytes | float]:
    """The usage chunk (only when ``stream_options.include_usage`` asks for it), then [DONE]."""
    events: list[bytes | float] = []
    so = call.body.get("stream_options")
    if reply.usage and isinstance(so, dict) and so.get("include_usage"):
        events.append(
            _event(
                {
                    **_head(call, "chat.completion.chunk"),
                    "choices": [],
                    "usage": _usage(reply, call.body, text),
                }
            )
        )
    events.append(_event("[DONE]"))
    return events


def malformed_stream(call: Call, reply: Reply) -> list[bytes | float]:
    """A valid first chunk, then a ``data:`` line that is not JSON."""
    return [_text_chunk(call, {"role": "assistant", "content": ""}), f"data: {reply.body}\n\n".encode()]


def stream(
    call: Call,
    reply: Reply,
    pieces: Sequence[str | float],
    ending: Literal["full", "error", "none"],
    full_text: str,
    logprobs: Sequence[float] | None = None,
) -> list[bytes | float]:
    """A text answer's chunks: ``pieces`` are content (the i-th text piece carries
    ``logprobs[i]``) or pauses in seconds; ``ending`` is the finish chunk with usage and
    [DONE], an in-stream error, or nothing."""
    events: list[bytes | float] = [_text_chunk(call, {"role": "assistant", "content": ""})]
    idx = 0
    for p in pieces:
        if isinstance(p, float):
            events.append(p)
            continue
        lp: Any = None
        if logprobs is not None and idx < len(logprobs):
            lp = {"content": [_logprob_entry(p, logprobs[idx])], "refusal": None}
        idx += 1
        events.append(_text_chunk(call, {"content": p}, logprobs=lp))
    if ending == "full":
        events.append(_text_chunk(call, {}, finish=finish_reason(reply, "openai")))
        events += _usage_and_done(call, reply, full_text)
    elif ending == "error":
        et = _STREAM_ERROR_TYPES.get(reply.error_type or "", reply.error_type or "server_error")
        msg = reply.message or (
            "Overloaded"
            if reply.error_type == "overloaded_error"
            else "The server had an error while processing your request."
        )
        events.append(_event({"error": {"message": msg, "type": et, "param": None, "code": None}}))
    return events


def message_stream(call: Call, reply: Reply) -> list[bytes | float]:
    """A tool call (after any text) or a refusal, as chunks."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        # these chunks carry no "logprobs" key, unlike a text answer's
        return _event(
            {
                **_head(call, "chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    events: list[bytes | float] = [chunk({"role": "assistant", "content": None})]
    arguments = tool_arguments(reply)
    if reply.kind == "tool_call":
        events += [chunk({"content": piece}) for piece in split(reply.content, reply.chunk_chars)]
        call_head = {"index": 0, "id": f"call_fake{call.rid}", "type": "function"}
        events.append(
            chunk({"tool_calls": [{**call_head, "function": {"name": reply.tool_name, "arguments": ""}}]})
        )
        for piece in split(arguments, reply.chunk_chars):
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        events.append(chunk({}, finish="tool_calls"))
    else:
        events += [chunk({"refusal": piece}) for piece in split(reply.content, reply.chunk_chars)]
        events.append(chunk({}, finish="stop"))
    return events + _usage_and_done(call, reply, reply.content + arguments)
