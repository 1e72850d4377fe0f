"""Tenacity policies for transient provider errors.

Only `TransientProviderError` is retried. The wait honours the server's retry-after
when it sent one, else backs off exponentially with jitter. A retry-after longer than
the model's `max_wait_s` stops the retries at once: the cascade does better moving on
to the next model than sleeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from cascade.config import RetryConfig
from cascade.core.errors import ProviderError

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


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.transient


def retrying(config: RetryConfig) -> AsyncRetrying:
    """An AsyncRetrying for one model's calls under `config`; it re-raises the last error."""
    return AsyncRetrying(
        stop=stop_after_attempt(config.max_attempts) | stop_if_retry_after_exceeds(config.max_wait_s),
        wait=wait_retry_after(
            wait_exponential(multiplier=config.initial_wait_s, max=config.max_wait_s)
            + wait_random(0, config.initial_wait_s)
        ),
        retry=retry_if_exception(_is_transient),
        reraise=True,
    )


async def call_with_retries(config: RetryConfig, call: Callable[[int], Awaitable[T]]) -> T:
    """`call(retry_index)` under the policy; the index is 0 for the first try."""
    async for attempt in retrying(config):
        with attempt:
            return await call(attempt.retry_state.attempt_number - 1)
    raise AssertionError("unreachable: tenacity re-raises or returns")  # pragma: no cover
