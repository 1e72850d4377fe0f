"""Writing ledger rows off the request's path: a queue a request only appends to, and a
thread that commits what it holds in batches.

A request never waits for the database and never fails because of it: a store that cannot
open, a full disk, a read-only file or a lost server is logged and counted, and the rows
it could not take are dropped (counted too), while requests go on being answered.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cascade.live.rows import Row
from cascade.logs import get_logger

BATCH_RECORDS = 500  # at most this many records (a result and its attempts, ...) per transaction
# A batch gathers what comes within this long of its first row: one commit for many
# requests (a commit costs several times what a row does). A flush cuts it short.
LINGER_S = 0.05
RECORD_FAILURES = 3  # records refused one after the other: the store is failing, not a record
RETRY_OPEN_S = 30.0  # a store that would not open is tried again after this long


class RowSink(Protocol):
    """Where the writer commits rows: a ledger store, the cache's file."""

    def insert(self, rows: Sequence[Row]) -> None: ...

    def close(self) -> None: ...


@dataclass
class WriterCounts:
    """What became of the rows handed to the writer."""

    written: int = 0
    dropped: int = 0  # the queue was full, or the store refused them
    errors: int = 0  # failed transactions (each logged)


class LedgerWriter:
    """Rows in, committed in the background. `put` never blocks; `flush` waits until what
    was put before it is committed (or dropped); `close` flushes and stops the thread."""

    def __init__(self, open_store: Callable[[], RowSink], *, where: str, max_pending: int = 100_000) -> None:
        self._open = open_store
        self.where = where  # named in the log: the path or the server, never a password
        self.counts = WriterCounts()
        self._queue: queue.Queue[Sequence[Row] | threading.Event | None] = queue.Queue(max_pending)
        self._store: RowSink | None = None
        self._next_open = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cascade-ledger", daemon=True)
        self._thread.start()
        # a script that never closes its cascade still has its last rows committed at exit
        atexit.register(self._at_exit)

    def put(self, rows: Sequence[Row]) -> None:
        """Hand over the rows of one record (a result and its attempts: committed together)."""
        if self._closed:
            self._drop(rows, "ledger_closed")
            return
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            self._drop(rows, "ledger_queue_full")

    def _drop(self, rows: Sequence[Row], event: str) -> None:
        """Count rows that will not be written, and say so (the first time, then every 1000)."""
        self.counts.dropped += len(rows)
        if self.counts.dropped == len(rows) or self.counts.dropped % 1000 < len(rows):
            get_logger().warning(event, ledger=self.where, dropped=self.counts.dropped)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait for the rows put so far; False when the writer did not get to them in time."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued and stop, within `timeout` (a store that hangs is left to
        its daemon thread: closing, and the process's exit, never wait for ever)."""
        atexit.unregister(self._at_exit)
        self._closed = True
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._thread.join(timeout)

    def _at_exit(self) -> None:
        self.close(timeout=5.0)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[Sequence[Row]] = []  # records, each committed whole or not at all
            waiting: list[threading.Event] = []
            stop = False
            until = time.monotonic() + LINGER_S
            while True:  # take what else comes, up to a batch, for a moment
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    batch.append(item)
                if stop or waiting or len(batch) >= BATCH_RECORDS:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for event in waiting:
                event.set()
            if stop:
                if self._store is not None:
                    self._store.close()
                return

    def _write(self, batch: list[Sequence[Row]]) -> None:
        """Commit `batch` in one transaction. When that fails, each record on its own, so that
        a record the database refuses costs only its own rows; failures in a row mean the
        store itself is the trouble (a full disk, a lost server): the rest is dropped."""
        if self._insert([row for record in batch for row in record]):
            return
        failures = 0 if len(batch) > 1 and self._store is not None else RECORD_FAILURES
        for record in batch:
            if failures < RECORD_FAILURES and self._insert(list(record)):
                failures = 0
                continue
            failures += 1
            self.counts.dropped += len(record)
        if failures >= RECORD_FAILURES:
            self._drop_store()

    def _insert(self, rows: list[Row]) -> bool:
        """Commit `rows`; whether it worked (a failure is logged)."""
        store = self._store or self._opened()
        if store is None:
            return False
        try:
            store.insert(rows)
        except Exception as exc:  # a full disk, a read-only file, a lost server: the request goes on
            self.counts.errors += 1
            get_logger().warning(
                "ledger_write_failed", ledger=self.where, error=f"{type(exc).__name__}: {exc}", rows=len(rows)
            )
            return False
        self.counts.written += len(rows)
        return True

    def _opened(self) -> RowSink | None:
        if time.monotonic() < self._next_open:
            return None
        try:
            self._store = self._open()
        except Exception as exc:
            self.counts.errors += 1
            self._next_open = time.monotonic() + RETRY_OPEN_S
            get_logger().warning(
                "ledger_unavailable", ledger=self.where, error=str(exc), retry_in_s=RETRY_OPEN_S
            )
            return None
        return self._store

    def _drop_store(self) -> None:
        """Close a store whose write failed; the next batch opens it again (a server back up)."""
        if self._store is not None:
            with contextlib.suppress(Exception):  # it is being let go of; the failure was logged
                self._store.close()
            self._store = None
