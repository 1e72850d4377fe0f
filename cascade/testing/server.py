"""A fake LLM provider HTTP server for tests and benchmarks.

The server speaks just enough HTTP/1.1 (keep-alive, Content-Length and chunked
request bodies, chunked streaming responses) for the real ``openai`` and
``anthropic`` SDKs to talk to it over a real loopback socket:

* ``POST /v1/chat/completions`` -- OpenAI chat.completions wire format
* ``POST /v1/messages``         -- Anthropic messages wire format

Replies are scripted per model (the ``model`` field of the request body) as a
FIFO queue of :class:`Reply` objects; when a model's queue is empty
``server.default`` answers (a :class:`Reply` or a callable
``(RecordedRequest) -> Reply``).  Every request is logged as a
:class:`RecordedRequest`, which the server updates in place as the reply goes
out (``completed`` / ``client_closed``).

Example::

    with FakeProviderServer() as server:
        server.script("gpt-4o-mini", [Reply.status(500), Reply.text("hello")])
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)
        ...

Standard library only.  The asyncio loop runs in a daemon thread, so the
server can be used from synchronous tests and from other event loops alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["FakeProviderServer", "RecordedRequest", "Reply", "ReplySource"]

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
_ROUTES = {OPENAI_PATH: "openai", ANTHROPIC_PATH: "anthropic"}

DEFAULT_DROP_TEXT = (
    "The quick brown fox jumps over the lazy dog, and then the connection to the "
    "server was lost somewhere in the middle of this rather long sentence."
)

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_POLL_S = 0.02  # how often a sleeping reply checks whether the client went away
_MAX_HEADER_BYTES = 1 << 20

# finish reasons that have an equivalent in the other wire format
_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "stop_sequence": "stop",
    "refusal": "content_filter",
}
_TO_ANTHROPIC_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_ANTHROPIC_ERROR_TYPES = {
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

_DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Invalid API key",
    403: "Permission denied",
    404: "Not found",
    429: "Rate limit exceeded",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    529: "Overloaded",
}


def _reason(code: int) -> str:
    if code == 529:
        return "Site Overloaded"
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Reply:
    """One scripted answer.  Build it with the classmethod constructors.

    Every reply renders in the wire format of the request it answers (OpenAI or
    Anthropic), as JSON or as SSE when the request body has ``"stream": true``.
    """

    kind: str
    content: str = ""  # the answer text (`Reply.text` is the constructor)
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    usage: bool = True
    delay_s: float = 0.0
    logprobs: tuple[float, ...] | None = None
    chunk_chars: int = 8
    tool_input: Any = None
    tool_name: str | None = None
    status_code: int = 200
    retry_after: int | float | str | None = None
    message: str | None = None
    error_type: str | None = None
    body: str = ""
    seconds: float = 0.0
    after_chars: int = 0

    # -- constructors -------------------------------------------------------

    @classmethod
    def text(
        cls,
        text: str,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reason: str | None = None,
        usage: bool = True,
        delay_s: float = 0.0,
        logprobs: Iterable[float] | None = None,
        chunk_chars: int = 8,
    ) -> Reply:
        """A normal answer.

        ``finish_reason`` defaults to "stop" / "end_turn"; "length" and
        "max_tokens" are translated to the other wire's spelling.  ``usage=False``
        omits usage entirely.  ``logprobs`` (one float per token) splits the
        text into ``len(logprobs)`` near-equal tokens which are also the stream's
        content chunks; rendered only when the request asked ``logprobs: true``
        (OpenAI).  ``delay_s`` waits before sending anything.
        """
        return cls(
            kind="text",
            content=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish_reason,
            usage=usage,
            delay_s=delay_s,
            logprobs=tuple(float(x) for x in logprobs) if logprobs is not None else None,
            chunk_chars=max(1, int(chunk_chars)),
        )

    @classmethod
    def tool_use(
        cls,
        input: dict[str, Any],
        *,
        name: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        usage: bool = True,
        delay_s: float = 0.0,
        chunk_chars: int = 8,
    ) -> Reply:
        """Anthropic: a ``tool_use`` block (stop_reason "tool_use"); the name
        defaults to the tool forced by ``tool_choice``, else the first tool.
        OpenAI: plain text content ``json.dumps(input)``."""
        return cls(
            kind="tool_use",
            tool_input=input,
            tool_name=name,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usage=usage,
            delay_s=delay_s,
            chunk_chars=max(1, int(chunk_chars)),
        )

    @classmethod
    def tool_call(
        cls,
        arguments: dict[str, Any],
        *,
        name: str = "lookup",
        text: str = "",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        usage: bool = True,
        delay_s: float = 0.0,
        chunk_chars: int = 8,
    ) -> Reply:
        """The model calls a tool instead of answering (after ``text``, if any).
        OpenAI: ``message.tool_calls`` (content null without text), finish_reason
        "tool_calls". Anthropic: a ``tool_use`` block after any text block,
        stop_reason "tool_use". Streams send the arguments in pieces."""
        return cls(
            kind="tool_call",
            content=text,
            tool_input=arguments,
            tool_name=name,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usage=usage,
            delay_s=delay_s,
            chunk_chars=max(1, int(chunk_chars)),
        )

    @classmethod
    def refusal(cls, text: str, *, chunk_chars: int = 8, delay_s: float = 0.0) -> Reply:
        """The model refuses. OpenAI: ``message.refusal`` (content null), finish_reason
        "stop", as structured outputs do. Anthropic: the text with stop_reason "refusal"."""
        return cls(kind="refusal", content=text, chunk_chars=max(1, int(chunk_chars)), delay_s=delay_s)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: int | float | str | None = None,
        message: str | None = None,
        error_type: str | None = None,
        delay_s: float = 0.0,
    ) -> Reply:
        """An HTTP error with a wire-correct error body (and ``retry-after``)."""
        return cls(
            kind="status",
            status_code=int(code),
            retry_after=retry_after,
            message=message,
            error_type=error_type,
            delay_s=delay_s,
        )

    @classmethod
    def malformed(cls, body: str = "<html>oops", *, delay_s: float = 0.0) -> Reply:
        """200 + ``application/json`` whose body is not JSON; for a stream, a
        ``data:`` line that is not JSON (after the first, valid event)."""
        return cls(kind="malformed", body=body, delay_s=delay_s)

    @classmethod
    def stall(cls, seconds: float, *, text: str = "late") -> Reply:
        """Send nothing for ``seconds``, then a normal answer ``text`` if the
        client is still connected."""
        return cls(kind="stall", seconds=float(seconds), content=text)

    @classmethod
    def drop(
        cls,
        after_chars: int = 0,
        *,
        text: str = DEFAULT_DROP_TEXT,
        chunk_chars: int = 8,
        delay_s: float = 0.0,
    ) -> Reply:
        """Non-stream: close the socket without any response.  Stream: send the
        head and ``text[:after_chars]``, then close the TCP connection in the
        middle of the chunked body (no terminal event, no chunk terminator)."""
        return cls(
            kind="drop",
            content=text,
            after_chars=max(0, int(after_chars)),
            chunk_chars=max(1, int(chunk_chars)),
            delay_s=delay_s,
        )

    @classmethod
    def truncated(
        cls,
        text: str,
        after_chars: int,
        *,
        chunk_chars: int = 8,
        input_tokens: int | None = None,
        usage: bool = True,
        delay_s: float = 0.0,
    ) -> Reply:
        """Stream: ``text[:after_chars]`` then a clean end of the HTTP body,
        without the terminal events.  Non-stream: a 200 JSON body cut off in the
        middle (clean Content-Length, invalid JSON)."""
        return cls(
            kind="truncated",
            content=text,
            after_chars=max(0, int(after_chars)),
            chunk_chars=max(1, int(chunk_chars)),
            input_tokens=input_tokens,
            usage=usage,
            delay_s=delay_s,
        )

    @classmethod
    def stream_error(
        cls,
        text: str,
        after_chars: int,
        *,
        error_type: str = "overloaded_error",
        message: str | None = None,
        chunk_chars: int = 8,
        delay_s: float = 0.0,
    ) -> Reply:
        """Stream: ``text[:after_chars]`` then an in-stream error event, then a
        clean end.  Non-stream: the matching HTTP error status (Anthropic:
        overloaded_error -> 529, rate_limit_error -> 429, else 500; OpenAI:
        overloaded -> 503, rate limit -> 429, else 500)."""
        return cls(
            kind="stream_error",
            content=text,
            after_chars=max(0, int(after_chars)),
            error_type=error_type,
            message=message,
            chunk_chars=max(1, int(chunk_chars)),
            delay_s=delay_s,
        )

    @classmethod
    def stall_mid_stream(
        cls,
        text: str,
        after_chars: int,
        seconds: float,
        *,
        chunk_chars: int = 8,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reason: str | None = None,
        usage: bool = True,
    ) -> Reply:
        """Stream: ``text[:after_chars]``, silence for ``seconds``, then the
        rest normally.  Non-stream: wait ``seconds``, then the whole answer."""
        return cls(
            kind="stall_mid_stream",
            content=text,
            after_chars=max(0, int(after_chars)),
            seconds=float(seconds),
            chunk_chars=max(1, int(chunk_chars)),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish_reason,
            usage=usage,
        )


@dataclass
class RecordedRequest:
    """One request as the server saw it.  ``completed`` and ``client_closed``
    are updated in place while/after the reply is sent."""

    wire: str  # "openai" | "anthropic"
    path: str  # request target as sent (including any query string)
    model: str
    body: dict[str, Any]
    headers: dict[str, str]  # lower-case names
    stream: bool
    reply_kind: str = ""
    client_closed: bool = False
    completed: bool = False
    method: str = "POST"
    received_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None


ReplySource = Reply | Callable[[RecordedRequest], Reply]
"""What a script queue or ``server.default`` holds."""


# --------------------------------------------------------------------------- rendering


@dataclass
class _Plan:
    """How to send a reply: ``head`` (status line, headers and, for plain
    responses, the body), then ``events`` (already chunk-framed ``bytes``, or a
    ``float`` = pause in seconds), then ``tail``; ``end`` tells what to do with
    the connection afterwards ("keep", "close" or "abort")."""

    head: bytes
    events: list[bytes | float] = field(default_factory=list)
    tail: bytes = b""
    pre_delay: float = 0.0
    end: str = "keep"
    streaming: bool = False


class _Ctx:
    __slots__ = ("body", "created", "keep_alive", "model", "rid", "stream", "wire")

    def __init__(self, wire: str, model: str, body: dict[str, Any], stream: bool, rid: int, keep_alive: bool):
        self.wire = wire
        self.model = model
        self.body = body
        self.stream = stream
        self.rid = rid
        self.created = int(time.time())
        self.keep_alive = keep_alive


def _head(code: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {code} {_reason(code)}"]
    for k, v in headers:
        lines.append(f"{k}: {v}")
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _id_headers(ctx: _Ctx) -> list[tuple[str, str]]:
    if ctx.wire == "anthropic":
        return [("request-id", f"req_fake_{ctx.rid}")]
    return [("x-request-id", f"req_fake_{ctx.rid}")]


def _json_response(
    ctx: _Ctx,
    code: int,
    payload: bytes | str | dict[str, Any],
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    if isinstance(payload, dict):
        data = _DUMPS(payload).encode()
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = payload
    headers = [("content-type", "application/json"), ("content-length", str(len(data)))]
    headers.extend(_id_headers(ctx))
    headers.extend(extra)
    return _head(code, headers, ctx.keep_alive) + data


def _stream_head(ctx: _Ctx) -> bytes:
    headers = [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("transfer-encoding", "chunked"),
        ("cache-control", "no-cache"),
    ]
    headers.extend(_id_headers(ctx))
    return _head(200, headers, ctx.keep_alive)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _oa_event(payload: dict[str, Any] | str) -> bytes:
    s = payload if isinstance(payload, str) else _DUMPS(payload)
    return _chunk(f"data: {s}\n\n".encode())


def _an_event(name: str, payload: dict[str, Any] | str) -> bytes:
    s = payload if isinstance(payload, str) else _DUMPS(payload)
    return _chunk(f"event: {name}\ndata: {s}\n\n".encode())


_TAIL = b"0\r\n\r\n"


def _split(text: str, n: int) -> list[str]:
    return [text[i : i + n] for i in range(0, len(text), n)]


def _split_even(text: str, parts: int) -> list[str]:
    if parts <= 0:
        return []
    size, extra = divmod(len(text), parts)
    out, pos = [], 0
    for i in range(parts):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def _input_tokens(reply: Reply, body: dict[str, Any]) -> int:
    if reply.input_tokens is not None:
        return reply.input_tokens
    n = len(_DUMPS(body.get("messages") or []))
    system = body.get("system")
    if system:
        n += len(_DUMPS(system))
    return max(1, n // 4)


def _output_tokens(reply: Reply, text: str) -> int:
    if reply.output_tokens is not None:
        return reply.output_tokens
    return max(1, len(text) // 4)


def _finish(reply: Reply, wire: str) -> str:
    fr = reply.finish_reason
    if wire == "openai":
        return _TO_OPENAI_FINISH.get(fr, fr) if fr else "stop"
    return _TO_ANTHROPIC_FINISH.get(fr, fr) if fr else "end_turn"


def _error_payload(
    wire: str, code: int, message: str | None, error_type: str | None, rid: int
) -> dict[str, Any]:
    msg = message or _DEFAULT_MESSAGES.get(code) or _reason(code)
    if wire == "anthropic":
        et = (
            error_type
            or _ANTHROPIC_ERROR_TYPES.get(code)
            or ("api_error" if code >= 500 else "invalid_request_error")
        )
        return {
            "type": "error",
            "error": {"type": et, "message": msg},
            "request_id": f"req_fake_{rid}",
        }
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
    return {"error": {"message": msg, "type": et, "param": None, "code": oa_code}}


def _error_response(
    ctx: _Ctx,
    code: int,
    *,
    message: str | None = None,
    error_type: str | None = None,
    retry_after: Any = None,
) -> bytes:
    extra = []
    if retry_after is not None:
        ra = retry_after
        if isinstance(ra, float) and ra.is_integer():
            ra = int(ra)
        extra.append(("retry-after", str(ra)))
    return _json_response(ctx, code, _error_payload(ctx.wire, code, message, error_type, ctx.rid), extra)


def _tool_name(body: dict[str, Any], reply: Reply) -> str:
    if reply.tool_name:
        return reply.tool_name
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        if tc.get("type") == "tool" and tc.get("name"):
            return str(tc["name"])
        fn = tc.get("function")
        if isinstance(fn, dict) and fn.get("name"):
            return str(fn["name"])
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        first = tools[0]
        if isinstance(first, dict):
            if first.get("name"):
                return str(first["name"])
            fn = first.get("function")
            if isinstance(fn, dict) and fn.get("name"):
                return str(fn["name"])
    return "tool"


# -- OpenAI -----------------------------------------------------------------


def _oa_usage(reply: Reply, body: dict[str, Any], text: str) -> dict[str, int]:
    i, o = _input_tokens(reply, body), _output_tokens(reply, text)
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


def _oa_logprob_entry(token: str, lp: float) -> dict[str, Any]:
    return {"token": token, "logprob": lp, "bytes": None, "top_logprobs": []}


def _oa_json(ctx: _Ctx, reply: Reply, text: str) -> bytes:
    logprobs = None
    if reply.logprobs is not None and ctx.body.get("logprobs"):
        tokens = _split_even(text, len(reply.logprobs))
        logprobs = {
            "content": [_oa_logprob_entry(t, lp) for t, lp in zip(tokens, reply.logprobs, strict=False)],
            "refusal": None,
        }
    payload: dict[str, Any] = {
        "id": f"chatcmpl-fake{ctx.rid}",
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": logprobs,
                "finish_reason": _finish(reply, "openai"),
            }
        ],
        "system_fingerprint": None,
    }
    if reply.usage:
        payload["usage"] = _oa_usage(reply, ctx.body, text)
    return _json_response(ctx, 200, payload)


def _oa_stream(
    ctx: _Ctx,
    reply: Reply,
    pieces: list[str | float],
    terminal: str,
    full_text: str,
    lp_map: list[float | None] | None = None,
) -> _Plan:
    """pieces: content strings or pause floats.  terminal: "full", "none",
    "error", "malformed"."""
    head = {
        "id": f"chatcmpl-fake{ctx.rid}",
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return _oa_event({**head, "choices": [choice]})

    events: list[bytes | float] = [chunk({"role": "assistant", "content": ""})]
    if terminal == "malformed":
        events.append(_chunk(f"data: {reply.body}\n\n".encode()))
        return _Plan(head=_stream_head(ctx), events=events, tail=_TAIL, streaming=True)
    idx = 0
    for p in pieces:
        if isinstance(p, float):
            events.append(p)
            continue
        lp: Any = None
        lp_value = lp_map[idx] if lp_map is not None and idx < len(lp_map) else None
        if lp_value is not None:
            lp = {"content": [_oa_logprob_entry(p, lp_value)], "refusal": None}
        idx += 1
        events.append(chunk({"content": p}, logprobs=lp))
    end = "keep"
    tail = _TAIL
    if terminal == "full":
        events.append(chunk({}, finish=_finish(reply, "openai")))
        so = ctx.body.get("stream_options")
        if reply.usage and isinstance(so, dict) and so.get("include_usage"):
            usage = _oa_usage(reply, ctx.body, full_text)
            events.append(_oa_event({**head, "choices": [], "usage": usage}))
        events.append(_oa_event("[DONE]"))
    elif terminal == "error":
        et = {"overloaded_error": "server_error", "api_error": "server_error"}.get(
            reply.error_type or "", reply.error_type or "server_error"
        )
        msg = reply.message or (
            "Overloaded"
            if reply.error_type == "overloaded_error"
            else "The server had an error while processing your request."
        )
        events.append(_oa_event({"error": {"message": msg, "type": et, "param": None, "code": None}}))
    elif terminal == "drop":
        tail, end = b"", "abort"
    return _Plan(head=_stream_head(ctx), events=events, tail=tail, end=end, streaming=True)


# -- Anthropic --------------------------------------------------------------


def _an_usage_in(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
    return {
        "input_tokens": _input_tokens(reply, body),
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _an_json(ctx: _Ctx, reply: Reply, text: str) -> bytes:
    if reply.kind == "tool_use":
        out_text = _DUMPS(reply.tool_input)
        content = [
            {
                "type": "tool_use",
                "id": f"toolu_fake{ctx.rid}",
                "name": _tool_name(ctx.body, reply),
                "input": reply.tool_input,
            }
        ]
        stop = "tool_use"
    else:
        out_text = text
        content = [{"type": "text", "text": text}]
        stop = _finish(reply, "anthropic")
    payload: dict[str, Any] = {
        "id": f"msg_fake{ctx.rid}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
    }
    if reply.usage:
        payload["usage"] = {
            "input_tokens": _input_tokens(reply, ctx.body),
            "output_tokens": _output_tokens(reply, out_text),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    return _json_response(ctx, 200, payload)


def _an_stream(ctx: _Ctx, reply: Reply, pieces: list[str | float], terminal: str, full_text: str) -> _Plan:
    message: dict[str, Any] = {
        "id": f"msg_fake{ctx.rid}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if reply.usage:
        message["usage"] = _an_usage_in(reply, ctx.body)
    events: list[bytes | float] = [_an_event("message_start", {"type": "message_start", "message": message})]
    if terminal == "malformed":
        events.append(_chunk(f"event: content_block_delta\ndata: {reply.body}\n\n".encode()))
        return _Plan(head=_stream_head(ctx), events=events, tail=_TAIL, streaming=True)
    if reply.kind == "tool_use":
        block = {
            "type": "tool_use",
            "id": f"toolu_fake{ctx.rid}",
            "name": _tool_name(ctx.body, reply),
            "input": {},
        }
        delta_type, delta_key = "input_json_delta", "partial_json"
        stop = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        delta_type, delta_key = "text_delta", "text"
        stop = _finish(reply, "anthropic")
    events.append(
        _an_event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
    )
    events.append(_an_event("ping", '{"type":"ping"}'))
    for p in pieces:
        if isinstance(p, float):
            events.append(p)
        else:
            delta = {"type": delta_type, delta_key: p}
            payload = {"type": "content_block_delta", "index": 0, "delta": delta}
            events.append(_an_event("content_block_delta", payload))
    end, tail = "keep", _TAIL
    if terminal == "full":
        events.append(_an_event("content_block_stop", '{"type":"content_block_stop","index":0}'))
        md: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
        }
        if reply.usage:
            md["usage"] = {"output_tokens": _output_tokens(reply, full_text)}
        events.append(_an_event("message_delta", md))
        events.append(_an_event("message_stop", '{"type":"message_stop"}'))
    elif terminal == "error":
        et = reply.error_type or "overloaded_error"
        msg = reply.message or ("Overloaded" if et == "overloaded_error" else "Internal server error")
        events.append(_an_event("error", {"type": "error", "error": {"type": et, "message": msg}}))
    elif terminal == "drop":
        tail, end = b"", "abort"
    return _Plan(head=_stream_head(ctx), events=events, tail=tail, end=end, streaming=True)


def _tool_call_id(ctx: _Ctx) -> str:
    return f"call_fake{ctx.rid}" if ctx.wire == "openai" else f"toolu_fake{ctx.rid}"


def _oa_message_json(ctx: _Ctx, reply: Reply) -> bytes:
    """A tool call or a refusal, as an OpenAI chat.completion."""
    arguments = _DUMPS(reply.tool_input) if reply.kind == "tool_call" else ""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
    if reply.kind == "tool_call":
        function = {"name": reply.tool_name or "tool", "arguments": arguments}
        message["tool_calls"] = [{"id": _tool_call_id(ctx), "type": "function", "function": function}]
        finish = "tool_calls"
    else:
        message["content"], message["refusal"], finish = None, reply.content, "stop"
    payload: dict[str, Any] = {
        "id": f"chatcmpl-fake{ctx.rid}",
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if reply.usage:
        payload["usage"] = _oa_usage(reply, ctx.body, reply.content + arguments)
    return _json_response(ctx, 200, payload)


def _an_message_json(ctx: _Ctx, reply: Reply) -> bytes:
    """A tool call or a refusal, as an Anthropic message."""
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.content}] if reply.content else []
    arguments = ""
    if reply.kind == "tool_call":
        arguments = _DUMPS(reply.tool_input)
        content.append(
            {"type": "tool_use", "id": _tool_call_id(ctx), "name": reply.tool_name, "input": reply.tool_input}
        )
    payload: dict[str, Any] = {
        "id": f"msg_fake{ctx.rid}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": "tool_use" if reply.kind == "tool_call" else "refusal",
        "stop_sequence": None,
    }
    if reply.usage:
        payload["usage"] = {
            "input_tokens": _input_tokens(reply, ctx.body),
            "output_tokens": _output_tokens(reply, reply.content + arguments),
        }
    return _json_response(ctx, 200, payload)


def _oa_message_stream(ctx: _Ctx, reply: Reply) -> _Plan:
    """A tool call or a refusal, streamed as OpenAI chunks."""
    head = {"id": f"chatcmpl-fake{ctx.rid}", "object": "chat.completion.chunk", "created": ctx.created}
    head["model"] = ctx.model

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _oa_event({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events: list[bytes | float] = [chunk({"role": "assistant", "content": None})]
    arguments = _DUMPS(reply.tool_input) if reply.kind == "tool_call" else ""
    if reply.kind == "tool_call":
        events += [chunk({"content": piece}) for piece in _split(reply.content, reply.chunk_chars)]
        call = {"index": 0, "id": _tool_call_id(ctx), "type": "function"}
        events.append(
            chunk({"tool_calls": [{**call, "function": {"name": reply.tool_name, "arguments": ""}}]})
        )
        for piece in _split(arguments, reply.chunk_chars):
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        events.append(chunk({}, finish="tool_calls"))
    else:
        events += [chunk({"refusal": piece}) for piece in _split(reply.content, reply.chunk_chars)]
        events.append(chunk({}, finish="stop"))
    so = ctx.body.get("stream_options")
    if reply.usage and isinstance(so, dict) and so.get("include_usage"):
        usage = _oa_usage(reply, ctx.body, reply.content + arguments)
        events.append(_oa_event({**head, "choices": [], "usage": usage}))
    events.append(_oa_event("[DONE]"))
    return _Plan(head=_stream_head(ctx), events=events, tail=_TAIL, streaming=True)


def _an_message_stream(ctx: _Ctx, reply: Reply) -> _Plan:
    """A tool call or a refusal, streamed as Anthropic events."""
    message: dict[str, Any] = {
        "id": f"msg_fake{ctx.rid}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _an_usage_in(reply, ctx.body),
    }
    events: list[bytes | float] = [_an_event("message_start", {"type": "message_start", "message": message})]
    blocks: list[tuple[dict[str, Any], str, str, str]] = []  # block, delta type, delta key, text
    if reply.content:
        blocks.append(({"type": "text", "text": ""}, "text_delta", "text", reply.content))
    arguments = _DUMPS(reply.tool_input) if reply.kind == "tool_call" else ""
    if reply.kind == "tool_call":
        tool: dict[str, Any] = {
            "type": "tool_use",
            "id": _tool_call_id(ctx),
            "name": reply.tool_name,
            "input": {},
        }
        blocks.append((tool, "input_json_delta", "partial_json", arguments))
    for index, (block, delta_type, delta_key, text) in enumerate(blocks):
        start = {"type": "content_block_start", "index": index, "content_block": block}
        events.append(_an_event("content_block_start", start))
        for piece in _split(text, reply.chunk_chars):
            delta = {"type": delta_type, delta_key: piece}
            events.append(
                _an_event(
                    "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                )
            )
        events.append(_an_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = "tool_use" if reply.kind == "tool_call" else "refusal"
    md = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
    md["usage"] = {"output_tokens": _output_tokens(reply, reply.content + arguments)}
    events.append(_an_event("message_delta", md))
    events.append(_an_event("message_stop", '{"type":"message_stop"}'))
    return _Plan(head=_stream_head(ctx), events=events, tail=_TAIL, streaming=True)


def _render(ctx: _Ctx, reply: Reply) -> _Plan:
    kind = reply.kind
    wire = ctx.wire
    pre = reply.delay_s
    if kind == "status":
        return _Plan(
            head=_error_response(
                ctx,
                reply.status_code,
                message=reply.message,
                error_type=reply.error_type,
                retry_after=reply.retry_after,
            ),
            pre_delay=pre,
        )
    if kind == "stall":
        pre += reply.seconds
    if kind == "stall_mid_stream" and not ctx.stream:
        pre += reply.seconds

    if kind in ("tool_call", "refusal"):
        if ctx.stream:
            plan = _oa_message_stream(ctx, reply) if wire == "openai" else _an_message_stream(ctx, reply)
            plan.pre_delay = pre
            return plan
        message = _oa_message_json(ctx, reply) if wire == "openai" else _an_message_json(ctx, reply)
        return _Plan(head=message, pre_delay=pre)
    if not ctx.stream:
        if kind == "malformed":
            return _Plan(head=_json_response(ctx, 200, reply.body), pre_delay=pre)
        if kind == "drop":
            return _Plan(head=b"", pre_delay=pre, end="abort")
        if kind == "stream_error":
            et = reply.error_type or "overloaded_error"
            if wire == "anthropic":
                code = {"overloaded_error": 529, "rate_limit_error": 429}.get(et, 500)
                return _Plan(
                    head=_error_response(ctx, code, message=reply.message, error_type=et),
                    pre_delay=pre,
                )
            code = {"overloaded_error": 503, "rate_limit_error": 429}.get(et, 500)
            return _Plan(head=_error_response(ctx, code, message=reply.message), pre_delay=pre)
        if wire == "openai":
            text = _DUMPS(reply.tool_input) if kind == "tool_use" else reply.content
            full = _oa_json(ctx, reply, text)
        else:
            full = _an_json(ctx, reply, reply.content)
        if kind == "truncated":
            body = full.partition(b"\r\n\r\n")[2]
            cut = body[: max(1, len(body) // 2)]
            return _Plan(head=_json_response(ctx, 200, cut), pre_delay=pre)
        return _Plan(head=full, pre_delay=pre)

    # ---- streaming
    if kind == "malformed":
        if wire == "openai":
            return _oa_stream(ctx, reply, [], "malformed", "")
        return _an_stream(ctx, reply, [], "malformed", "")
    full_text = _DUMPS(reply.tool_input) if kind == "tool_use" else reply.content
    lp_map: list[float | None] | None = None
    pieces: list[str | float]
    if kind in ("text", "tool_use", "stall"):
        terminal = "full"
        if wire == "openai" and reply.logprobs is not None and ctx.body.get("logprobs"):
            pieces = list(_split_even(full_text, len(reply.logprobs)))
            lp_map = list(reply.logprobs)
        else:
            pieces = list(_split(full_text, reply.chunk_chars))
    else:
        head_text = full_text[: reply.after_chars]
        pieces = list(_split(head_text, reply.chunk_chars))
        if kind == "stall_mid_stream":
            terminal = "full"
            pieces.append(float(reply.seconds))
            pieces.extend(_split(full_text[reply.after_chars :], reply.chunk_chars))
        elif kind == "drop":
            terminal = "drop"
        elif kind == "truncated":
            terminal = "none"
        elif kind == "stream_error":
            terminal = "error"
        else:
            raise ValueError(f"unknown reply kind {kind!r}")
    if wire == "openai":
        plan = _oa_stream(ctx, reply, pieces, terminal, full_text, lp_map)
    else:
        plan = _an_stream(ctx, reply, pieces, terminal, full_text)
    plan.pre_delay = pre
    return plan


# --------------------------------------------------------------------------- server


class _Request(NamedTuple):
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class FakeProviderServer:
    """Fake OpenAI + Anthropic HTTP endpoint on loopback (see module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, chunk_delay_s: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.chunk_delay_s = float(chunk_delay_s)
        self.default: ReplySource | None = Reply.text("OK")
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[ReplySource]] = {}
        self._log: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.errors: list[str] = []  # tracebacks of unexpected server-side exceptions
        self.connections = 0  # TCP connections accepted so far (keep-alive reuse shows as few)

    # -- public API ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(self, model: str, replies: ReplySource | Iterable[ReplySource]) -> None:
        """Append replies to ``model``'s FIFO queue."""
        items = [replies] if isinstance(replies, Reply) or callable(replies) else list(replies)
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(items)

    def pending(self, model: str) -> int:
        """Number of scripted replies still queued for ``model``."""
        with self._lock:
            q = self._scripts.get(model)
            return len(q) if q else 0

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if r.model == model]

    def reset(self) -> None:
        """Clear all scripts and the request log (``default`` is kept)."""
        with self._lock:
            self._scripts.clear()
            self._log.clear()

    def start(self) -> FakeProviderServer:
        if self._thread is not None:
            raise RuntimeError("FakeProviderServer already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"FakeProviderServer:{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            fut.result(timeout=5)
        except Exception:
            pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._thread = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- loop thread ---------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(
                    self._handle_conn, self.host, self.port, backlog=4096, limit=_MAX_HEADER_BYTES
                )
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as e:
            self._startup_error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=2))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        conns = [t for t in self._conns if not t.done()]
        for t in conns:
            t.cancel()
        if conns:
            await asyncio.wait(conns, timeout=2)
        await asyncio.sleep(0)  # let the transports' close callbacks run

    async def _handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.connections += 1
        try:
            # drain() then means "handed to the kernel", so a reply counts as
            # completed only once it really left, and a vanished client shows up
            # at the next write.
            writer.transport.set_write_buffer_limits(high=0)
            while True:
                req = await self._read_request(reader, writer)
                if req is None:
                    break
                if not await self._respond(req, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, OSError):
            pass
        except Exception:  # pragma: no cover - a bug in this module
            tb = traceback.format_exc()
            self.errors.append(tb)
            print(tb, file=sys.stderr)
        finally:
            self._conns.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request | None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            writer.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-length: 0\r\nconnection: close\r\n\r\n"
            )
            await writer.drain()
            return None
        text = raw.decode("latin-1").lstrip("\r\n")
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
            return None
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            k = k.strip().lower()
            v = v.strip()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        te = headers.get("transfer-encoding", "").lower()
        if "chunked" in te:
            body = await self._read_chunked(reader)
        else:
            n = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(n) if n > 0 else b""
        conn = headers.get("connection", "").lower()
        keep_alive = ("close" not in conn) if version == "HTTP/1.1" else ("keep-alive" in conn)
        return _Request(method, target, headers, body, keep_alive)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailers until empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def _next_reply(self, model: str, rec: RecordedRequest) -> Reply:
        with self._lock:
            q = self._scripts.get(model)
            src = q.popleft() if q else self.default
        if src is None:
            return Reply.status(
                500, message=f"fake server: no reply scripted for model {model!r} and no default"
            )
        if isinstance(src, Reply):
            return src
        try:
            out = src(rec)
        except Exception as e:
            return Reply.status(500, message=f"fake server: reply callable raised {e!r}")
        if not isinstance(out, Reply):
            return Reply.status(
                500, message=f"fake server: reply callable returned {type(out).__name__}, not Reply"
            )
        return out

    async def _respond(
        self, req: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        method, target, headers, raw, keep_alive = req
        path = target.split("?", 1)[0]
        wire = _ROUTES.get(path)
        rid = next(self._ids)
        if method != "POST" or wire is None:
            is_an = "anthropic-version" in headers or "x-api-key" in headers or "messages" in path
            guess = "anthropic" if is_an else "openai"
            rec = RecordedRequest(
                guess, target, "", {}, headers, False, reply_kind="not_found", method=method
            )
            self._record(rec)
            ctx = _Ctx(guess, "", {}, False, rid, keep_alive)
            plan = _Plan(head=_error_response(ctx, 404, message=f"Unknown route: {method} {path}"))
            return await self._execute(rec, plan, reader, writer, keep_alive)
        try:
            body = json.loads(raw) if raw else None
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as e:
            rec = RecordedRequest(
                wire, target, "", {}, headers, False, reply_kind="bad_request", method=method
            )
            self._record(rec)
            ctx = _Ctx(wire, "", {}, False, rid, keep_alive)
            plan = _Plan(head=_error_response(ctx, 400, message=f"Invalid JSON body: {e}"))
            return await self._execute(rec, plan, reader, writer, keep_alive)
        model = body.get("model")
        model = model if isinstance(model, str) else ""
        stream = body.get("stream") is True
        rec = RecordedRequest(wire, target, model, body, headers, stream, method=method)
        self._record(rec)
        reply = self._next_reply(model, rec)
        rec.reply_kind = reply.kind
        ctx = _Ctx(wire, model, body, stream, rid, keep_alive)
        try:
            plan = _render(ctx, reply)
        except Exception as e:
            plan = _Plan(
                head=_error_response(ctx, 500, message=f"fake server: cannot render {reply.kind}: {e!r}")
            )
        return await self._execute(rec, plan, reader, writer, keep_alive)

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._log.append(rec)

    @staticmethod
    def _gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        return reader.at_eof() or reader.exception() is not None or writer.transport.is_closing()

    async def _pause(
        self, seconds: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Sleep ``seconds``; False as soon as the client goes away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if self._gone(reader, writer):
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, _POLL_S))

    async def _execute(
        self,
        rec: RecordedRequest,
        plan: _Plan,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Send ``plan``; returns whether the connection can serve another request."""
        ok = await self._send(rec, plan, reader, writer)
        rec.finished_at = time.monotonic()
        if not ok:
            rec.client_closed = True
            writer.transport.abort()
            return False
        if plan.end == "abort":
            writer.transport.abort()
            return False
        rec.completed = True
        if plan.end == "close" or not keep_alive:
            writer.close()
            return False
        return True

    async def _send(
        self,
        rec: RecordedRequest,
        plan: _Plan,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if plan.pre_delay > 0 and not await self._pause(plan.pre_delay, reader, writer):
            return False
        try:
            delay = self.chunk_delay_s if plan.streaming else 0.0
            if delay <= 0:
                buf = [plan.head]
                for ev in plan.events:
                    if isinstance(ev, float):
                        writer.write(b"".join(buf))
                        buf = []
                        await writer.drain()
                        if not await self._pause(ev, reader, writer):
                            return False
                    else:
                        buf.append(ev)
                buf.append(plan.tail)
                writer.write(b"".join(buf))
                await writer.drain()
            else:
                # head and the first event together, then one event per pause
                first = True
                writer.write(plan.head)
                for ev in plan.events:
                    if isinstance(ev, float):
                        await writer.drain()
                        if not await self._pause(ev, reader, writer):
                            return False
                        continue
                    if not first:
                        await writer.drain()
                        if not await self._pause(delay, reader, writer):
                            return False
                    first = False
                    writer.write(ev)
                if plan.tail:
                    writer.write(plan.tail)
                await writer.drain()
        except (ConnectionError, OSError):
            return False
        return True
