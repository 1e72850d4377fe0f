"""The SQL both ledger backends run, made from the tables of `cascade.live.rows`: each
backend gives its own column types and placeholder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cascade.core.errors import ConfigError
from cascade.live.rows import ADDED_COLUMNS, FLAG_COLUMNS, INT_COLUMNS, REAL_COLUMNS, TABLES, Row, row_dict

INDEXES = ("results (ts)", "attempts (ts)", "audits (ts)", "shadows (ts)", "alarms (ts)")


def column_type(column: str, *, flag: str, integer: str, real: str) -> str:
    if column in FLAG_COLUMNS:
        return flag
    if column in INT_COLUMNS:
        return integer
    if column in REAL_COLUMNS:
        return real
    return "TEXT"  # money too: exact decimal text, summed as Decimal


def create_statements(*, flag: str, integer: str, real: str) -> list[str]:
    """The DDL of every table and index (idempotent)."""
    statements = [
        f"CREATE TABLE IF NOT EXISTS {table} ("
        + ", ".join(f"{c} {column_type(c, flag=flag, integer=integer, real=real)}" for c in columns)
        + ")"
        for table, columns in TABLES.items()
    ]
    for index in INDEXES:
        table, columns = index.split(" ", 1)
        statements.append(f"CREATE INDEX IF NOT EXISTS {table}_ts ON {table} {columns}")
    return statements


def added_column_statements(
    existing: dict[str, set[str]], *, flag: str, integer: str, real: str
) -> list[str]:
    """ALTER TABLE for each column a ledger made before it lacks (`existing`: table -> its
    columns, for the tables there are)."""
    return [
        f"ALTER TABLE {table} ADD COLUMN {c} {column_type(c, flag=flag, integer=integer, real=real)}"
        for table, columns in ADDED_COLUMNS.items()
        if table in existing
        for c in columns
        if c not in existing[table]
    ]


def insert_statement(table: str, placeholder: str) -> str:
    columns = TABLES[table]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))})"


def total_statement(table: str, column: str, placeholder: str, real: str) -> str:
    """The sum of a money column over the rows from a time on (a budget's check: as a float)."""
    if column not in TABLES[table]:
        raise ValueError(f"no column {column!r} in {table}")
    return f"SELECT COALESCE(SUM(CAST({column} AS {real})), 0) FROM {table} WHERE ts >= {placeholder}"


def select_statement(
    table: str, placeholder: str, since: float | None, missing: frozenset[str] = frozenset()
) -> str:
    """The rows of `table` (from a time on); a column of `missing` (one added since the ledger
    was made, on a ledger opened without altering it) reads as NULL."""
    where = "" if since is None else f" WHERE ts >= {placeholder}"
    columns = ", ".join(f"NULL AS {c}" if c in missing else c for c in TABLES[table])
    return f"SELECT {columns} FROM {table}{where} ORDER BY ts"


def grouped(rows: Sequence[Row]) -> dict[str, list[tuple[Any, ...]]]:
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_table.setdefault(row.table, []).append(row.values)
    return by_table


def read_rows(table: str, rows: Any, *, where: str) -> list[dict[str, Any]]:
    """Stored rows as dicts; a row that is no ledger row (edited by hand, written by another
    program) is a ConfigError naming the ledger, the table and the row."""
    out = []
    for number, values in enumerate(rows, 1):
        try:
            out.append(row_dict(table, tuple(values)))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ConfigError(f"{where}: table {table}, row {number}: not a ledger row ({exc})") from None
    return out
