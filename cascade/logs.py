"""structlog set-up: events to stderr, as JSON lines or for the console, keys redacted.

Event names are snake_case facts (`attempt_finished`). Every rendered line passes
through `cascade.core.redaction.redact` on its way out, so a key that slipped into an error
message or a nested value still never reaches a log.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from typing import Any, Literal

import structlog

from cascade.core.redaction import redact

LogFormat = Literal["json", "console"]


def _redact_rendered(_: Any, __: str, line: str) -> str:
    """The last step: whatever was rendered (nested values, tracebacks), keys come out."""
    return redact(line)


class StderrLogger:
    """Prints each event to whatever `sys.stderr` is when the event is written, not when the
    logger was made: a test runner or a host application may swap stderr (and close the old
    one) after logging was configured."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


def _stderr_logger(*_: Any) -> StderrLogger:
    return StderrLogger()


def _processors(fmt: LogFormat) -> list[Any]:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        renderer,
        _redact_rendered,
    ]


def _level(level: str) -> Any:
    return structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()])


def configure_logging(fmt: LogFormat = "console", level: str = "info") -> None:
    """Send cascade's events to stderr in `fmt` at `level` and above (the CLI calls this)."""
    structlog.configure(
        processors=_processors(fmt),
        wrapper_class=_level(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    """The application's structlog logger if it configured structlog; else one of our own
    that writes warnings and above to stderr, never to the stdout a program may be using."""
    if structlog.is_configured():
        return structlog.get_logger("cascade")
    return _own_logger()


@cache  # built once: its console renderer is costly to make, and every request asks for a logger
def _own_logger() -> Any:
    return structlog.wrap_logger(
        StderrLogger(),
        processors=_processors("console"),
        wrapper_class=_level("warning"),
    )


def info_enabled(logger: Any) -> bool:
    """Would `logger.info` write anything? Callers skip building an event nobody will see."""
    try:  # structlog's filtering and stdlib loggers answer; a generic BoundLogger only seems to
        return bool(logger.is_enabled_for(logging.INFO))
    except Exception:
        return True
