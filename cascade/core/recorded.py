"""One model's answer in the recorded-outcomes format (`cascade.providers.replay` reads it):
what batch jobs write with `--record` and audits write for every audited pair."""

from __future__ import annotations

from typing import Any

from cascade.core.messages import write_messages, write_tools
from cascade.core.values import Request


def recorded_request(request: Request, record_id: str | int) -> dict[str, Any]:
    """The start of a recorded line: the id, and the request as the format holds it."""
    line: dict[str, Any] = {"id": record_id}
    if request.system:
        line["system"] = request.system
    line["messages"] = write_messages(request.messages)
    if request.tools:
        line["tools"] = write_tools(request.tools)
    return line


def recorded_response(attempt: dict[str, Any], *, correct: bool | None = None) -> dict[str, Any]:
    """An attempt (as `Attempt.to_dict` gives it) as a recorded response; `correct` labels it."""
    response = {
        "text": attempt["output"],
        "input_tokens": attempt["input_tokens"],
        "output_tokens": attempt["output_tokens"],
        "cost_usd": attempt["cost_usd"],
        "latency_ms": round(attempt["latency_s"] * 1000, 1),
        "finish_reason": attempt.get("finish_reason"),
        "tool_calls": attempt.get("tool_calls") or [],
        "refusal": attempt.get("refusal"),
        "verified": attempt["outcome"] == "accepted",
    }
    if correct is not None:
        response["correct"] = correct
    return response
