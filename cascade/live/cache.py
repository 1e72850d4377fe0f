"""The cache of verified answers: exact match on the normalised request and the config.

The key is a hash of everything that shapes an answer: the messages and system prompt,
the call's parameters, the response schema, the tools and tool choice, the tier the ladder
starts at, and the config's digest (a config change invalidates every entry). Only a
verified answer is stored; a hit costs nothing and says so (`result.cache == "hit"`).
Lookups read SQLite in WAL mode at once (microseconds); stores go through a writer thread,
which also ages entries out past their TTL and keeps the file under its size cap.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cascade.core.messages import write_messages, write_tool_choice, write_tools
from cascade.core.values import Attempt, Outcome, Request, Result, ToolCall, Verdict, tool_call_dict
from cascade.live.rows import Row
from cascade.live.writer import LedgerWriter
from cascade.logs import get_logger

CACHE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, ts REAL NOT NULL, value TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS answers_ts ON answers (ts)",
)
CACHE_VERIFIER = "cache"


def answer_schema(response_model: type[BaseModel] | None, response_format: Mapping[str, Any] | None) -> Any:
    """What a call asks of the answer's shape, as part of its key."""
    if response_model is not None:
        return _model_schema(response_model)
    return None if response_format is None else dict(response_format)


@functools.lru_cache(maxsize=64)
def _model_schema(model: type[BaseModel]) -> Any:
    return [f"{model.__module__}.{model.__qualname__}", model.model_json_schema()]


def cache_key(request: Request, *, schema: Any, min_tier: str | None, config: str) -> str:
    """The key of `request` under the config whose digest is `config`."""
    material = {
        "messages": write_messages(request.messages, request.system),
        "tools": write_tools(request.tools),
        "tool_choice": None if request.tool_choice is None else write_tool_choice(request.tool_choice),
        "params": dict(request.params),
        "request_schema": request.response_schema,
        "schema_name": request.response_schema_name,
        "logprobs": request.logprobs,
        "schema": schema,
        "min_tier": min_tier,
        "config": config,
    }
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cacheable(result: Result) -> bool:
    """Only an answer that passed every check, whole, is served again."""
    return result.verified and not result.degraded and result.cache != "hit" and result.output is not None


class CacheFile:
    """The cache's SQLite file, for the writer's thread: stores entries, prunes old ones.

    Counting the entries is a scan of the table, so it is done only once this many stores
    could have taken the cache past its cap: the cap holds to within that many entries."""

    def __init__(self, path: Path, *, ttl_s: float, max_entries: int) -> None:
        self.db = _connect(path)
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self.recount_every = max(1, min(1000, max_entries // 100))
        self.since_count = self.recount_every  # the first store counts

    def insert(self, rows: Sequence[Row]) -> None:
        """Store the `answers` rows, and take out the entries `evict` rows name."""
        now = time.time()
        with self.db:
            stored = [r.values for r in rows if r.table == "answers"]
            self.db.executemany("INSERT OR REPLACE INTO answers (key, ts, value) VALUES (?, ?, ?)", stored)
            evicted = [r.values for r in rows if r.table == "evict"]
            self.db.executemany("DELETE FROM answers WHERE key = ?", evicted)
            self.db.execute("DELETE FROM answers WHERE ts < ?", (now - self.ttl_s,))  # by the ts index
            self.since_count += len(stored)
            if self.since_count < self.recount_every:
                return
            self.since_count = 0
            (count,) = self.db.execute("SELECT count(*) FROM answers").fetchone()
            if count > self.max_entries:  # the oldest go first
                self.db.execute(
                    "DELETE FROM answers WHERE key IN (SELECT key FROM answers ORDER BY ts LIMIT ?)",
                    (count - self.max_entries,),
                )

    def close(self) -> None:
        self.db.close()


class AnswerCache:
    """Looks answers up at once; stores them in the background. A cache that cannot open
    or read steps aside (logged): every request is then a miss."""

    def __init__(self, path: Path, *, ttl_s: float, max_entries: int) -> None:
        self.path, self.ttl_s = path, ttl_s
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        try:
            self._reader = _connect(path)
        except sqlite3.Error as exc:
            get_logger().warning("cache_unavailable", cache=str(path), error=str(exc))
        self.writer = LedgerWriter(
            lambda: CacheFile(path, ttl_s=ttl_s, max_entries=max_entries), where=str(path)
        )

    def get(self, key: str, *, request_id: str, tags: Mapping[str, str]) -> Result | None:
        """The verified answer stored under `key`, as a result that cost nothing; None on a
        miss (an entry it cannot read, written by another version or edited, is one too)."""
        found = self._read(key)
        if found is None:
            return None
        try:
            return _hit(json.loads(found), request_id, tags)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            get_logger().warning("cache_entry_unreadable", cache=str(self.path), error=why)
            self.evict(key)
            return None

    def put(self, key: str, result: Result) -> None:
        """Store a verified answer (in the background). One whose data is no JSON (a plug-in's
        date, set, ...) is not stored, and that is said."""
        if not cacheable(result):
            return
        try:
            value = json.dumps(_entry(result), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            get_logger().warning("cache_store_skipped", cache=str(self.path), error=str(exc))
            return
        self.writer.put([Row("answers", (key, time.time(), value))])

    def evict(self, key: str) -> None:
        """Take the entry under `key` out (an answer an audit refuted, one no longer valid)."""
        self.writer.put([Row("evict", (key,))])

    def close(self) -> None:
        self.writer.close()
        if self._reader is not None:
            self._reader.close()

    def _read(self, key: str) -> str | None:
        if self._reader is None:
            return None
        try:
            with self._lock:
                row = self._reader.execute(
                    "SELECT value FROM answers WHERE key = ? AND ts >= ?", (key, time.time() - self.ttl_s)
                ).fetchone()
        except sqlite3.Error as exc:  # a file gone bad under us: a miss, said each time
            get_logger().warning("cache_read_failed", cache=str(self.path), error=str(exc))
            return None
        return None if row is None else str(row[0])


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=5, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in CACHE_SCHEMA:
        db.execute(statement)
    return db


def _entry(result: Result) -> dict[str, Any]:
    """What a hit needs to stand for the answer: the text, where it came from, its data."""
    answer = result.returned_attempt
    assert answer is not None
    return {
        "output": result.output,
        "tier": answer.tier,
        "model": answer.model,
        "finish_reason": answer.finish_reason,
        "tool_calls": [tool_call_dict(c) for c in answer.tool_calls],
        "data": result.data,
        "baseline_usd": f"{result.baseline_usd:f}",
        "request_id": result.request_id,
    }


def _hit(entry: dict[str, Any], request_id: str, tags: Mapping[str, str]) -> Result:
    """A stored answer as a result: one free attempt, verified by the cache's own verdict
    (which names the request that paid for it)."""
    verdict = Verdict(
        CACHE_VERIFIER,
        True,
        f"a verified answer from the cache (first given to request {entry['request_id']})",
        parsed=entry["data"],
    )
    attempt = Attempt(
        tier=entry["tier"],
        model=entry["model"],
        outcome=Outcome.ACCEPTED,
        verdicts=(verdict,),
        output=entry["output"],
        finish_reason=entry["finish_reason"],
        tool_calls=tuple(ToolCall(c["name"], c["arguments"], c["id"]) for c in entry["tool_calls"]),
    )
    baseline = Decimal(entry["baseline_usd"])
    return Result(
        entry["output"], True, (attempt,), 0, baseline, request_id=request_id, tags=dict(tags), cache="hit"
    )
