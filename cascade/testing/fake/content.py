"""What a reply's body says, in the parts both wire formats share: token counts, how text
splits into stream pieces, finish reasons, error messages, tool names."""

from __future__ import annotations

import http
import json
from typing import Any

from cascade.testing.fake.replies import Reply

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
