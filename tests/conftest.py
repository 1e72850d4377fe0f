"""Shared fixtures: scripted tiers for in-process tests, a loopback fake provider for SDK tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog
from hypothesis import strategies as st

from cascade import Price, Provider, Tier, TierModel
from cascade.config import RetryConfig
from cascade.testing import ScriptedProvider
from cascade.testing.scripted import Reply

if TYPE_CHECKING:
    import anthropic
    import openai

    from cascade.testing.server import FakeProviderServer

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


def scripted(provider: Provider) -> ScriptedProvider:
    """A tier model's provider as the ScriptedProvider `scripted_tier` put there."""
    assert isinstance(provider, ScriptedProvider), provider
    return provider


def sdk_client(provider: Provider) -> openai.AsyncOpenAI | anthropic.AsyncAnthropic:
    """The SDK client of a provider built from config (an OpenAI or Anthropic adapter)."""
    from cascade.providers.anthropic import AnthropicAdapter
    from cascade.providers.openai import OpenAIAdapter

    assert isinstance(provider, OpenAIAdapter | AnthropicAdapter), provider
    assert provider.client is not None
    return provider.client


def run_cli(
    *args: str,
    env: Mapping[str, str | None] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`cascade ARGS...` as a user runs it: a subprocess, with `env` added to the environment
    (a variable given as None is taken out of it)."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        input=stdin,
        env={name: value for name, value in environment.items() if value is not None},
        timeout=timeout,
        cwd=cwd,
    )


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cascade.cli", *args]


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog unconfigured: a test that runs `main()` in
    process configures it, and must not change what the next test sees."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def fake_server() -> Iterator[FakeProviderServer]:
    from cascade.testing.server import FakeProviderServer

    with FakeProviderServer() as server:
        yield server


LOOPBACK_PRICE = {"input_per_mtok": "1", "output_per_mtok": "2"}
LOOPBACK_RETRY = {"max_attempts": 2, "initial_wait_s": 0, "max_wait_s": 1}


def loopback_url(server: FakeProviderServer, wire: str = "openai") -> str:
    """Where the loopback fake provider answers in `wire`'s protocol ("openai" or "anthropic")."""
    return server.openai_base_url if wire == "openai" else server.anthropic_base_url


def loopback_tier(
    server: FakeProviderServer, name: str, model: str, wire: str = "openai"
) -> dict[str, object]:
    """Config of a tier answered by the loopback fake provider in `wire`'s protocol."""
    return {
        "name": name,
        "provider": wire,
        "model": model,
        "base_url": loopback_url(server, wire),
        "price": LOOPBACK_PRICE,
        "retry": LOOPBACK_RETRY,
        "timeout_s": 5,
    }


# Any JSON document (finite numbers: what json.dumps writes by default and parsers accept).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
