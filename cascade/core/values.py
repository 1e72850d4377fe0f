"""The values that flow through a cascade: requests (`cascade.core.requests`), completions,
verdicts, attempts, results.

All are frozen. Money is `Decimal`; a result's cost figures are computed from its
attempts every time they are read, so there is one ledger and no second bookkeeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, cast

from typing_extensions import TypeVar  # with a default: a bare `Result` is `Result[Any]`

from cascade.core.requests import (
    ContentPart,
    ForcedTool,
    ImagePart,
    Message,
    Request,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from cascade.core.routes import Route

# the request side is re-exported: `cascade.core.values` stays the one import for every value
__all__ = [
    "ZERO",
    "AskModel",
    "Attempt",
    "Candidate",
    "Completion",
    "ContentPart",
    "CostReport",
    "ForcedTool",
    "ImagePart",
    "Message",
    "ModelCall",
    "Outcome",
    "Request",
    "Result",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "Usage",
    "Verdict",
    "openai_tool_call",
    "tool_call_dict",
    "total_usd",
]

ZERO = Decimal(0)
ParsedT = TypeVar("ParsedT", default=Any)


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. `estimated` is True when any part was counted by us, not reported."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.estimated or other.estimated,
        )


@dataclass(frozen=True)
class Completion:
    """One answer from one model.

    `finish_reason` is the provider's own word for why the answer ended (OpenAI's
    `finish_reason`, Anthropic's `stop_reason`: "stop", "length", "max_tokens",
    "content_filter", "refusal", "tool_calls", ...). `tool_calls` are the tools the model
    called instead of (or besides) answering; `refusal` is a refusal the provider reports
    apart from the text (OpenAI structured outputs).

    A replayed answer carries what was recorded with it: `cost_usd` and `latency_s`, when
    set, stand instead of the price of `usage` and the measured latency; `recorded` holds
    the recorded fields (confidence, mean_logprob, judge_score, ...) that verifiers may use
    in place of a signal they cannot compute offline.
    """

    text: str
    model: str
    usage: Usage
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    cost_usd: Decimal | None = None
    latency_s: float | None = None
    recorded: Mapping[str, Any] | None = None
    queued_s: float = 0.0  # time the call waited for a rate limit before it went out


@dataclass(frozen=True)
class ModelCall:
    """A verifier's own call to a model, with retries: the answer (None when every try
    failed), what all the tries cost, and the last error."""

    completion: Completion | None
    cost_usd: Decimal
    error: str | None = None


AskModel = Callable[["Request"], Awaitable[ModelCall]]


@dataclass(frozen=True)
class Candidate:
    """What a verifier judges: the request, the answer, and where the answer came from.

    `request` is the caller's request as asked; `sent` is what the model was actually sent
    (with verifiers' notes and any reask feedback). `text` is the answer as it will be
    returned (`cleaned`, after every verifier's `clean_output`, when set);
    `completion.text` is what the model actually said. `ask` calls the same model again
    (self-rating follow-ups); its cost belongs in the verdict.
    """

    request: Request
    completion: Completion
    tier: str
    tier_index: int = 0
    is_last_tier: bool = False
    cleaned: str | None = None
    ask: AskModel | None = None
    sent: Request | None = None

    @property
    def text(self) -> str:
        return self.completion.text if self.cleaned is None else self.cleaned


@dataclass(frozen=True)
class Verdict:
    """A verifier's decision with its reason. `cost_usd` is what the check itself paid (judges)."""

    verifier: str
    passed: bool
    reason: str
    score: float | None = None
    cost_usd: Decimal = ZERO
    parsed: Any = field(default=None, compare=False)  # structured data the check extracted

    def to_dict(self) -> dict[str, Any]:
        return {
            "verifier": self.verifier,
            "passed": self.passed,
            "score": self.score,
            "reason": self.reason,
            "cost_usd": _money(self.cost_usd),
        }


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # answer passed every verifier and was returned
    REJECTED = "rejected"  # answer failed a verifier
    ERROR = "error"  # the call failed (after or without retries)
    ABORTED = "aborted"  # a stream cut short on purpose (an incremental check failed it early)


@dataclass(frozen=True)
class Attempt:
    """One call to one model, paid for whatever became of it."""

    tier: str
    model: str
    outcome: Outcome
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = ZERO
    latency_s: float = 0.0  # the provider's: from the request going out to the answer's end
    queued_s: float = 0.0  # before that, the wait for a rate limit
    verdicts: tuple[Verdict, ...] = ()
    error: str | None = None
    error_code: str | None = None  # `ProviderError.code` of a failed call: http_401, timeout, ...
    output: str | None = None
    retry: int = 0  # 0 for the first try on this model, n for the n-th retry
    reask: int = 0  # 0 for the original question, n for the n-th reask with feedback
    finish_reason: str | None = None  # the provider's, for an answered call
    tool_calls: tuple[ToolCall, ...] = ()  # tools the model called in its reply
    refusal: str | None = None  # a refusal the provider reported apart from the text

    @property
    def verification_usd(self) -> Decimal:
        return sum((v.cost_usd for v in self.verdicts), ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "model": self.model,
            "outcome": str(self.outcome),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "usage_estimated": self.usage.estimated,
            "latency_s": round(self.latency_s, 4),
            "queued_s": round(self.queued_s, 4),
            "cost_usd": _money(self.cost_usd),
            "verification_usd": _money(self.verification_usd),
            "error": self.error,
            "error_code": self.error_code,
            "retry": self.retry,
            "reask": self.reask,
            "finish_reason": self.finish_reason,
            "tool_calls": [tool_call_dict(c) for c in self.tool_calls],
            "refusal": self.refusal,
            "output": self.output,
        }


@dataclass(frozen=True)
class CostReport:
    """Where the money of one request went.

    total = generation of every attempt + verification + routing (a classifier's calls);
    wasted = generation of every attempt whose answer was not returned; saved = baseline -
    total (may be negative).
    """

    total_usd: Decimal
    wasted_usd: Decimal
    verification_usd: Decimal
    baseline_usd: Decimal
    routing_usd: Decimal = ZERO

    @property
    def saved_usd(self) -> Decimal:
        return self.baseline_usd - self.total_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_usd": _money(self.total_usd),
            "wasted_usd": _money(self.wasted_usd),
            "verification_usd": _money(self.verification_usd),
            "routing_usd": _money(self.routing_usd),
            "baseline_usd": _money(self.baseline_usd),
            "saved_usd": _money(self.saved_usd),
        }


@dataclass(frozen=True)
class Result(Generic[ParsedT]):
    """The answer of a cascade and the full record of how it was reached.

    `output` is None only when no model produced any answer at all. `degraded` marks a
    streamed answer that failed a check, or was cut off, once it could no longer be
    withdrawn: it is returned as it stands, never as verified.
    `returned` is the index in `attempts` of the attempt whose answer is `output`.
    `typed` is the `response_model` instance of the answer, for a call that asked for one.
    `request_id` names the request in the ledger and the events (the caller's, or one made
    up); `tags` are its attribution tags; `cache` is "hit" for an answer served from the
    cache of verified answers, "miss" when the cache was asked and had none, else None.
    `route` says where the ladder started and why (None: no router, no override).
    """

    output: str | None
    verified: bool
    attempts: tuple[Attempt, ...]
    returned: int | None
    baseline_usd: Decimal
    stop_reason: str = "accepted"  # accepted | exhausted | budget | degraded
    # streamed text that failed a check (or was cut off) after it could no longer be withdrawn
    degraded: bool = False
    typed: ParsedT | None = field(default=None, compare=False, repr=False)
    request_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    cache: str | None = None
    route: Route | None = None

    @property
    def returned_attempt(self) -> Attempt | None:
        return None if self.returned is None else self.attempts[self.returned]

    @property
    def tier(self) -> str | None:
        a = self.returned_attempt
        return a.tier if a else None

    @property
    def model(self) -> str | None:
        a = self.returned_attempt
        return a.model if a else None

    @property
    def parsed(self) -> ParsedT:
        """The `response_model` instance of the answer, for a call that asked for one; else
        the structured data a verifier extracted from it (JSON), or None."""
        if self.typed is not None:
            return self.typed
        return cast(ParsedT, self.data)

    @property
    def data(self) -> Any:
        """The structured data a verifier extracted from the returned answer, as JSON values."""
        a = self.returned_attempt
        return next((v.parsed for v in a.verdicts if v.parsed is not None), None) if a else None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tools the returned answer calls (an answer may be tool calls instead of text)."""
        a = self.returned_attempt
        return a.tool_calls if a else ()

    def as_message(self) -> dict[str, Any]:
        """The answer as an OpenAI-style assistant message, to append to the conversation
        (an agent's next step reads the tool calls from it)."""
        calls = [openai_tool_call(c) for c in self.tool_calls]
        message: dict[str, Any] = {"role": "assistant", "content": self.output or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        return message

    @property
    def cost(self) -> CostReport:
        verification = sum((a.verification_usd for a in self.attempts), ZERO)
        wasted = sum((a.cost_usd for i, a in enumerate(self.attempts) if i != self.returned), ZERO)
        routing = ZERO if self.route is None else self.route.cost_usd
        total = total_usd(self.attempts) + routing
        return CostReport(total, wasted, verification, self.baseline_usd, routing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "output": self.output,
            "verified": self.verified,
            "tier": self.tier,
            "model": self.model,
            "stop_reason": self.stop_reason,
            "degraded": self.degraded,
            "parsed": self.data,
            "tool_calls": [tool_call_dict(c) for c in self.tool_calls],
            "attempts": [a.to_dict() for a in self.attempts],
            "cost": self._cost_dict(),
            "tags": dict(self.tags),
            "cache": self.cache,
            "route": None if self.route is None else self.route.to_dict(),
        }

    def _cost_dict(self) -> dict[str, Any]:
        """The cost report; an unverified answer claims no saving (`saved_usd` null): it is
        not an answer the top tier's could have been traded for."""
        cost = self.cost.to_dict()
        if not self.verified:
            cost["saved_usd"] = None
        return cost


def tool_call_dict(call: ToolCall) -> dict[str, Any]:
    """A tool call as results and recorded outcomes hold it."""
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def openai_tool_call(call: ToolCall) -> dict[str, Any]:
    """A tool call in the OpenAI shape (an assistant message's `tool_calls`)."""
    return {
        "id": call.id or f"call_{call.name}",
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def total_usd(attempts: Sequence[Attempt]) -> Decimal:
    """What attempts cost: each call and the checks of its answer."""
    return sum((a.cost_usd + a.verification_usd for a in attempts), ZERO)


def _money(value: Decimal) -> float:
    """Decimal dollars as a JSON number.

    Costs are quantized to 1e-12 USD when computed, so the float's shortest repr is the
    exact decimal: `json.loads(..., parse_float=Decimal)` gives back the ledger's value.
    """
    return float(value)
