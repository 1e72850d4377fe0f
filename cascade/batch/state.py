"""The durable state of a batch job: SQLite in WAL mode, beside the output file.

Every finished item is committed here, with its whole output record, before the job moves
on; the output file is written from this state, at the end, through a temporary file and
an atomic rename. So a job killed at any moment (even `kill -9`) and run again redoes only
the items that had not finished, never sends a finished item to a provider again, and
never takes a half-written line for a result.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,          -- the id as JSON
    line INTEGER NOT NULL,         -- where the id first appears in the input
    done INTEGER NOT NULL DEFAULT 0,
    verified INTEGER,
    cost_usd TEXT,
    record TEXT                    -- the output line, once done
);
CREATE TABLE IF NOT EXISTS line_errors (line INTEGER PRIMARY KEY, record TEXT NOT NULL);
"""


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".state.sqlite")


class JobState:
    """What is done, what is pending, and what went into the output."""

    def __init__(self, output: Path, *, input_path: Path, config_digest: str) -> None:
        self.path = state_path(output)
        self.db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a crash of this process (kill -9); FULL adds power loss.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.config_changed = False
        self._pending_writes = 0
        self._check_job(input_path, config_digest)

    def _check_job(self, input_path: Path, config_digest: str) -> None:
        """A state file belongs to one input: resuming with another would mix two jobs."""
        stored = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        here = str(input_path.resolve())
        if not stored:
            self.db.executemany(
                "INSERT INTO meta VALUES (?, ?)", [("input", here), ("config", config_digest)]
            )
            return
        if stored.get("input") != here:
            raise ConfigError(
                f"{self.path} holds the state of a job on {stored.get('input')}, not {here}: "
                "choose another --output, or delete the state file to start over"
            )
        self.config_changed = stored.get("config") != config_digest
        if self.config_changed:
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (config_digest,))

    # -- the input pass --------------------------------------------------------------------

    def claim(self, key: str, line: int) -> tuple[str, int]:
        """Register an id seen on `line`: ("new" | "pending" | "done" | "duplicate", first line)."""
        row = self.db.execute("SELECT line, done FROM items WHERE key = ?", (key,)).fetchone()
        if row is None:
            self._write("INSERT INTO items (key, line) VALUES (?, ?)", (key, line))
            return "new", line
        first_line, done = row
        if first_line != line:
            return "duplicate", first_line
        return ("done" if done else "pending"), line

    def record_line_error(self, line: int, record: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO line_errors VALUES (?, ?)", (line, json.dumps(record)))

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        """Input-pass writes are grouped in transactions of a few hundred."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        self.db.execute(sql, args)
        self._pending_writes += 1
        if self._pending_writes >= 500:
            self.flush()

    def flush(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self._pending_writes = 0

    # -- results ---------------------------------------------------------------------------

    def finish(self, key: str, record: dict[str, Any], *, verified: bool, cost_usd: Decimal) -> None:
        """Commit one finished item: from now on it is never run again."""
        self.flush()
        self.db.execute(
            "UPDATE items SET done = 1, verified = ?, cost_usd = ?, record = ? WHERE key = ?",
            (int(verified), str(cost_usd), json.dumps(record, ensure_ascii=False), key),
        )

    def spent(self) -> Decimal:
        """What the finished items cost, across every run of this job."""
        rows = self.db.execute("SELECT cost_usd FROM items WHERE done = 1")
        return sum((Decimal(c) for (c,) in rows), Decimal(0))

    def counts(self) -> tuple[int, int]:
        """(items done, items known)."""
        done, known = self.db.execute("SELECT COALESCE(SUM(done), 0), COUNT(*) FROM items").fetchone()
        return int(done), int(known)

    def output_records(self) -> Iterator[str]:
        """Every output line in input order: finished items and line errors."""
        yield from (
            r
            for (r,) in self.db.execute(
                "SELECT record FROM (SELECT line, record FROM items WHERE done = 1 "
                "UNION ALL SELECT line, record FROM line_errors) ORDER BY line"
            )
        )

    def record_of(self, key: str, line: int) -> dict[str, Any] | None:
        """The output record of the item first seen on `line`, once it is done."""
        row = self.db.execute(
            "SELECT record FROM items WHERE key = ? AND line = ? AND done = 1", (key, line)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def review_records(self) -> Iterator[str]:
        """The finished items whose answer is not verified, in input order."""
        yield from (
            r
            for (r,) in self.db.execute(
                "SELECT record FROM items WHERE done = 1 AND verified = 0 ORDER BY line"
            )
        )

    def close(self) -> None:
        self.flush()
        self.db.close()


def write_atomically(path: Path, lines: Iterator[str]) -> int:
    """Write `lines` to `path` through a temporary file, fsync'd, then renamed over `path`:
    a reader (or a crash) never sees half a file. Returns the number of lines."""
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line)
            out.write("\n")
            count += 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return count
