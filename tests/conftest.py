"""Shared fixtures: scripted tiers for in-process tests, a loopback fake provider for SDK tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest

from cascade import Price, Tier, TierModel
from cascade.config import RetryConfig
from cascade.testing import ScriptedProvider
from cascade.testing.scripted import Reply

# Retries without waiting, so fault tests stay fast.
FAST_RETRY = RetryConfig(max_attempts=3, initial_wait_s=0, max_wait_s=1)
CHEAP = Price(Decimal("0.15"), Decimal("0.60"))
DEAR = Price(Decimal("5"), Decimal("25"))


def scripted_tier(name: str, *models: tuple[str, Sequence[Reply]], price: Price = CHEAP) -> Tier:
    """A tier whose models answer from scripts: `scripted_tier("small", ("m", ["hi"]))`."""
    return Tier(
        name,
        tuple(TierModel(ScriptedProvider(m, replies), price, FAST_RETRY) for m, replies in models),
    )


@pytest.fixture
def fake_server() -> Iterator[object]:
    from cascade.testing.server import FakeProviderServer

    with FakeProviderServer() as server:
        yield server
