"""Rate limits: token buckets, the adaptive cap on calls in flight, and the job-wide call cap."""

from __future__ import annotations

import asyncio
import time

import pytest

from cascade.core.errors import TransientProviderError
from cascade.core.values import Request
from cascade.providers.rate_limited import AdaptiveGate, RateLimitedProvider, TokenBucket
from cascade.testing import ScriptedProvider


class FakeClock:
    """A clock that moves only when the bucket sleeps: timings are exact, whatever the load."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_spaces_requests_out_on_a_fake_clock():
    clock = FakeClock()

    async def go() -> float:
        bucket = TokenBucket(per_minute=600, clock=clock, sleep=clock.sleep)  # 10 a second, bursts of 10
        for _ in range(20):
            await bucket.acquire()
        return clock.now - 100.0

    # the first 10 at once, the next 10 one every 0.1 s
    assert asyncio.run(go()) == pytest.approx(1.0)
    assert len(clock.slept) == 10 and all(s == pytest.approx(0.1) for s in clock.slept)


def test_token_bucket_spaces_requests_out():
    async def go() -> float:
        bucket = TokenBucket(per_minute=600)  # 10 a second, bursts of 10
        started = time.monotonic()
        for _ in range(20):
            await bucket.acquire()
        return time.monotonic() - started

    elapsed = asyncio.run(go())
    # The lower bound is the point: 10 beyond the burst must be spread over a second. The
    # upper bound only catches a bucket that waits far too long: a loaded CI machine can
    # oversleep every one of the 10 sleeps, so it is loose (the exact timing is tested on
    # a fake clock above).
    assert 0.8 < elapsed < 10.0


def test_adaptive_gate_halves_on_429_and_regrows():
    async def go() -> list[int]:
        gate = AdaptiveGate(8)
        seen = [gate.limit]
        gate.back_off()
        seen.append(gate.limit)
        gate.back_off()
        seen.append(gate.limit)
        for _ in range(3):
            await gate.recover()
        seen.append(gate.limit)
        return seen

    assert asyncio.run(go()) == [8, 4, 2, 5]


def _limited(provider: ScriptedProvider, **kwargs: object) -> RateLimitedProvider:
    return RateLimitedProvider(provider, max_in_flight=8, **kwargs)  # type: ignore[arg-type]


def test_a_429_slows_down_only_the_model_that_got_it():
    throttled = _limited(
        ScriptedProvider("a", [TransientProviderError("429", status=429)]),
        requests_per_minute=600,
        tokens_per_minute=60_000,
    )
    other = _limited(ScriptedProvider("b", default="fine"), requests_per_minute=600, tokens_per_minute=60_000)

    async def go() -> None:
        await other.complete(Request.from_prompt("q"))
        with pytest.raises(TransientProviderError):
            await throttled.complete(Request.from_prompt("q"))

    asyncio.run(go())
    assert throttled.gate.limit == 4  # in-flight cap halved
    assert throttled.requests is not None and throttled.tokens is not None
    assert throttled.requests.rate == throttled.requests.base_rate / 2
    assert throttled.tokens.rate == throttled.tokens.base_rate / 2
    assert throttled.requests.level <= 0  # and its bucket emptied
    assert other.gate.limit == 8
    assert other.requests is not None and other.tokens is not None
    assert other.requests.rate == other.requests.base_rate
    assert other.tokens.rate == other.tokens.base_rate


def test_waiting_for_a_rate_limit_holds_no_call_slot():
    calls = asyncio.Semaphore(1)  # one call in flight for the whole job
    slow = _limited(ScriptedProvider("slow", default="late"), calls=calls, requests_per_minute=6)
    fast = _limited(ScriptedProvider("fast", default="now"), calls=calls)

    async def go() -> None:
        assert slow.requests is not None
        slow.requests.level = 0.0  # its next call waits ~10 s for a token
        waiting = asyncio.create_task(slow.complete(Request.from_prompt("q")))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        completion = await asyncio.wait_for(fast.complete(Request.from_prompt("q")), timeout=5)
        assert completion.text == "now"
        assert not waiting.done() and slow.provider.requests == []  # type: ignore[attr-defined]
        waiting.cancel()

    asyncio.run(go())


def test_the_call_slot_is_held_during_the_call():
    calls = asyncio.Semaphore(1)
    seen: list[bool] = []

    class Probe(ScriptedProvider):
        async def complete(self, request: Request):
            seen.append(calls.locked())
            return await super().complete(request)

    limited = _limited(Probe("p", default="ok"), calls=calls)
    asyncio.run(limited.complete(Request.from_prompt("q")))
    assert seen == [True] and not calls.locked()


def test_a_stream_settles_the_token_guess():
    frozen = FakeClock()  # no refill while the test runs: the level is exact
    limited = _limited(ScriptedProvider("m", default="four words of answer"), output_guess=1000)
    limited.tokens = TokenBucket(600_000, clock=frozen, sleep=frozen.sleep)  # 10,000 a second
    capacity = limited.tokens.capacity

    async def go() -> int:
        used = 0
        async for event in limited.stream_events(Request.from_prompt("a question")):
            usage = getattr(event, "usage", None)
            if usage is not None:
                used = usage.input_tokens + usage.output_tokens
        return used

    used = asyncio.run(go())
    assert 0 < used < 1000
    assert limited.tokens.level == pytest.approx(capacity - used)  # the guess of ~1000 was corrected


def test_a_configured_rate_limit_holds_for_live_calls_across_cascades(fake_server, monkeypatch):
    """Not only in batch jobs: eight concurrent `arun` calls of two cascades built from one
    config share the model's 120 requests a minute (a burst of two, then two a second)."""
    import asyncio

    from cascade import Cascade
    from cascade.config import parse_config
    from cascade.testing.server import Reply
    from tests.conftest import loopback_tier

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-limits-123")
    fake_server.default = Reply.text("ok")
    tier = {**loopback_tier(fake_server, "only", "m"), "rate_limit": {"requests_per_minute": 120}}
    config = parse_config({"tiers": [tier]})

    async def burst() -> None:
        async with Cascade.from_config(config) as one, Cascade.from_config(config) as two:
            await asyncio.gather(*(c.arun(f"q{i}") for i, c in enumerate([one, two] * 4)))

    asyncio.run(burst())
    sent = sorted(r.received_at for r in fake_server.requests)
    assert len(sent) == 8
    assert sent[-1] - sent[0] >= 2.5  # six after the burst of two, at two a second
    assert sent[1] - sent[0] < 0.5
