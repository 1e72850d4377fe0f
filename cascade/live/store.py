"""The ledger's database: the tables of `cascade.live.rows` in SQLite (WAL, the embedded
default) or PostgreSQL (`cascade.live.postgres`), behind one small interface.

A store is used from one thread at a time: the writer's thread writes through its own
store, and readers (the report, the audit's start) open theirs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from cascade.core.errors import ConfigError
from cascade.live.rows import ADDED_COLUMNS, TABLES, Row
from cascade.live.sql import (
    added_column_statements,
    create_statements,
    grouped,
    insert_statement,
    read_rows,
    select_statement,
    total_statement,
)


class LedgerStore(Protocol):
    """Where ledger rows go and come back from."""

    def insert(self, rows: Sequence[Row]) -> None:
        """Add `rows` in one transaction: all of them or none."""

    def select(self, table: str, since: float | None = None) -> list[dict[str, Any]]:
        """The rows of `table` (from `since`, a Unix time, on), oldest first, as dicts."""

    def total(self, table: str, column: str, since: float) -> float:
        """The sum of a money column of `table` over its rows from `since` on."""

    def close(self) -> None: ...


SQLITE_TYPES = {"flag": "INTEGER", "integer": "INTEGER", "real": "REAL"}


class SqliteStore:
    """The ledger in a SQLite file, in WAL mode: readers never wait for the writer, and a
    process killed mid-write leaves the last committed transaction whole."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self._lock = threading.Lock()  # a budget's check reads from other threads than the writer's
        if not create and not path.is_file():
            raise ConfigError(f"{path}: no such ledger")
        try:
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable up to the last checkpoint's fsync
            if create:
                for statement in create_statements(**SQLITE_TYPES):
                    self.db.execute(statement)
            else:
                self._check_is_ledger()
            self._add_columns()
        except sqlite3.Error as exc:
            raise ConfigError(f"{path}: cannot open the ledger: {exc}") from None

    def _add_columns(self) -> None:
        """Give a ledger made by an earlier version the columns added since."""
        existing = {
            table: {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for table in ADDED_COLUMNS
        }
        present = {table: columns for table, columns in existing.items() if columns}
        for statement in added_column_statements(present, **SQLITE_TYPES):
            try:
                self.db.execute(statement)
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

    def _check_is_ledger(self) -> None:
        found = {name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "results" not in found:
            raise ConfigError(f"{self.path}: not a cascade ledger (no `results` table)")

    def insert(self, rows: Sequence[Row]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table, values in grouped(rows).items():
                self.db.executemany(insert_statement(table, "?"), values)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def select(self, table: str, since: float | None = None) -> list[dict[str, Any]]:
        if table not in TABLES:
            raise ValueError(f"no table {table!r}")
        try:
            cursor = self.db.execute(select_statement(table, "?", since), () if since is None else (since,))
        except sqlite3.OperationalError as exc:  # a ledger from before a table existed
            if "no such table" in str(exc):
                return []
            raise
        return read_rows(table, cursor, where=str(self.path))

    def total(self, table: str, column: str, since: float) -> float:
        with self._lock:
            (value,) = self.db.execute(total_statement(table, column, "?", "REAL"), (since,)).fetchone()
        return float(value)

    def close(self) -> None:
        self.db.close()


def open_store(*, path: Path | None = None, url: str | None = None, create: bool = True) -> LedgerStore:
    """The store at `path` (SQLite) or `url` (PostgreSQL); ConfigError when it cannot open."""
    if url is not None:
        from cascade.live.postgres import PostgresStore  # psycopg loads only for a PostgreSQL ledger

        return PostgresStore(url, create=create)
    assert path is not None, "a ledger needs a path or a url"
    return SqliteStore(path, create=create)
