"""Recorded outcomes: real requests with the answers real models gave, for offline replay.

One JSON object a line (see docs/recorded-outcomes.md):

    {"id": "q1", "prompt": "..." | "messages": [...], "system": "...",
     "responses": {"<model>": {"text": "...", "correct": true, "input_tokens": 10,
                               "output_tokens": 42, "cost_usd": 0.00021, "confidence": 0.9,
                               "mean_logprob": -0.12, "judge_score": 8, "latency_ms": 830}}}

Only `text` is required per model. Recorded tokens and cost are used when present; else
tokens are counted and priced as in live runs. Unknown fields are kept. A malformed line is
reported by its number and skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from cascade.core.errors import ConfigError, PermanentProviderError
from cascade.core.messages import read_request
from cascade.core.tokens import count_tokens
from cascade.core.values import Completion, Request, ToolCall, Usage


@dataclass(frozen=True)
class Recorded:
    """One recorded request and its answers, by model."""

    id: str
    line: int
    request: Request
    responses: Mapping[str, Mapping[str, Any]]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def correct(self, model: str) -> bool | None:
        value = self.responses.get(model, {}).get("correct")
        return value if isinstance(value, bool) else None


@dataclass(frozen=True)
class RecordedSet:
    """The records of a file by id, and the problems met while reading it."""

    records: dict[str, Recorded]
    problems: list[str]

    def __iter__(self) -> Iterator[Recorded]:
        return iter(self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def models(self) -> set[str]:
        return {model for record in self for model in record.responses}


def load_recorded(path: str | Path) -> RecordedSet:
    """Read a recorded-outcomes file; malformed lines become problems naming their line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is no part of line 1
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read recorded outcomes: {exc}") from None
    records: dict[str, Recorded] = {}
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = parse_recorded(line, number)
        except ValueError as exc:
            problems.append(f"{path} line {number}: {exc}")
            continue
        if record.id in records:
            problems.append(
                f"{path} line {number}: duplicate id {record.id!r} (first on line {records[record.id].line})"
            )
            continue
        records[record.id] = record
    return RecordedSet(records, problems)


def parse_recorded(line: str, number: int) -> Recorded:
    """One line of the format; ValueError says what is wrong with it."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:  # a line nested deeper than the decoder can go
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("a JSON object is required")
    record_id = data.get("id")
    if isinstance(record_id, bool) or not isinstance(record_id, str | int) or record_id == "":
        raise ValueError("missing or invalid `id`")
    request = read_request(data).replace(id=str(record_id))
    responses = data.get("responses")
    if not isinstance(responses, dict) or not responses:
        raise ValueError("`responses` must map model names to recorded answers")
    for model, response in responses.items():
        if not isinstance(response, dict) or not isinstance(response.get("text"), str):
            raise ValueError(f"responses[{model!r}] needs a `text` string")
        if "correct" in response and not isinstance(response["correct"], bool):
            raise ValueError(f"responses[{model!r}].correct must be true or false")
    extra = {k: v for k, v in data.items() if k not in ("id", "prompt", "messages", "system", "responses")}
    return Recorded(str(record_id), number, request, responses, extra)


class ReplayProvider:
    """A model answered from recorded outcomes: the response of this model to the request
    with the same id, with its recorded usage, cost and latency when there are any."""

    def __init__(self, model: str, recorded: RecordedSet) -> None:
        self.model = model
        self.recorded = recorded

    async def complete(self, request: Request) -> Completion:
        record = self.recorded.records.get(request.id or "")
        if record is None:
            raise PermanentProviderError(f"no recorded request with id {request.id!r}")
        response = record.responses.get(self.model)
        if response is None:
            raise PermanentProviderError(f"no recorded answer of {self.model} to {request.id!r}")
        text = response["text"]
        reported_in, reported_out = (
            _count(response.get("input_tokens")),
            _count(response.get("output_tokens")),
        )
        usage = Usage(
            reported_in if reported_in is not None else count_tokens(record.request.text(), self.model),
            reported_out if reported_out is not None else count_tokens(text, self.model),
            estimated=reported_in is None or reported_out is None,
        )
        latency_ms = _number(response.get("latency_ms"))
        return Completion(
            text=text,
            model=self.model,
            usage=usage,
            # a recorded cut-off, refusal or tool call is rejected in replay as it was live
            finish_reason=_text(response.get("finish_reason")),
            tool_calls=_tool_calls(response.get("tool_calls")),
            refusal=_text(response.get("refusal")),
            cost_usd=_money(response.get("cost_usd")),
            latency_s=latency_ms / 1000 if latency_ms is not None else 0.0,
            recorded=response,
        )

    def costs_recorded(self) -> bool:
        """Does every recorded answer of this model carry its cost (then no price is needed)?"""
        answers = [r.responses[self.model] for r in self.recorded if self.model in r.responses]
        return bool(answers) and all(_money(a.get("cost_usd")) is not None for a in answers)

    async def aclose(self) -> None:
        return None


class RecordedCosts:
    """The price of a replay model whose every recorded answer carries its cost: that cost
    stands (as the completion's `cost_usd`); a call with no recorded answer costs nothing."""

    def cost(self, usage: Usage) -> Decimal:
        return Decimal(0)

    def describe(self) -> str:
        return "recorded costs"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    """Recorded tool calls: a list of `{"name", "arguments"}` (anything else is no call)."""
    if not isinstance(value, list):
        return ()
    return tuple(
        ToolCall(str(call.get("name") or "(unnamed)"), str(call.get("arguments") or ""))
        for call in value
        if isinstance(call, dict)
    )


@cache
def recorded_file(path: str) -> RecordedSet:
    """A recorded-outcomes file read once however many tiers replay it."""
    return load_recorded(path)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _money(value: Any) -> Decimal | None:
    number = _number(value)
    if number is None or number < 0:
        return None
    try:
        return Decimal(str(number)).quantize(Decimal("1e-12"))
    except InvalidOperation:
        return None
