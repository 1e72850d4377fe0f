"""What every provider adapter offers, and the helpers they share."""

from __future__ import annotations

import email.utils
import importlib
import time
from collections.abc import AsyncGenerator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from cascade.core.errors import (
    MissingKeyError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeout,
    TransientProviderError,
)
from cascade.core.redaction import redact
from cascade.core.stream_events import StreamDone, StreamEvent, TextDelta
from cascade.core.values import Request
from cascade.protocols import Provider, StreamingProvider

# HTTP statuses worth a retry; everything else 4xx is the caller's mistake and won't change.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER_S = 120.0


class StreamCutOff(TransientProviderError):
    """A stream that ended (cleanly, at the HTTP level) without its terminal event."""


def _http_library() -> ModuleType:
    """The SDKs' HTTP library: httpx2 in current releases, httpx before. Loaded with the first
    adapter (whose SDK loads it anyway), not with this module: the runtime imports this one
    for plans that call no SDK, and `cascade validate` builds no adapter."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:  # pragma: no cover
        return importlib.import_module("httpx")


def stream_transport_error(exc: Exception) -> ProviderError:
    """The cascade error for a transport failure while a stream is being read."""
    if isinstance(exc, _http_library().TimeoutException):
        return ProviderTimeout("timeout: the stream stalled")
    return TransientProviderError(redact(f"connection lost mid-stream: {type(exc).__name__}: {exc}"))


if TYPE_CHECKING:
    STREAM_TRANSPORT_ERRORS: tuple[type[Exception], ...]


def __getattr__(name: str) -> Any:
    # `STREAM_TRANSPORT_ERRORS`, the transport failures a stream may raise mid-read, made on
    # first use (an adapter's import) and kept
    if name == "STREAM_TRANSPORT_ERRORS":
        errors: tuple[type[Exception], ...] = (_http_library().TransportError,)
        globals()[name] = errors
        return errors
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_stream(provider: Provider, request: Request) -> AsyncGenerator[StreamEvent, None]:
    """The provider's stream of `request`; a provider that cannot stream gives its whole
    answer as one piece."""
    if isinstance(provider, StreamingProvider):
        return provider.stream_events(request)
    return stream_of_completion(provider, request)


async def stream_of_completion(provider: Provider, request: Request) -> AsyncGenerator[StreamEvent, None]:
    """A provider without streaming, as a stream: its whole answer as one delta."""
    completion = await provider.complete(request)
    yield TextDelta(completion.text)
    yield StreamDone(
        completion.finish_reason,
        completion.usage,
        completion.logprobs,
        completion.tool_calls,
        completion.refusal,
        completion.cost_usd,
    )


class _SdkClient(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_SdkClient)


class SdkAdapter(Generic[ClientT]):
    """What the SDK adapters share: an injected client (None when its API key is missing,
    so that the tier fails with a clear error instead of the whole cascade), the model,
    the tier's params, and whether to ask for structured output."""

    def __init__(
        self,
        client: ClientT | None,
        model: str,
        params: Mapping[str, Any] | None = None,
        *,
        structured_output: bool = False,
        missing_key_env: str | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.params = dict(params or {})
        self.structured_output = structured_output
        self._missing_key_env = missing_key_env

    def _ready_client(self) -> ClientT:
        if self.client is None:
            raise missing_key_error(self._missing_key_env)
        return self.client

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()


def status_error(status: int, message: str, headers: Mapping[str, str] | None) -> ProviderError:
    """The cascade error for an HTTP error status, with retry-after when the server sent one."""
    text = redact(f"HTTP {status}: {message}")
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientProviderError(text, status=status, retry_after_s=parse_retry_after(headers or {}))
    return PermanentProviderError(text, status=status)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return _bounded(float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return _bounded(float(raw))
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        return _bounded(email.utils.mktime_tz(parsed) - time.time())


def _bounded(seconds: float) -> float | None:
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def error_message(body: object, fallback: str) -> str:
    """The server's own message from an error body of either wire format."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return fallback


def missing_key_error(env_var: str | None) -> MissingKeyError:
    return MissingKeyError(f"no API key: environment variable {env_var} is not set")
