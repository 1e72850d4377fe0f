"""structlog set-up: events to stderr, as JSON lines or for the console, keys redacted.

Event names are snake_case facts (`attempt_finished`, `retrying`). Every string value
passes through `cascade.secrets.redact` on its way out, so a key that slipped into an
error message still never reaches a log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from cascade.secrets import redact

LogFormat = Literal["json", "console"]


def _redact_values(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    return {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}


def configure_logging(fmt: LogFormat = "console", level: str = "info") -> None:
    """Send cascade's events to stderr in `fmt` at `level` and above."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    return structlog.get_logger("cascade")
