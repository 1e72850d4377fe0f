"""Rate limits per model: token buckets for requests and tokens per minute, an adaptive cap
on calls in flight that halves on every 429 and grows back on success, and a job-wide cap on
calls in flight shared by every model.

Each model has its own buckets and its own adaptive cap, and a call waiting in them holds
no share of the job-wide cap: so one tier's limit never stalls another tier's calls.
"""

from __future__ import annotations

import asyncio
import copy
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from cascade.core.errors import ProviderError
from cascade.core.stream_events import Queued, StreamDone, StreamEvent
from cascade.core.tokens import count_tokens
from cascade.core.values import Completion, Request
from cascade.protocols import Provider
from cascade.providers.base import open_stream

DEFAULT_OUTPUT_GUESS = 256  # tokens an answer is assumed to take before it is known
EPSILON = 1e-9

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# What a call through a limiter runs once it has its slot, just before it goes out: a batch
# job uses it to keep an item that has not called anything yet from starting after a stop.
CALL_GUARD: ContextVar[Callable[[], None] | None] = ContextVar("cascade_call_guard", default=None)


def _call_starting() -> None:
    guard = CALL_GUARD.get()
    if guard is not None:
        guard()


class TokenBucket:
    """`per_minute` units a minute, refilled continuously, bursting up to one second's worth
    (at least one request). A request larger than the bucket waits for a full bucket and
    then takes it into debt, so it is never starved. `clock` and `sleep` are injectable
    (tests drive the bucket with a fake clock)."""

    def __init__(
        self, per_minute: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if not per_minute > 0:
            raise ValueError("a rate limit must be positive")
        self.base_rate = per_minute / 60.0
        self.rate = self.base_rate
        self.capacity = max(1.0, self.base_rate)
        self.level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self.updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self, amount: float = 1.0) -> None:
        async with self._lock:  # first come, first served
            self._refill()
            need = min(amount, self.capacity)
            # a rounding error is no reason to wait (nor to sleep for a time no clock can show)
            while need - self.level > EPSILON * need:
                await self._sleep((need - self.level) / self.rate)
                self._refill()
            self.level -= amount

    def spare(self, amount: float = 1.0) -> bool:
        """Is there `amount` now, with as much again left after it? (Work beside the live
        requests takes only what they leave.)"""
        self._refill()
        return not self._lock.locked() and self.level >= 2 * amount

    def settle(self, difference: float) -> None:
        """Correct a guess once the real amount is known (positive: more was used)."""
        self._refill()
        self.level = min(self.capacity, self.level - difference)

    def slow_down(self) -> None:
        """A 429: halve the rate (down to a tenth of the limit) and empty the bucket."""
        self._refill()
        self.rate = max(self.base_rate / 10, self.rate / 2)
        self.level = min(self.level, 0.0)

    def speed_up(self) -> None:
        self._refill()
        self.rate = min(self.base_rate, self.rate + self.base_rate / 20)


class AdaptiveGate:
    """At most `limit` calls in flight; the limit halves on a 429 and regrows by one per
    success, up to `ceiling` (additive increase, multiplicative decrease)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self.in_flight = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def back_off(self) -> None:
        self.limit = max(1, self.limit // 2)

    async def recover(self) -> None:
        async with self._changed:
            if self.limit < self.ceiling:
                self.limit += 1
                self._changed.notify_all()


class InFront:
    """A provider that stands in front of another: its settings and its closing are the other's."""

    provider: Provider

    @property
    def params(self) -> Any:
        return getattr(self.provider, "params", {})

    @property
    def structured_output(self) -> bool:
        return bool(getattr(self.provider, "structured_output", False))

    async def aclose(self) -> None:
        await self.provider.aclose()


class RateLimitedProvider(InFront):
    """A provider behind its model's limits. 429s slow it down; successes speed it up.

    A call first waits in this model's buckets, then for this model's adaptive cap, and only
    then takes a slot of `calls` (the job-wide cap on calls in flight, shared by every model)
    for the provider call itself: waiting for a rate limit holds no slot another model could
    use."""

    def __init__(
        self,
        provider: Provider,
        *,
        max_in_flight: int,
        calls: asyncio.Semaphore | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        output_guess: int | None = None,
    ) -> None:
        self.provider = provider
        self.model = provider.model
        self.gate = AdaptiveGate(max_in_flight)
        self.calls = calls
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self.output_guess = output_guess or DEFAULT_OUTPUT_GUESS

    def sharing_with(self, provider: Provider) -> RateLimitedProvider:
        """Another client of the same model (a judge's, with its own params) behind these same
        limits: the buckets, the adaptive cap and the job-wide slots are shared."""
        twin = copy.copy(self)
        twin.provider, twin.model = provider, provider.model
        return twin

    def has_spare(self, request: Request) -> bool:
        """Could a call for `request` go out now and leave the limits room for another: what
        an audit or a shadow call asks before it starts, so that none makes a live request
        wait (with a bucket of one, that is never)."""
        if self.requests and not self.requests.spare(1):
            return False
        guess = float(count_tokens(request.text(), self.model) + self.output_guess) if self.tokens else 0.0
        return not self.tokens or self.tokens.spare(guess)

    async def _admit(self, request: Request) -> float:
        """Wait for the buckets; the token guess (0 without a tokens bucket: no count needed)."""
        if self.requests:
            await self.requests.acquire(1)
        if not self.tokens:
            return 0.0
        guess = float(count_tokens(request.text(), self.model) + self.output_guess)
        await self.tokens.acquire(guess)
        return guess

    async def _slot(self, stack: AsyncExitStack) -> None:
        """This model's adaptive cap, then a job-wide call slot, both held until `stack` closes."""
        await stack.enter_async_context(self.gate)
        if self.calls is not None:
            await stack.enter_async_context(self.calls)

    async def _outcome(self, error: ProviderError | None, guess: float, used: int | None) -> None:
        if error is not None and error.status == 429:
            self.gate.back_off()
            for bucket in (self.requests, self.tokens):
                if bucket:
                    bucket.slow_down()
            return
        if error is None:
            await self.gate.recover()
            for bucket in (self.requests, self.tokens):
                if bucket:
                    bucket.speed_up()
            if self.tokens and used is not None:
                self.tokens.settle(used - guess)

    async def complete(self, request: Request) -> Completion:
        """The provider's answer, once the limits let the call out; the wait is the
        answer's (or the error's) `queued_s`."""
        entered = time.monotonic()
        guess = await self._admit(request)
        async with AsyncExitStack() as stack:
            await self._slot(stack)
            waited = time.monotonic() - entered
            _call_starting()
            try:
                completion = await self.provider.complete(request)
            except ProviderError as exc:
                exc.queued_s += waited
                await self._outcome(exc, guess, None)
                raise
        used = completion.usage.input_tokens + completion.usage.output_tokens
        await self._outcome(None, guess, used)
        return replace(completion, queued_s=completion.queued_s + waited)

    async def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """The provider's stream, once the limits let the call out, after a `Queued` event
        as the wait begins and another with its length as it ends."""
        entered = time.monotonic()
        yield Queued()
        guess = await self._admit(request)
        used: int | None = None
        async with AsyncExitStack() as stack:
            await self._slot(stack)
            yield Queued(time.monotonic() - entered)
            _call_starting()
            try:
                async for event in open_stream(self.provider, request):
                    if isinstance(event, StreamDone) and event.usage is not None:
                        used = event.usage.input_tokens + event.usage.output_tokens
                    yield event
            except ProviderError as exc:
                await self._outcome(exc, guess, None)
                raise
        await self._outcome(None, guess, used)


CONFIGURED_IN_FLIGHT = 64  # the adaptive cap's ceiling outside a batch job, which sets its own


def server_of(provider: Any) -> str:
    """The server a provider's client talks to (one model name on two servers is two models)."""
    client = getattr(provider, "client", None)
    return str(getattr(client, "base_url", ""))


# one limiter per model and server per event loop (asyncio's locks belong to one loop); a
# loop that ends takes its limiters with it
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[object, ...], RateLimitedProvider]]
_SHARED = weakref.WeakKeyDictionary()


class ConfiguredLimit(InFront):
    """A model behind its config's `rate_limit` in every mode: `run`, streams, a judge's calls.

    Every cascade of the process that calls the same model on the same server with the same
    limits shares one set of buckets and one adaptive cap (per event loop), so twelve
    concurrent `arun` calls at 6 requests a minute take a minute, as the limit says. A batch
    job puts its own limiter (with the command line's limits) in this one's place.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        output_guess: int | None = None,
    ) -> None:
        self.provider = provider
        self.model = provider.model
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.output_guess = output_guess
        self.key = (
            type(provider).__name__,
            server_of(provider),
            provider.model,
            requests_per_minute,
            tokens_per_minute,
        )

    def _limiter(self) -> RateLimitedProvider:
        shared = _SHARED.setdefault(asyncio.get_running_loop(), {})
        limiter = shared.get(self.key)
        if limiter is None:
            limiter = shared[self.key] = RateLimitedProvider(
                self.provider,
                max_in_flight=CONFIGURED_IN_FLIGHT,
                requests_per_minute=self.requests_per_minute,
                tokens_per_minute=self.tokens_per_minute,
                output_guess=self.output_guess,
            )
        return limiter.sharing_with(self.provider)

    async def complete(self, request: Request) -> Completion:
        return await self._limiter().complete(request)

    def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        return self._limiter().stream_events(request)

    def has_spare(self, request: Request) -> bool:
        return self._limiter().has_spare(request)


def unlimited(provider: Provider) -> Provider:
    """The provider a ConfiguredLimit stands in front of (any other, itself)."""
    return provider.provider if isinstance(provider, ConfiguredLimit) else provider
