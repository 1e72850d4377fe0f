"""Time waiting for a rate limit is `queued_s`, never part of `latency_s` (the provider's),
plain or streamed, answered or failed."""

from __future__ import annotations

import asyncio

import pytest

from cascade import Cascade, Tier, TierModel, TransientProviderError
from cascade.core.events import StreamResult
from cascade.providers.rate_limited import RateLimitedProvider
from cascade.testing import ScriptedProvider
from tests.conftest import CHEAP, FAST_RETRY


def limited_cascade(*replies: object) -> Cascade:
    """One tier behind a limit of 60 requests a minute: a burst of one, then one a second."""
    scripted = ScriptedProvider("m", replies)  # type: ignore[arg-type]
    limited = RateLimitedProvider(scripted, max_in_flight=4, requests_per_minute=60)
    return Cascade([Tier("only", (TierModel(limited, CHEAP, FAST_RETRY),))])


async def two_at_once(cascade: Cascade, streamed: bool) -> list[float]:
    async def one() -> tuple[float, float]:
        if streamed:
            events = [e async for e in cascade.astream("q", policy="buffer")]
            last = events[-1]
            assert isinstance(last, StreamResult)
            attempt = last.result.attempts[0]
        else:
            attempt = (await cascade.arun("q")).attempts[0]
        return attempt.queued_s, attempt.latency_s

    (q1, l1), (q2, l2) = await asyncio.gather(one(), one())
    return [*sorted([q1, q2]), max(l1, l2)]


@pytest.mark.parametrize("streamed", [False, True])
def test_the_wait_for_a_rate_limit_is_queued_not_latency(streamed: bool):
    first, second, slowest_latency = asyncio.run(two_at_once(limited_cascade("a", "b"), streamed))
    assert first < 0.2 and 0.7 < second < 2.0  # the second call waited for the next second
    assert slowest_latency < 0.3  # the provider itself answers at once


def test_a_failed_call_keeps_its_wait_apart_too():
    cascade = limited_cascade(TransientProviderError("HTTP 503"), TransientProviderError("HTTP 503"), "ok")
    result = cascade.run("q")
    retried = result.attempts[1]  # the first retry waited for the bucket, then failed
    assert retried.queued_s > 0.7 and retried.latency_s < 0.3
    assert result.attempts[0].to_dict()["queued_s"] < 0.2
