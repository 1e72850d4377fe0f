"""What the ledger commands (`report --ledger`, `audit`) share: opening the ledger a flag
names, and reading `--since`."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.core.errors import ConfigError

if TYPE_CHECKING:  # the store loads with the command that reads it
    from cascade.live.store import LedgerStore

LEDGER_HELP = "the ledger: a SQLite file (the config's ledger.path) or a postgresql:// URL"
SINCE_HELP = (
    "only what was recorded from then on: a date (2026-12-01), a time (ISO 8601) or an age (7d, 24h, 30m)"
)
_AGE = re.compile(r"(\d+(?:\.\d+)?)([dhm])")
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60}


def since_time(text: str | None, *, now: float | None = None) -> float | None:
    """`--since` as a Unix time; ConfigError for text that is none of its forms."""
    if text is None:
        return None
    age = _AGE.fullmatch(text.strip())
    if age:
        return (time.time() if now is None else now) - float(age.group(1)) * _UNIT_S[age.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: give a date (2026-12-01), an ISO time, or an age (7d, 24h, 30m)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the ledger's days are UTC days
    return moment.timestamp()


def open_ledger(where: str) -> LedgerStore:
    """The store `--ledger` names, for reading: an existing SQLite ledger or a PostgreSQL one."""
    from cascade.live.store import open_store

    if where.lower().startswith(("postgresql://", "postgres://")):
        return open_store(url=where, create=False)
    return open_store(path=Path(where), create=False)
