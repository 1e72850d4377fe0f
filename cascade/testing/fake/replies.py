"""What a scripted reply is and what it contains, before any wire format or I/O.

`Reply` is what tests script, `RecordedRequest` what they read back; `Call` is the
request a reply answers.  The helpers here decide the parts both wire formats share:
token counts, how text splits into stream pieces, finish reasons, error messages, tool names.
"""

from __future__ import annotations

import http
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DROP_TEXT = (
    "The quick brown fox jumps over the lazy dog, and then the connection to the "
    "server was lost somewhere in the middle of this rather long sentence."
)

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

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


@dataclass(frozen=True)
class Call:
    """The request a reply answers, as the renderers need it."""

    wire: str  # "openai" | "anthropic"
    model: str
    body: dict[str, Any]
    stream: bool
    rid: int  # numbers the ids in the reply (request id, message id, tool call id)
    created: int = field(default_factory=lambda: int(time.time()))


def reason_phrase(code: int) -> str:
    """The status line's reason, also the last resort for an error message."""
    if code == 529:
        return "Site Overloaded"
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def split(text: str, n: int) -> list[str]:
    """``text`` in pieces of ``n`` characters: a stream's content chunks."""
    return [text[i : i + n] for i in range(0, len(text), n)]


def split_even(text: str, parts: int) -> list[str]:
    """``text`` in ``parts`` near-equal pieces: one token per scripted logprob."""
    if parts <= 0:
        return []
    size, extra = divmod(len(text), parts)
    out, pos = [], 0
    for i in range(parts):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def answer_text(reply: Reply) -> str:
    """The text a plain (not tool-call) answer sends: a ``tool_use`` reply's input as JSON."""
    return dumps(reply.tool_input) if reply.kind == "tool_use" else reply.content


def tool_arguments(reply: Reply) -> str:
    """A ``tool_call`` reply's arguments as JSON (empty for a refusal)."""
    return dumps(reply.tool_input) if reply.kind == "tool_call" else ""


def input_tokens(reply: Reply, body: dict[str, Any]) -> int:
    """Scripted, else about four characters of messages and system per token."""
    if reply.input_tokens is not None:
        return reply.input_tokens
    n = len(dumps(body.get("messages") or []))
    system = body.get("system")
    if system:
        n += len(dumps(system))
    return max(1, n // 4)


def output_tokens(reply: Reply, text: str) -> int:
    if reply.output_tokens is not None:
        return reply.output_tokens
    return max(1, len(text) // 4)


def finish_reason(reply: Reply, wire: str) -> str:
    """The scripted finish reason in ``wire``'s spelling; by default a normal stop."""
    fr = reply.finish_reason
    if wire == "openai":
        return _TO_OPENAI_FINISH.get(fr, fr) if fr else "stop"
    return _TO_ANTHROPIC_FINISH.get(fr, fr) if fr else "end_turn"


def error_message(code: int, message: str | None) -> str:
    """What an HTTP error says: scripted, else a stock message for the status."""
    return message or _DEFAULT_MESSAGES.get(code) or reason_phrase(code)


def tool_name(body: dict[str, Any], reply: Reply) -> str:
    """Scripted, else the tool ``tool_choice`` forces, else the first tool (either wire's shape)."""
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
