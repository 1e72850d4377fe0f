"""What a scripted reply is and what it contains, before any wire format or I/O.

`Reply` is what tests script, `RecordedRequest` what they read back; `Call` is the
request a reply answers.  `cascade.testing.fake.content` decides what a reply's body says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DROP_TEXT = (
    "The quick brown fox jumps over the lazy dog, and then the connection to the "
    "server was lost somewhere in the middle of this rather long sentence."
)


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

    def __post_init__(self) -> None:
        # streams split the text every `chunk_chars`: at least one, whoever built the reply
        object.__setattr__(self, "chunk_chars", max(1, int(self.chunk_chars)))

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
            chunk_chars=chunk_chars,
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
            chunk_chars=chunk_chars,
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
            chunk_chars=chunk_chars,
        )

    @classmethod
    def refusal(cls, text: str, *, chunk_chars: int = 8, delay_s: float = 0.0) -> Reply:
        """The model refuses. OpenAI: ``message.refusal`` (content null), finish_reason
        "stop", as structured outputs do. Anthropic: the text with stop_reason "refusal"."""
        return cls(kind="refusal", content=text, chunk_chars=chunk_chars, delay_s=delay_s)

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
            chunk_chars=chunk_chars,
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
            chunk_chars=chunk_chars,
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
            chunk_chars=chunk_chars,
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
            chunk_chars=chunk_chars,
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
