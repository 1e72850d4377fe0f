"""The durable state of a batch job: SQLite in WAL mode, beside the output file.

Every finished item is committed here, with its whole output record, before the job moves
on; the output file is written from this state, at the end, through a temporary file and
an atomic rename. So a job killed at any moment (even `kill -9`) and run again redoes only
the items that had not finished, never sends a finished item to a provider again, and
never takes a half-written line for a result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.batch.lock import JobLock
from cascade.core.errors import ConfigError
from cascade.core.redaction import redact

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,          -- the id as JSON
    line INTEGER NOT NULL,         -- where the id is (first) on the input, as of its last pass
    done INTEGER NOT NULL DEFAULT 0,
    verified INTEGER,
    cost_usd TEXT,
    record TEXT,                   -- the output line, once done
    seen_run INTEGER NOT NULL DEFAULT 0,  -- the last pass over the input that saw this id
    config TEXT                    -- the digest of the config the item was answered under
);
CREATE TABLE IF NOT EXISTS line_errors (line INTEGER PRIMARY KEY, record TEXT NOT NULL);
"""

EDGE_BYTES = 64 * 1024  # the input's fingerprint hashes this much of its start and its end


def short_digest(digest: str) -> str:
    """The first 12 hex digits of a config digest: enough to tell configs apart."""
    return digest[:12]


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".state.sqlite")


def fingerprint(path: Path) -> str:
    """A cheap fingerprint of a file: its size, its mtime, and a sha256 of its first and
    last 64 KiB (an edit in the middle of a large file that keeps size and mtime is missed)."""
    info = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as data:
        digest.update(data.read(EDGE_BYTES))
        if info.st_size > EDGE_BYTES:
            data.seek(max(EDGE_BYTES, info.st_size - EDGE_BYTES))
            digest.update(data.read(EDGE_BYTES))
    return json.dumps({"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": digest.hexdigest()})


class JobState:
    """What is done, what is pending, and what went into the output.

    Each run of the job is a numbered pass over the input (`run` in `meta`): an id is a
    duplicate only if this pass already saw it, an id keeps the line it has in this pass,
    line errors are found anew, and the output holds only what this pass saw. So an input
    edited between runs (a bad line fixed or deleted, ids added or removed) gives the output
    of the edited input, while every finished item is kept and never sent again."""

    def __init__(
        self,
        output: Path,
        *,
        input_path: Path,
        config_digest: str,
        allow_config_change: bool = False,
        retry_failed: bool = False,
        retry_unverified: bool = False,
    ) -> None:
        self.path = state_path(output)
        self.lock = JobLock(self.path)  # before anything reads or writes the state
        try:
            with writing_state(self.path):
                self.db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions
                self.db.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable against a crash of this process (kill -9); FULL adds power loss.
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(SCHEMA)
                columns = {row[1] for row in self.db.execute("PRAGMA table_info(items)")}
                if "seen_run" not in columns:  # a state file written before passes were numbered
                    self.db.execute("ALTER TABLE items ADD COLUMN seen_run INTEGER NOT NULL DEFAULT 0")
                if "config" not in columns:  # ... or before items said which config made them
                    self.db.execute("ALTER TABLE items ADD COLUMN config TEXT")
                self.config = config_digest
                self.retry_failed = retry_failed
                self.retry_unverified = retry_unverified
                self.config_changed = False
                self.input_changed = False
                self.run = 0
                self._pending_writes = 0
                self._begin_pass(input_path, allow_config_change)
        except BaseException:
            self.lock.release()
            raise

    def _begin_pass(self, input_path: Path, allow_config_change: bool) -> None:
        """Check that the state file belongs to this input (resuming with another would mix
        two jobs) and to this config (unless a change is allowed), note what changed since
        the last run, and start a new pass."""
        stored = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        here = str(input_path.resolve())
        if stored and stored.get("input") != here:
            raise ConfigError(
                f"{self.path} holds the state of a job on {stored.get('input')}, not {here}: "
                "choose another --output, or delete the state file to start over"
            )
        printed = fingerprint(input_path)
        earlier = stored.get("config")
        self.config_changed = bool(stored) and earlier != self.config
        if self.config_changed and earlier is not None:
            self.db.execute("UPDATE items SET config = ? WHERE done = 1 AND config IS NULL", (earlier,))
            (made_under_others,) = self.db.execute(
                "SELECT COUNT(*) FROM items WHERE done = 1 AND config != ? AND "
                "json_extract(record, '$.output') IS NOT NULL",  # an item with no answer mixes nothing
                (self.config,),
            ).fetchone()
            if made_under_others and not allow_config_change:
                raise ConfigError(
                    f"{self.path}: the config changed since this job's last run, and "
                    f"{made_under_others} items were answered under the earlier one "
                    f"({short_digest(earlier)}; this one is {short_digest(self.config)}). Resume with "
                    "the config they were made with, or keep them beside items made under this one "
                    "with --allow-config-change (each output line says its config), or delete the "
                    "state file to start over"
                )
        self.input_changed = "input_fingerprint" in stored and stored["input_fingerprint"] != printed
        self.run = int(stored.get("run", "0")) + 1
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [
                ("input", here),
                ("config", self.config),
                ("input_fingerprint", printed),
                ("run", str(self.run)),
            ],
        )
        self.db.execute("DELETE FROM line_errors")  # found anew by this pass
        self.db.execute("COMMIT")

    # -- the input pass --------------------------------------------------------------------

    def claim(self, key: str, line: int) -> tuple[str, int]:
        """Register an id seen on `line` in this pass: ("new" | "pending" | "done", line), or
        ("duplicate", the line this pass first saw it on)."""
        row = self.db.execute("SELECT line, done, seen_run FROM items WHERE key = ?", (key,)).fetchone()
        if row is None:
            self._write("INSERT INTO items (key, line, seen_run) VALUES (?, ?, ?)", (key, line, self.run))
            return "new", line
        stored_line, done, seen_run = row
        if seen_run == self.run:
            return "duplicate", stored_line
        if done and self._retried(key):
            self._write("UPDATE items SET line = ?, seen_run = ? WHERE key = ?", (line, self.run, key))
            return "retry", line
        if done and stored_line != line:  # the input was edited: the record follows its line
            (text,) = self.db.execute("SELECT record FROM items WHERE key = ?", (key,)).fetchone()
            record = json.loads(text)
            record["line"] = line
            self._write(
                "UPDATE items SET line = ?, seen_run = ?, record = ? WHERE key = ?",
                (line, self.run, json.dumps(record, ensure_ascii=False), key),
            )
        else:
            self._write("UPDATE items SET line = ?, seen_run = ? WHERE key = ?", (line, self.run, key))
        return ("done" if done else "pending"), line

    def _retried(self, key: str) -> bool:
        """Is this finished item to be run again: no answer (`retry_failed`) or an unverified
        one (`retry_unverified`)?"""
        if not (self.retry_failed or self.retry_unverified):
            return False
        verified, answered = self.db.execute(
            "SELECT verified, json_extract(record, '$.output') IS NOT NULL FROM items WHERE key = ?", (key,)
        ).fetchone()
        return bool((self.retry_unverified and not verified) or (self.retry_failed and not answered))

    def record_line_error(self, line: int, record: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO line_errors VALUES (?, ?)", (line, redact(json.dumps(record))))

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        """Input-pass writes are grouped in transactions of a few hundred."""
        with writing_state(self.path):
            if not self.db.in_transaction:
                self.db.execute("BEGIN")
            self.db.execute(sql, args)
        self._pending_writes += 1
        if self._pending_writes >= 500:
            self.flush()

    def flush(self) -> None:
        with writing_state(self.path):
            if self.db.in_transaction:
                self.db.execute("COMMIT")
        self._pending_writes = 0

    # -- results ---------------------------------------------------------------------------

    def finish(self, key: str, record: dict[str, Any], *, verified: bool, cost_usd: Decimal) -> None:
        """Commit one finished item: from now on it is never run again (unless retried).

        A retried item keeps what its earlier runs cost: `earlier` in its record (their
        attempts and cost, all of it wasted), counted in the job's spend and report."""
        self.flush()
        done, text, stored_cost = self.db.execute(
            "SELECT done, record, cost_usd FROM items WHERE key = ?", (key,)
        ).fetchone()
        record = {**record, "config": short_digest(self.config)}
        if done:
            before = json.loads(text)
            earlier = before.get("earlier") or {"attempts": 0, "cost_usd": 0}
            record["earlier"] = {
                "attempts": earlier["attempts"] + len(before.get("attempts") or ()),
                "cost_usd": float(Decimal(stored_cost)),
            }
            cost_usd += Decimal(stored_cost)
        with writing_state(self.path):
            self.db.execute(
                "UPDATE items SET done = 1, verified = ?, cost_usd = ?, record = ?, config = ? WHERE key = ?",
                (
                    int(verified),
                    str(cost_usd),
                    redact(json.dumps(record, ensure_ascii=False)),
                    self.config,
                    key,
                ),
            )

    def configs(self) -> dict[str, int]:
        """Finished items by the digest of the config they were answered under."""
        rows = self.db.execute(
            "SELECT config, COUNT(*) FROM items WHERE done = 1 GROUP BY config ORDER BY MIN(rowid)"
        )
        return {digest or self.config: n for digest, n in rows}

    def spent(self) -> Decimal:
        """What the finished items cost, across every run of this job."""
        rows = self.db.execute("SELECT cost_usd FROM items WHERE done = 1")
        return sum((Decimal(c) for (c,) in rows), Decimal(0))

    def counts(self) -> tuple[int, int]:
        """(items done, items known)."""
        done, known = self.db.execute("SELECT COALESCE(SUM(done), 0), COUNT(*) FROM items").fetchone()
        return int(done), int(known)

    def output_records(self) -> Iterator[str]:
        """Every output line of this pass in input order: its finished items and line errors
        (an id no longer in the input is left out)."""
        yield from (
            r
            for (r,) in self.db.execute(
                "SELECT record FROM (SELECT line, record FROM items WHERE done = 1 AND seen_run = ? "
                "UNION ALL SELECT line, record FROM line_errors) ORDER BY line",
                (self.run,),
            )
        )

    def record_of(self, key: str, line: int) -> dict[str, Any] | None:
        """The output record of the item this pass first saw on `line`, once it is done."""
        row = self.db.execute(
            "SELECT record FROM items WHERE key = ? AND line = ? AND done = 1 AND seen_run = ?",
            (key, line, self.run),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def review_records(self) -> Iterator[str]:
        """The finished items of this pass whose answer is not verified, in input order."""
        yield from (
            r
            for (r,) in self.db.execute(
                "SELECT record FROM items WHERE done = 1 AND verified = 0 AND seen_run = ? ORDER BY line",
                (self.run,),
            )
        )

    def close(self) -> None:
        try:
            self.flush()
            self.db.close()
        finally:
            self.lock.release()


def write_atomically(path: Path, lines: Iterator[str]) -> int:
    """Write `lines` to `path` through a temporary file, fsync'd, then renamed over `path`:
    a reader (or a crash) never sees half a file. Returns the number of lines. A file that
    cannot be written (a read-only folder, a full disk) is a ConfigError naming it."""
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(line)
                out.write("\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return count


@contextlib.contextmanager
def writing_state(path: Path) -> Iterator[None]:
    """SQLite's failures to write the state (a full disk, a read-only folder) as a
    ConfigError naming the state file; what was committed before stays."""
    try:
        yield
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot write the job state {path}: {exc}") from None
