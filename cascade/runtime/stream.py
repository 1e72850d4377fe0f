"""Streaming: the cascade's answer as it is generated, under a restart policy.

The consumer gets `StreamDelta`s (text, with the tier it comes from), a `StreamRestart`
whenever the cascade leaves an attempt for another (saying how much of what was shown is
now void), and one `StreamResult` last, with the same accounting as `Cascade.arun`.

While an answer streams, verifiers that can judge a prefix (`check_partial`) run on the
text so far; a doomed answer is stopped at once and its connection closed, so no more of
it is paid for. A stream that breaks (connection lost, stalled past the idle timeout, an
error event, no terminal event) is a failed attempt, never an accepted answer. Aborted
and broken attempts are billed: input tokens as reported or counted, output tokens
counted from the text received, flagged `usage_estimated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cascade.core.errors import PermanentProviderError, ProviderError, ProviderTimeout
from cascade.core.events import AttemptEnd, StreamDelta
from cascade.core.policy import degrade_on_fault, must_finish
from cascade.core.redaction import StreamRedactor
from cascade.core.stream_events import InputReported, Queued, StreamDone, StreamEvent, StreamStarted
from cascade.core.tokens import count_tokens
from cascade.core.values import Attempt, Completion, Outcome, Request, Usage, Verdict
from cascade.protocols import CleansOutput, hook
from cascade.providers.base import open_stream
from cascade.runtime.attempt import Turn, judge
from cascade.runtime.call import unexpected_error
from cascade.runtime.ladder import TierModel
from cascade.runtime.retry import retried
from cascade.verification.chain import check_partial

PARTIAL_CHECK_EVERY_CHARS = 32  # re-check a growing answer this often, not on every delta
PARTIAL_CHECK_GROWTH = 8  # ... and once long, when it has grown by an eighth


def next_partial_check(checked_chars: int) -> int:
    """How long the answer must be before its partial checks run again. Every few words
    at first; then when it has grown by an eighth, so that re-reading the whole prefix each
    time adds up to linear work however long the answer (a check 32 characters apart
    would read a 1 MB answer 30,000 times)."""
    return checked_chars + max(PARTIAL_CHECK_EVERY_CHARS, checked_chars // PARTIAL_CHECK_GROWTH)


class _Pieces:
    """Text that arrives in pieces, joined only when it is read whole: adding each piece to
    one string would copy it all again each time, quadratic in a long stream."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.length = 0

    def add(self, piece: str) -> None:
        self._parts.append(piece)
        self.length += len(piece)

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""


@dataclass
class _Reading:
    """What one try of one model has produced so far."""

    received: _Pieces = field(default_factory=_Pieces)
    opened: bool = False  # the provider accepted the request (HTTP 200): its input is billed
    input_tokens: int | None = None
    done: StreamDone | None = None
    doomed: Verdict | None = None  # a partial check failed past the point of no return
    checked_at: int = 0
    started: float = field(default_factory=time.perf_counter)
    queued_s: float = 0.0  # of the time since `started`, the wait for a rate limit
    redactor: StreamRedactor = field(default_factory=StreamRedactor)  # what of the text is shown
    recorded: bool = False  # this try is in the ledger already

    @property
    def text(self) -> str:
        return self.received.text

    def latency_s(self) -> float:
        """The provider's time so far: since the request went out, without the queue."""
        return time.perf_counter() - self.started - self.queued_s


class _StreamBroke(PermanentProviderError):
    """A fault after text was shown: not retried on the same model (what was shown is void)."""


async def stream_attempt(turn: Turn) -> AsyncGenerator[StreamDelta | AttemptEnd, None]:
    """Stream one model's answer (with retries before any text) under the plan's stream
    policy, check it as it grows and whole, and record every try."""
    policy, tier, model, chain, ledger = (
        turn.plan.stream_policy,
        turn.tier,
        turn.model,
        turn.chain,
        turn.ledger,
    )
    sent = turn.sent()
    # A verifier that rewrites the answer (strips a rating line) sees whole lines only:
    # hold back the line being written until it is complete.
    hold_back_line = any(hook(v, CleansOutput) is not None for v in chain)
    shown = _Pieces()  # what the consumer was shown of this attempt, redacted
    reading, retry = _Reading(), 0  # the latest try's

    def record(
        outcome: Outcome, bill_input: bool = True, spent_usd: Decimal | None = None, **extra: Any
    ) -> Attempt:
        usage = _billed_usage(reading, sent, model, bill_input)
        reading.recorded = True
        return ledger.record(
            Attempt(
                tier=tier.name,
                model=model.model,
                outcome=outcome,
                usage=usage,
                cost_usd=model.price.cost(usage) if spent_usd is None else spent_usd,
                latency_s=reading.latency_s(),
                queued_s=reading.queued_s,
                retry=retry,
                reask=turn.reask,
                **extra,
            )
        )

    async def one_try(this_retry: int) -> AsyncGenerator[StreamDelta | AttemptEnd, None]:
        nonlocal reading, retry
        reading, retry = _Reading(), this_retry
        try:
            async with contextlib.aclosing(_events(model, sent)) as events:
                async for event in events:
                    if isinstance(event, Queued):
                        reading.queued_s = event.seconds or 0.0
                    elif isinstance(event, StreamStarted):
                        reading.opened = True
                    elif isinstance(event, InputReported):
                        reading.input_tokens = event.input_tokens
                    elif isinstance(event, StreamDone):
                        reading.done = event
                    else:
                        reading.received.add(event.text)
                        if policy.mode != "buffer":
                            delta = reading.redactor.feed(event.text, whole_lines=hold_back_line)
                            if delta:
                                yield StreamDelta(delta, tier.name, model.model)
                                shown.add(delta)
                        verdict = _partial_failure(chain, reading)
                        if verdict is None:
                            continue
                        if must_finish(
                            policy, shown.length, count_tokens(shown.text, model.model), model.max_tokens
                        ):
                            reading.doomed = verdict  # shown for good: finish, degraded
                            continue
                        # Stop now: leaving the loop closes the stream and its connection.
                        attempt = record(Outcome.ABORTED, verdicts=(verdict,), output=reading.text)
                        yield AttemptEnd(attempt, shown.text, degraded=False)
                        return
        except (GeneratorExit, asyncio.CancelledError):
            # the consumer went away mid-answer (a closed tab, a timeout): the call went out
            # and is paid for what it produced, so it is in the ledger
            if reading.opened and not reading.recorded and reading.done is None:
                record(Outcome.ABORTED, output=reading.text or None, error="the caller stopped reading")
            raise
        except ProviderError as exc:
            record(
                Outcome.ERROR,
                isinstance(exc, ProviderTimeout),
                exc.spent_usd,
                error=str(exc),
                error_code=exc.code,
                output=reading.text or None,
            )
            if shown.length:  # a retry on this model would repeat what the consumer saw
                raise _StreamBroke(str(exc)) from None
            raise

    tries = retried(model.retry_strategy, one_try, also_stop=turn.budget_stop())
    try:
        while True:
            try:  # only advancing is guarded: no AttemptEnd may be yielded while we are closed
                item = await anext(tries)
            except StopAsyncIteration:
                break
            except ProviderError as exc:
                broke = isinstance(exc, _StreamBroke) and degrade_on_fault(policy, shown.length)
                yield AttemptEnd(ledger[-1], shown.text, degraded=broke)
                return
            yield item
            if isinstance(item, AttemptEnd):
                return
    finally:
        with contextlib.suppress(ProviderError):  # a provider failing to close: nothing to bill
            await tries.aclose()

    assert reading.done is not None
    usage = _billed_usage(reading, sent, model, True)
    completion = Completion(
        text=reading.text,
        model=model.model,
        usage=usage,
        finish_reason=reading.done.finish_reason,
        logprobs=reading.done.logprobs,
        tool_calls=reading.done.tool_calls,
        refusal=reading.done.refusal,
    )
    attempt = await judge(
        turn,
        sent,
        completion,
        cost_usd=model.price.cost(usage) if reading.done.cost_usd is None else reading.done.cost_usd,
        latency_s=reading.latency_s(),
        queued_s=reading.queued_s,
        retry=retry,
        earlier=(reading.doomed,) if reading.doomed is not None else (),
    )
    accepted = attempt.outcome is Outcome.ACCEPTED
    # decided on what was shown before the held-back line: that line is shown only with an
    # answer that stands (accepted, or finished degraded)
    shown_text = shown.text
    degraded = not accepted and must_finish(
        policy, len(shown_text), count_tokens(shown_text, model.model), model.max_tokens
    )
    answer = attempt.output or ""
    if (accepted or degraded) and answer.startswith(shown_text) and len(answer) > len(shown_text):
        yield StreamDelta(answer[len(shown_text) :], tier.name, model.model)
        shown_text = answer
    yield AttemptEnd(attempt, shown_text, degraded)


async def _events(model: TierModel, request: Request) -> AsyncGenerator[StreamEvent, None]:
    """The provider's stream (or its whole answer as one piece), failing on silence."""
    async with contextlib.aclosing(open_stream(model.provider, request)) as events:
        iterator = aiter(events)
        queued = False  # waiting for a rate limit is no silence of the provider's
        while True:
            try:
                if model.idle_timeout_s is None or queued:
                    event = await anext(iterator)
                else:
                    event = await asyncio.wait_for(anext(iterator), model.idle_timeout_s)
            except StopAsyncIteration:
                return
            except ProviderError:
                raise
            except TimeoutError:
                raise ProviderTimeout(
                    f"timeout: the stream was silent for {model.idle_timeout_s:g}s"
                ) from None
            except Exception as exc:  # a bug or an SDK surprise: a failed call, not a crash
                raise unexpected_error(exc) from None
            if isinstance(event, Queued):
                queued = event.seconds is None
            yield event


def _partial_failure(chain: Any, reading: _Reading) -> Verdict | None:
    """A failed partial check, run every few characters while nothing has doomed the answer."""
    if reading.doomed is not None or reading.received.length < next_partial_check(reading.checked_at):
        return None
    reading.checked_at = reading.received.length
    verdict = check_partial(chain, reading.text)
    if verdict is None:
        return None
    return Verdict(
        verdict.verifier, False, f"stopped early: {verdict.reason}", verdict.score, verdict.cost_usd
    )


def _billed_usage(reading: _Reading, sent: Request, model: TierModel, bill_input: bool) -> Usage:
    """Reported usage when the stream finished; else input as reported or counted and the
    output counted from the text received. A call that failed before any of its answer
    arrived (an HTTP error) is not billed unless `bill_input` (a timeout: the provider may
    have processed it)."""
    if reading.done is not None and reading.done.usage is not None:
        return reading.done.usage
    if not (bill_input or reading.opened or reading.text or reading.input_tokens is not None):
        return Usage()
    input_tokens = reading.input_tokens
    if input_tokens is None:
        input_tokens = count_tokens(sent.text(), model.model)
    return Usage(input_tokens, count_tokens(reading.text, model.model), estimated=True)
