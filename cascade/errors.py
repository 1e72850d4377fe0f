"""The one error tree of cascade.

    CascadeError
    ├── ConfigError              a config file or argument is wrong (CLI exit 2)
    ├── ProviderError            a call to a model failed
    │   ├── TransientProviderError   worth retrying: 429, 5xx, 529, timeouts, dropped
    │   │                            connections, malformed bodies (a proxy hiccup as often as not)
    │   │   └── ProviderTimeout          no answer in time (the provider may still bill the input)
    │   └── PermanentProviderError   not worth retrying: 400, 401, 403, 404, a missing API key
    └── ExhaustedError           no tier gave an acceptable answer; carries every attempt

Messages never contain API keys: provider errors are built from status codes and
server messages that pass through `cascade.secrets.redact`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.types import Result


class CascadeError(Exception):
    """Base of every error cascade raises on purpose."""


class ConfigError(CascadeError):
    """A configuration is invalid; the message names the file and the field."""


class ProviderError(CascadeError):
    """A model call failed. `status` is the HTTP status when there was one."""

    transient: bool = False

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class TransientProviderError(ProviderError):
    """A failure that may go away on a retry."""

    transient = True


class ProviderTimeout(TransientProviderError):
    """No answer within the model's timeout. The request may have been processed and billed."""


class PermanentProviderError(ProviderError):
    """A failure that a retry will not fix; the cascade moves on to the next model."""


class ExhaustedError(CascadeError):
    """Every tier was tried (or the budget ran out) without an acceptable answer.

    `result` holds every attempt and the cost of them all, so that nothing paid for is lost.
    """

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result
