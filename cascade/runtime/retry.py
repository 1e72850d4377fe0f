"""Retrying transient provider errors: tenacity's strategies, one driver.

Only `TransientProviderError` is retried. The wait honours the server's retry-after when
it sent one, else backs off exponentially with jitter. A retry-after longer than the
model's `max_wait_s` stops the retries at once: the cascade does better moving on to the
next model than sleeping. A request whose budget is spent is not retried either.

Each model's strategy is built once. The driver makes the first try directly and
consults the strategy only after a failure, so a call that succeeds (most of them) pays
nothing for retries; tenacity's `AsyncRetrying` would build its machinery on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential, wait_random
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from cascade.config import RetryConfig
from cascade.core.errors import ProviderError
from cascade.core.policy import budget_exhausted

T = TypeVar("T")


def _retry_after(state: RetryCallState) -> float | None:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return None
    exc = outcome.exception()
    return exc.retry_after_s if isinstance(exc, ProviderError) else None


class wait_retry_after(wait_base):
    """Wait what the server asked for, else fall back to another wait strategy."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        asked = _retry_after(retry_state)
        return asked if asked is not None else self.fallback(retry_state)


class stop_if_retry_after_exceeds(stop_base):
    """Stop when the server asks for a longer wait than we are willing to sit through."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        asked = _retry_after(retry_state)
        return asked is not None and asked > self.max_wait_s


class stop_if_budget_spent(stop_base):
    """Stop when what the request has spent so far (`spent()`) reaches its budget."""

    def __init__(self, spent: Callable[[], Decimal], budget: Decimal | None) -> None:
        self.spent = spent
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return budget_exhausted(self.spent(), self.budget)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.transient


@dataclass(frozen=True)
class RetryStrategy:
    """One model's retry policy as tenacity strategies: which errors, when to stop, how long to wait."""

    retry: retry_base
    stop: stop_base
    wait: wait_base

    @classmethod
    def of(cls, config: RetryConfig) -> RetryStrategy:
        return cls(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(config.max_attempts) | stop_if_retry_after_exceeds(config.max_wait_s),
            wait=wait_retry_after(
                wait_exponential(multiplier=config.initial_wait_s, max=config.max_wait_s)
                + wait_random(0, config.initial_wait_s)
            ),
        )

    def wait_after(self, state: RetryCallState, also_stop: stop_base | None) -> float | None:
        """Seconds to wait before the next try after the failure in `state`; None: give up."""
        if not self.retry(state) or self.stop(state) or (also_stop is not None and also_stop(state)):
            return None
        return self.wait(state)


async def retried(
    strategy: RetryStrategy,
    tries: Callable[[int], AsyncGenerator[T, None]],
    *,
    also_stop: stop_base | None = None,
) -> AsyncGenerator[T, None]:
    """What `tries(0)` yields; after a failure worth retrying, what `tries(1)` yields, and so
    on, until one try ends without a `ProviderError`. The last error is re-raised when the
    strategy (or `also_stop`) gives up. The argument is the retry index, 0 for the first try."""
    state: RetryCallState | None = None
    retry = 0
    while True:
        items = tries(retry)
        try:
            while True:
                # only advancing the try is guarded: an error raised while the consumer
                # closes us (at the yield below) must end the try, not start another
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
                except ProviderError as exc:
                    if state is None:  # created on the first failure only: most calls never fail
                        state = RetryCallState(None, None, (), ())  # type: ignore[arg-type]
                    state.set_exception((type(exc), exc, exc.__traceback__))
                    delay = strategy.wait_after(state, also_stop)
                    if delay is None:
                        raise
                    break
                yield item
        finally:
            await items.aclose()
        state.prepare_for_next_attempt()
        await asyncio.sleep(delay)
        retry += 1


async def call_with_retries(
    strategy: RetryStrategy, call: Callable[[int], Awaitable[T]], *, also_stop: stop_base | None = None
) -> T:
    """`call(retry_index)` under `strategy`, through `retried`; returns the first success."""

    async def once(retry: int) -> AsyncGenerator[T, None]:
        yield await call(retry)

    async with contextlib.aclosing(retried(strategy, once, also_stop=also_stop)) as results:
        async for result in results:
            return result
    raise AssertionError("unreachable: `retried` yields the success or raises")  # pragma: no cover
