"""The durable state of a batch job: SQLite in WAL mode beside the output file, and the
records file (cascade.batch.records) that holds each finished item's output record.

A finished item's record is written to the records file at once, in one `write`; what
resume needs to know of it (done, verified, cost, config, where its record is) goes to
SQLite, committed in groups of many items or a fraction of a second. The records written
after the last commit are read back from the records file when the job opens again. The
output file is written from this state, at the end, through a temporary file and an atomic
rename. So a job killed at any moment (even `kill -9`) and run again redoes only the items
that had not finished, never sends a finished item to a provider again, never holds one
twice, and never takes a half-written line for a result.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.batch.files import fingerprint
from cascade.batch.lock import JobLock
from cascade.batch.records import RecordFile, records_path
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
    record TEXT,                   -- the output line, in state files from before the records file
    seen_run INTEGER NOT NULL DEFAULT 0,  -- the last pass over the input that saw this id
    config TEXT,                   -- the digest of the config the item was answered under
    answered INTEGER,              -- its record has an output
    pos INTEGER,                   -- where its record is in the records file
    size INTEGER
);
CREATE TABLE IF NOT EXISTS line_errors (line INTEGER PRIMARY KEY, record TEXT NOT NULL);
"""

# Writes are committed in groups: every record is already in the records file, so a group
# only bounds what a restart reads back from it (and how stale the state looks to a reader).
COMMIT_EVERY = 500
COMMIT_AFTER_S = 0.2
NEW_COLUMNS = {  # added to a state file written before them
    "seen_run": "INTEGER NOT NULL DEFAULT 0",  # passes were numbered
    "config": "TEXT",  # items said which config made them
    "answered": "INTEGER",  # records had a file of their own
    "pos": "INTEGER",
    "size": "INTEGER",
}
# What the state knows of a finished item, in its header in the records file
HEADER = ("key", "line", "seen_run", "verified", "cost_usd", "config", "answered")
STORE = """
INSERT INTO items (key, line, seen_run, done, verified, cost_usd, config, answered, pos, size)
VALUES (:key, :line, :seen_run, 1, :verified, :cost_usd, :config, :answered, :pos, :size)
ON CONFLICT (key) DO UPDATE SET line = :line, seen_run = :seen_run, done = 1, verified = :verified,
    cost_usd = :cost_usd, config = :config, answered = :answered, pos = :pos, size = :size, record = NULL
"""


def short_digest(digest: str) -> str:
    """The first 12 hex digits of a config digest: enough to tell configs apart."""
    return digest[:12]


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".state.sqlite")


def done_before(output: Path) -> int:
    """Items finished by earlier runs of the job writing `output`, read without taking its
    lock (what a resumed run says first); 0 when there is no state or it cannot be read."""
    path = state_path(output)
    if not path.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            (done,) = db.execute("SELECT COALESCE(SUM(done), 0) FROM items").fetchone()
    except sqlite3.Error:
        return 0  # the job itself will say what is wrong with its state
    return int(done)


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
        with contextlib.ExitStack() as undo, writing_state(self.path):
            self.lock = JobLock(self.path)  # before anything reads or writes the state
            undo.callback(self.lock.release)
            self.records = RecordFile(records_path(self.path), self.path)
            undo.callback(self.records.close)
            self.db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions
            undo.callback(self.db.close)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a crash of this process (kill -9); FULL adds power loss.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(items)")}
            for name, kind in NEW_COLUMNS.items():
                if name not in columns:
                    self.db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
            self.config = config_digest
            self.retry_failed = retry_failed
            self.retry_unverified = retry_unverified
            self.config_changed = False
            self.input_changed = False
            self.run = 0
            self._pending_writes = 0
            self._first_pending = 0.0
            self._recover()
            self._begin_pass(input_path, allow_config_change)
            undo.pop_all()  # opened: close() lets go of them

    def _recover(self) -> None:
        """Take in the records written after the last commit (a crash came before the next),
        and move the records of a state file from before the records file into it."""
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:  # a new state: records beside it are those of a state deleted to start over
            self.records.cut(0)
        for header, pos, size in self.records.tail(int(meta.get("records_bytes", 0))):
            self._write(STORE, {**header, "pos": pos, "size": size})  # as `_store` wrote them
        while old := self._items("record IS NOT NULL LIMIT ?", COMMIT_EVERY):  # `_store` clears it
            for item in old:
                answered = json.loads(item["record"]).get("output") is not None
                self._store(item["record"], {**item, "answered": int(answered)})
        self.flush()

    def _items(self, where: str, *args: Any) -> list[dict[str, Any]]:
        """The items `where` holds for, each as {column: value}."""
        cursor = self.db.execute(f"SELECT * FROM items WHERE {where}", args)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

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
                # an item with no answer mixes nothing
                "SELECT COUNT(*) FROM items WHERE done = 1 AND config != ? AND answered = 1",
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
            (item,) = self._items("key = ?", key)
            record = json.loads(self.records.read(item["pos"], item["size"]))
            record["line"] = line
            self._store(json.dumps(record, ensure_ascii=False), {**item, "line": line, "seen_run": self.run})
        else:
            self._write("UPDATE items SET line = ?, seen_run = ? WHERE key = ?", (line, self.run, key))
        return ("done" if done else "pending"), line

    def _retried(self, key: str) -> bool:
        """Is this finished item to be run again: no answer (`retry_failed`) or an unverified
        one (`retry_unverified`)?"""
        if not (self.retry_failed or self.retry_unverified):
            return False
        verified, answered = self.db.execute(
            "SELECT verified, answered FROM items WHERE key = ?", (key,)
        ).fetchone()
        return bool((self.retry_unverified and not verified) or (self.retry_failed and not answered))

    def record_line_error(self, line: int, record: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO line_errors VALUES (?, ?)", (line, redact(json.dumps(record))))

    def _write(self, sql: str, args: tuple[Any, ...] | dict[str, Any]) -> None:
        """Writes are grouped in transactions of a few hundred, or a fraction of a second."""
        with writing_state(self.path):
            if not self.db.in_transaction:
                self.db.execute("BEGIN")
                self._first_pending = time.monotonic()
            self.db.execute(sql, args)
        self._pending_writes += 1
        if self._pending_writes >= COMMIT_EVERY or time.monotonic() - self._first_pending >= COMMIT_AFTER_S:
            self.flush()

    def flush(self) -> None:
        """Commit, noting how much of the records file the state now knows (once it is on disk)."""
        with writing_state(self.path):
            if self.db.in_transaction:
                self.records.sync()
                self.db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('records_bytes', ?)", (str(self.records.end),)
                )
                self.db.execute("COMMIT")
        self._pending_writes = 0

    def _store(self, text: str, item: dict[str, Any]) -> None:
        """Write a finished item's record, then what the state knows of it."""
        header = {name: item[name] for name in HEADER}
        pos, size = self.records.append(header, text)
        self._write(STORE, {**header, "pos": pos, "size": size})

    # -- results ---------------------------------------------------------------------------

    def finish(self, key: str, record: dict[str, Any], *, verified: bool, cost_usd: Decimal) -> None:
        """Commit one finished item: from now on it is never run again (unless retried).

        A retried item keeps what its earlier runs cost: `earlier` in its record (their
        attempts and cost, all of it wasted), counted in the job's spend and report."""
        (item,) = self._items("key = ?", key)
        stored_cost = item["cost_usd"]
        record = {**record, "config": short_digest(self.config)}
        if item["done"]:
            before = json.loads(self.records.read(item["pos"], item["size"]))
            earlier = before.get("earlier") or {"attempts": 0, "cost_usd": 0}
            record["earlier"] = {
                "attempts": earlier["attempts"] + len(before.get("attempts") or ()),
                "cost_usd": float(Decimal(stored_cost)),
            }
            cost_usd += Decimal(stored_cost)
        answered = record.get("output") is not None
        self._store(
            redact(json.dumps(record, ensure_ascii=False)),
            {**item, "seen_run": self.run, "verified": int(verified), "cost_usd": str(cost_usd)}
            | {"config": self.config, "answered": int(answered)},
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
        rows = self.db.execute(
            "SELECT pos, size, record FROM (SELECT line, pos, size, NULL AS record FROM items "
            "WHERE done = 1 AND seen_run = ? UNION ALL SELECT line, NULL, NULL, record FROM line_errors) "
            "ORDER BY line",
            (self.run,),
        )
        yield from (self.records.read(pos, size) if text is None else text for pos, size, text in rows)

    def record_of(self, key: str, line: int) -> dict[str, Any] | None:
        """The output record of the item this pass first saw on `line`, once it is done."""
        row = self.db.execute(
            "SELECT pos, size FROM items WHERE key = ? AND line = ? AND done = 1 AND seen_run = ?",
            (key, line, self.run),
        ).fetchone()
        return json.loads(self.records.read(*row)) if row else None

    def review_records(self) -> Iterator[str]:
        """The finished items of this pass whose answer is not verified, in input order."""
        rows = self.db.execute(
            "SELECT pos, size FROM items WHERE done = 1 AND verified = 0 AND seen_run = ? ORDER BY line",
            (self.run,),
        )
        yield from (self.records.read(pos, size) for pos, size in rows)

    def close(self) -> None:
        try:
            self.flush()
            self.db.close()
        finally:
            self.records.close()
            self.lock.release()


@contextlib.contextmanager
def writing_state(path: Path) -> Iterator[None]:
    """SQLite's failures to write the state (a full disk, a read-only folder) as a
    ConfigError naming the state file; what was committed before stays."""
    try:
        yield
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot write the job state {path}: {exc}") from None
