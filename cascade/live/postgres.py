"""The ledger in PostgreSQL (psycopg 3), for gateways on several machines: the tables and
statements of `cascade.live.sql`, typed for the server.

A url is only ever shown through `safe_url`, and a server's error only after its password
is taken out: an error or a log line names the server, never how to log in to it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

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
from cascade.live.urls import safe_url, scrubbed

try:
    import psycopg
except ImportError:  # the `postgres` extra is not installed: said when a store is opened
    psycopg = None  # type: ignore[assignment]

PG_TYPES = {"flag": "BOOLEAN", "integer": "BIGINT", "real": "DOUBLE PRECISION"}
# the tables, then the columns added since a ledger may have been made (IF NOT EXISTS: no-ops on a new one)
DDL = create_statements(**PG_TYPES) + [
    statement.replace(" ADD COLUMN ", " ADD COLUMN IF NOT EXISTS ")
    for statement in added_column_statements({t: set() for t in ADDED_COLUMNS}, **PG_TYPES)
]
CONNECT_TIMEOUT_S = 5  # a server that does not answer fails the open, it does not hang the writer
# gateways starting together would race to create the same tables: one at a time, by this lock
CREATE_LOCK = 0x6361736361646531  # "cascade1"


class PostgresStore:
    """The ledger in a PostgreSQL database: each `insert` one transaction, tables made on
    first use (unless `create=False`, which opens only an existing ledger)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.where = safe_url(url)
        self._lock = threading.Lock()  # one connection: a budget's check and the writer take turns
        # columns added since the ledger was made, which a store opened with create=False (that
        # alters nothing: its role may not) reads as NULL
        self._missing: dict[str, frozenset[str]] = {}
        if psycopg is None:
            raise ConfigError(
                f"{self.where}: a PostgreSQL ledger needs psycopg: pip install 'verified-cascade[postgres]'"
            )
        try:
            timeout: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
            if "connect_timeout" in psycopg.conninfo.conninfo_to_dict(url):
                timeout = {}  # the url's own
            # autocommit: each insert is its own explicit transaction, and a select holds none open;
            # no prepared statements, so a transaction-pooling PgBouncer in front works too
            self.db = psycopg.connect(url, autocommit=True, prepare_threshold=None, **timeout)
        except psycopg.Error as exc:
            raise ConfigError(f"{self.where}: cannot connect to the ledger: {scrubbed(exc, url)}") from None
        try:
            if create:
                with self.db.transaction():
                    self.db.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_LOCK,))
                    for statement in DDL:
                        self.db.execute(statement)
            elif not self._is_ledger():
                raise ConfigError(f"{self.where}: not a cascade ledger (no `results` table)")
            else:
                self._missing = self._missing_columns()
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, psycopg.Error):
                raise ConfigError(f"{self.where}: cannot open the ledger: {scrubbed(exc, url)}") from None
            raise

    def _is_ledger(self) -> bool:
        found = self.db.execute("SELECT to_regclass('results') IS NOT NULL").fetchone()
        return bool(found and found[0])

    def _missing_columns(self) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for table, column in self.db.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            (list(ADDED_COLUMNS),),
        ).fetchall():
            found.setdefault(table, set()).add(column)
        return {t: frozenset(set(ADDED_COLUMNS[t]) - columns) for t, columns in found.items()}

    def insert(self, rows: Sequence[Row]) -> None:
        with self.db.transaction(), self.db.cursor() as cursor:  # an error rolls back every table
            for table, values in grouped(rows).items():
                cursor.executemany(insert_statement(table, "%s"), values)

    def select(self, table: str, since: float | None = None) -> list[dict[str, Any]]:
        if table not in TABLES:
            raise ValueError(f"no table {table!r}")
        try:
            statement = select_statement(table, "%s", since, self._missing.get(table, frozenset()))
            cursor = self.db.execute(statement, () if since is None else (since,))
        except psycopg.errors.UndefinedTable:  # a ledger from before a table existed
            return []
        return read_rows(table, cursor, where=self.where)

    def total(self, table: str, column: str, since: float) -> float:
        with self._lock:
            row = self.db.execute(
                total_statement(table, column, "%s", "DOUBLE PRECISION"), (since,)
            ).fetchone()
        return float(row[0]) if row else 0.0

    def close(self) -> None:
        self.db.close()
