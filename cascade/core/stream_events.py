"""What a provider's stream yields: text, the start of billing, input counts, and its end;
and, from a rate limiter in front of it, the time the call waited before it went out."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cascade.core.values import ToolCall, Usage


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True)
class StreamStarted:
    """The provider accepted the request and began its answer (from here, input is billed)."""


@dataclass(frozen=True)
class InputReported:
    """The provider's count of input tokens, sent before the answer (Anthropic)."""

    input_tokens: int


@dataclass(frozen=True)
class StreamDone:
    """The stream's terminal event: why it finished, the usage if it was reported, and the
    tool calls and refusal that came besides the text."""

    finish_reason: str | None
    usage: Usage | None
    logprobs: tuple[float, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    cost_usd: Decimal | None = None  # the provider's own price of the call, as on a Completion


@dataclass(frozen=True)
class Queued:
    """The call waits for a rate limit (`seconds` None), or has waited `seconds` and goes
    out now. The wait is no silence of the provider's and no part of its latency."""

    seconds: float | None = None


StreamEvent = StreamStarted | TextDelta | InputReported | StreamDone | Queued
