"""The ledger of one request: every attempt, in order, redacted and logged as it is made."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from cascade.core.redaction import redact, redact_value
from cascade.core.values import ZERO, Attempt, ToolCall, Verdict
from cascade.logs import get_logger, info_enabled


class Ledger:
    """The attempts of one request and what they have cost so far, verification included."""

    def __init__(self, log: Any | None = None) -> None:
        self.attempts: list[Attempt] = []
        self.spent: Decimal = ZERO
        self._log = log if log is not None else get_logger()

    def __len__(self) -> int:
        return len(self.attempts)

    def __iter__(self) -> Iterator[Attempt]:
        return iter(self.attempts)

    def __getitem__(self, index: int) -> Attempt:
        return self.attempts[index]

    def record(self, attempt: Attempt) -> Attempt:
        """Add `attempt`, with no key left in its answer, reasons or parsed data (a model may
        echo one), and log it; returns it as recorded."""
        output = None if attempt.output is None else redact(attempt.output)
        verdicts = tuple(_redacted(v) for v in attempt.verdicts)
        error = None if attempt.error is None else redact(attempt.error)
        tool_calls = tuple(_redacted_call(c) for c in attempt.tool_calls)
        refusal = None if attempt.refusal is None else redact(attempt.refusal)
        clean = (output, verdicts, error, tool_calls, refusal)
        if clean != (attempt.output, attempt.verdicts, attempt.error, attempt.tool_calls, attempt.refusal):
            attempt = replace(  # copied only when a key was taken out
                attempt, output=output, verdicts=verdicts, error=error, tool_calls=tool_calls, refusal=refusal
            )
        self.attempts.append(attempt)
        self.spent += attempt.cost_usd + attempt.verification_usd  # as `total_usd` sums it
        if info_enabled(self._log):  # the event's fields cost more than the check
            self._log.info("attempt_finished", **_event(attempt))
        return attempt


def _redacted_call(call: ToolCall) -> ToolCall:
    """A call with no key in it: a model may echo one as a tool's name as well as in its arguments."""
    call_id = None if call.id is None else redact(call.id)
    return replace(call, name=redact(call.name), arguments=redact(call.arguments), id=call_id)


def _redacted(verdict: Verdict) -> Verdict:
    reason = redact(verdict.reason)
    if verdict.parsed is None and reason == verdict.reason:
        return verdict
    return replace(verdict, reason=reason, parsed=redact_value(verdict.parsed))


def _event(attempt: Attempt) -> dict[str, Any]:
    return {
        "tier": attempt.tier,
        "model": attempt.model,
        "outcome": str(attempt.outcome),
        "retry": attempt.retry,
        "reask": attempt.reask,
        "input_tokens": attempt.usage.input_tokens,
        "output_tokens": attempt.usage.output_tokens,
        "usage_estimated": attempt.usage.estimated,
        "cost_usd": f"{attempt.cost_usd:f}",  # plain digits: str() of a tiny Decimal is "0E-12"
        "verification_usd": f"{attempt.verification_usd:f}",
        "latency_s": round(attempt.latency_s, 4),
        "queued_s": round(attempt.queued_s, 4),
        "verdicts": [f"{v.verifier}:{'pass' if v.passed else 'fail'}" for v in attempt.verdicts],
        "reason": next((v.reason for v in attempt.verdicts if not v.passed), attempt.error),
    }
