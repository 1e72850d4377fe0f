"""The one error tree of cascade.

    CascadeError
    ├── ConfigError              a config file or argument is wrong (CLI exit 2)
    ├── ProviderError            a call to a model failed
    │   ├── TransientProviderError   worth retrying: 429, 5xx, 529, timeouts, dropped
    │   │                            connections, malformed bodies (a proxy hiccup as often as not)
    │   │   └── ProviderTimeout          no answer in time (the provider may still bill the input)
    │   └── PermanentProviderError   not worth retrying: 400, 401, 403, 404, a missing API key
    │       └── MissingKeyError          the API key's environment variable is not set
    └── ExhaustedError           no tier gave an acceptable answer; carries every attempt

Messages never contain API keys: provider errors are built from status codes and
server messages that pass through `cascade.core.redaction.redact`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.core.values import Result


class CascadeError(Exception):
    """Base of every error cascade raises on purpose."""


class ConfigError(CascadeError):
    """A configuration is invalid; the message names the file and the field."""


class ProviderError(CascadeError):
    """A model call failed. `status` is the HTTP status when there was one."""

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        spent_usd: Decimal | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
        self.spent_usd = spent_usd  # what the failed call cost all the same (a nested cascade's tries)
        self.queued_s = 0.0  # time it waited for a rate limit first (set by the limiter)

    @property
    def code(self) -> str:
        """A short name of the failure, for machines: `http_401`, `missing_key`, `timeout`,
        `transient` or `permanent`."""
        if self.status is not None:
            return f"http_{self.status}"
        if isinstance(self, MissingKeyError):
            return "missing_key"
        if isinstance(self, ProviderTimeout):
            return "timeout"
        return "transient" if self.transient else "permanent"


class TransientProviderError(ProviderError):
    """A failure that may go away on a retry."""

    transient = True


class ProviderTimeout(TransientProviderError):
    """No answer within the model's timeout. The request may have been processed and billed."""


class PermanentProviderError(ProviderError):
    """A failure that a retry will not fix; the cascade moves on to the next model."""


class MissingKeyError(PermanentProviderError):
    """The model's API key is not in the environment: every call to it will fail."""


# failures that will hit every request of a job alike until someone fixes the config or the key
CONFIGURATION_FAILURES = frozenset({"http_401", "http_403", "http_404", "missing_key"})


class ExhaustedError(CascadeError):
    """Every tier was tried (or the budget ran out) without an acceptable answer.

    `result` holds every attempt and the cost of them all, so that nothing paid for is lost.
    """

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result
