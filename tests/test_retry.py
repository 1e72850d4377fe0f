"""Reading retry-after, and the tenacity policy built from a tier's retry settings."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from cascade.config import RetryConfig
from cascade.core.errors import PermanentProviderError, TransientProviderError
from cascade.providers.base import parse_retry_after, status_error
from cascade.runtime.retry import RetryStrategy, call_with_retries


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer header wins
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "100000"}, 120.0),  # capped
        ({}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date():
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    wait = parse_retry_after({"retry-after": in_ten})
    assert wait is not None and 8 <= wait <= 10


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent(status):
    assert isinstance(status_error(status, "no", {}), PermanentProviderError)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529])
def test_server_errors_and_throttling_are_transient(status):
    assert isinstance(status_error(status, "later", {"retry-after": "1"}), TransientProviderError)


def test_retries_are_bounded_and_permanent_errors_stop_at_once():
    calls: list[int] = []

    async def always(retry: int) -> str:
        calls.append(retry)
        raise TransientProviderError("503")

    config = RetryConfig(max_attempts=4, initial_wait_s=0, max_wait_s=1)
    with pytest.raises(TransientProviderError):
        asyncio.run(call_with_retries(RetryStrategy.of(config), always))
    assert calls == [0, 1, 2, 3]

    calls.clear()

    async def refused(retry: int) -> str:
        calls.append(retry)
        raise PermanentProviderError("401")

    with pytest.raises(PermanentProviderError):
        asyncio.run(call_with_retries(RetryStrategy.of(config), refused))
    assert calls == [0]
