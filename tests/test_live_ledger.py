"""The ledger: every result recorded with its attempts, costs, path, latency, id and tags,
off the request's path; a ledger that cannot be written never fails a request."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cascade.core.errors import ConfigError, ExhaustedError
from cascade.core.values import Result
from cascade.live.rows import Row, result_rows
from cascade.live.store import SqliteStore
from cascade.live.writer import LedgerWriter
from tests.live_helpers import CHEAP, TOP, ledger_of, live_cascade, serve


def hedge_on_cheap(model: str, prompt: str) -> str:
    return "I'm not sure, maybe 4." if model == CHEAP and "hard" in prompt else f"It is {len(prompt)}."


def test_every_result_is_a_row_with_its_attempts_costs_id_and_tags(fake_server, tmp_path):
    serve(fake_server, hedge_on_cheap)

    async def main() -> list[Result]:
        async with live_cascade(fake_server, tmp_path, ledger={"path": "spend.sqlite"}) as cascade:
            easy = await cascade.arun("easy one", tags={"feature": "search", "user": "ann"})
            hard = await cascade.arun("hard one", tags={"feature": "chat"}, request_id="req-7")
            return [easy, hard]

    easy, hard = asyncio.run(main())
    store = SqliteStore(tmp_path / "spend.sqlite", create=False)
    rows = {r["request_id"]: r for r in store.select("results")}
    attempts = store.select("attempts")
    assert set(rows) == {easy.request_id, "req-7"} and hard.request_id == "req-7"
    first, second = rows[easy.request_id], rows["req-7"]
    assert first["tags"] == {"feature": "search", "user": "ann"} and second["tags"] == {"feature": "chat"}
    assert (first["tier"], first["path"], first["escalated"]) == ("small", "small", False)
    assert (second["tier"], second["path"], second["escalated"]) == ("large", "small>large", True)
    for row, result in ((first, easy), (second, hard)):
        assert row["total_usd"] == result.cost.total_usd  # exact: Decimal in, Decimal out
        assert row["wasted_usd"] == result.cost.wasted_usd
        assert row["saved_usd"] == result.cost.saved_usd
        assert row["latency_s"] > 0
        mine = [a for a in attempts if a["request_id"] == result.request_id]
        assert [(a["tier"], a["model"], a["outcome"]) for a in mine] == [
            (a.tier, a.model, str(a.outcome)) for a in result.attempts
        ]
        assert sum((a["cost_usd"] for a in mine), Decimal(0)) == sum(a.cost_usd for a in result.attempts)
    assert [a["model"] for a in attempts if a["request_id"] == "req-7"] == [CHEAP, TOP]
    store.close()


def test_a_request_that_gets_no_verified_answer_is_recorded_too(fake_server, tmp_path):
    serve(fake_server, lambda model, prompt: "I'm not sure.")  # every tier hedges

    async def main() -> None:
        cascade = live_cascade(fake_server, tmp_path, ledger={"path": "spend.sqlite"}, on_exhausted="raise")
        async with cascade:
            with pytest.raises(ExhaustedError) as raised:
                await cascade.arun("anything", tags={"user": "bo"})
        assert raised.value.result.request_id is not None

    asyncio.run(main())
    (row,) = SqliteStore(tmp_path / "spend.sqlite", create=False).select("results")
    assert (row["verified"], row["saved_usd"], row["tags"]) == (False, None, {"user": "bo"})
    assert row["attempts"] == 2 and row["total_usd"] > 0  # both paid calls, no saving claimed


def test_the_sync_api_commits_its_rows_on_close(fake_server, tmp_path):
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger={"path": "spend.sqlite"}) as cascade:
        for i in range(5):
            cascade.run(f"question {i}", tags={"n": i})
    rows = SqliteStore(tmp_path / "spend.sqlite", create=False).select("results")
    assert sorted(r["tags"]["n"] for r in rows) == ["0", "1", "2", "3", "4"]


def test_a_ledger_that_cannot_open_is_logged_and_every_request_still_answered(fake_server, tmp_path):
    serve(fake_server)
    (tmp_path / "not-a-folder").write_text("a file where the ledger's folder should be")
    with (
        capture_logs() as logs,
        live_cascade(fake_server, tmp_path, ledger={"path": "not-a-folder/spend.sqlite"}) as cascade,
    ):
        results = [cascade.run(f"q{i}") for i in range(3)]
        assert ledger_of(cascade).flush()
        counts = ledger_of(cascade).counts
    assert all(r.verified for r in results)
    assert counts.written == 0 and counts.dropped > 0 and counts.errors >= 1
    assert any(e["event"] == "ledger_unavailable" for e in logs)


def test_put_never_blocks_when_the_queue_is_full_it_counts_what_it_drops():
    released = threading.Event()

    class Stuck:  # a database that does not answer
        def insert(self, rows: object) -> None:
            released.wait(30)

        def close(self) -> None:
            pass

    with capture_logs() as logs:
        writer = LedgerWriter(Stuck, where="stuck", max_pending=3)
        for _ in range(50):
            writer.put([Row("results", ())])
        # every put came back while the writer was still stuck on the first batch
        assert not released.is_set()
    assert writer.counts.dropped >= 45 and any(e["event"] == "ledger_queue_full" for e in logs)
    released.set()
    writer.close()


def test_reading_a_file_that_is_no_ledger_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such ledger"):
        SqliteStore(tmp_path / "missing.sqlite", create=False)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(ConfigError, match="not a cascade ledger"):
        SqliteStore(other, create=False)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="cannot open the ledger"):
        SqliteStore(tmp_path / "junk.sqlite", create=False)


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from decimal import Decimal
    from pathlib import Path
    from cascade.core.values import Attempt, Outcome, Result, Usage
    from cascade.live.rows import result_rows
    from cascade.live.store import SqliteStore
    from cascade.live.writer import LedgerWriter

    path = Path(sys.argv[1])
    writer = LedgerWriter(lambda: SqliteStore(path), where=str(path))
    attempts = tuple(
        Attempt("t%d" % i, "m", Outcome.ACCEPTED if i == 2 else Outcome.REJECTED, Usage(10, 5), Decimal(1))
        for i in range(3)
    )
    n = 0
    while True:
        n += 1
        result = Result("x", True, attempts, 2, Decimal("0.01"), request_id="r%d" % n, tags={"k": "v"})
        writer.put(result_rows(result, config="c", latency_s=0.1, ts=time.time()))
        if n == 2000:
            writer.flush(60)  # the first 2000 are committed; the writes go on
            print("ready", flush=True)
        if n % 50 == 0:
            time.sleep(0.001)
    """
)


def test_a_process_killed_mid_write_leaves_whole_results_only(tmp_path):
    path = tmp_path / "spend.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # the writer is committing batch after batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    results = db.execute("SELECT count(*) FROM results").fetchone()[0]
    per_result = db.execute("SELECT request_id, count(*) FROM attempts GROUP BY request_id").fetchall()
    assert results >= 2000  # what was committed before the kill is all there
    assert len(per_result) == results and {count for _, count in per_result} == {3}  # no torn result


FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys, time
    from decimal import Decimal
    from pathlib import Path
    from structlog.testing import capture_logs
    from cascade.core.values import Attempt, Outcome, Result, Usage
    from cascade.live.rows import result_rows
    from cascade.live.store import SqliteStore
    from cascade.live.writer import LedgerWriter

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    path = Path(sys.argv[1])
    with capture_logs() as logs:
        writer = LedgerWriter(lambda: SqliteStore(path), where=str(path))
        attempt = (Attempt("t", "m", Outcome.ACCEPTED, Usage(1, 1), Decimal("0.001")),)
        for n in range(3000):
            result = Result("x", True, attempt, 0, Decimal("0.01"), request_id="r%d" % n)
            writer.put(result_rows(result, config="c", latency_s=0.1, ts=time.time()))
        writer.flush(60)
    print(writer.counts.written, writer.counts.dropped, writer.counts.errors)
    print(sorted({e["event"] for e in logs}))
    """
)


def test_a_full_disk_is_logged_and_counted_never_raised(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK_SCRIPT, str(tmp_path / "spend.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path.cwd(),
    )
    assert proc.returncode == 0, proc.stderr
    counts, events = proc.stdout.splitlines()
    written, dropped, errors = map(int, counts.split())
    assert written + dropped == 3000 * 2 and dropped > 0 and errors > 0
    assert "ledger_write_failed" in events


def test_result_rows_hold_no_prompt_or_answer_text():
    from cascade.core.values import Attempt, Outcome, Result

    attempt = Attempt("t", "m", Outcome.ACCEPTED, output="SECRET ANSWER")
    result = Result("SECRET ANSWER", True, (attempt,), 0, Decimal(0), request_id="r", tags={"user": "u"})
    rows = result_rows(result, config="c", latency_s=0.0, ts=0.0)
    assert all("SECRET" not in str(value) for row in rows for value in row.values)


def test_a_typed_call_that_gets_no_valid_instance_is_recorded_once(fake_server, tmp_path):
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: int

    serve(fake_server, lambda model, prompt: "not json at all")
    cascade = live_cascade(fake_server, tmp_path, ledger={"path": "spend.sqlite"})
    with cascade, pytest.raises(ExhaustedError) as raised:
        cascade.run("2 + 2?", response_model=Answer)
    rows = SqliteStore(tmp_path / "spend.sqlite", create=False).select("results")
    assert [r["request_id"] for r in rows] == [raised.value.result.request_id]
    assert rows[0]["verified"] is False and rows[0]["attempts"] == 2
