"""The job state commits in groups and keeps each output record once, in its records file:
a kill -9 between two commits loses no finished item and holds none twice on resume."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from cascade.batch.records import records_path
from cascade.batch.state import JobState, state_path
from cascade.core.errors import ConfigError

CONFIG = "c0ffee"


def job(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """An input of `n` ids (only its path and fingerprint matter to the state) and an output."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"i{k}", "prompt": "p"}) + "\n" for k in range(n)))
    return source, tmp_path / "out.jsonl"


def finish(state: JobState, k: int) -> None:
    record = {"id": f"i{k}", "line": k + 1, "output": f"answer {k}", "verified": True}
    state.finish(json.dumps(f"i{k}"), record, verified=True, cost_usd=Decimal("0.001"))


def finish_all(state: JobState, ids: range) -> None:
    for k in ids:
        assert state.claim(json.dumps(f"i{k}"), k + 1)[0] in ("new", "pending")
        finish(state, k)


def committed_done(out: Path) -> int:
    with sqlite3.connect(state_path(out)) as db:
        return int(db.execute("SELECT COUNT(*) FROM items WHERE done = 1").fetchone()[0])


def killed_between_commits(source: Path, out: Path, committed: int, after: int) -> None:
    """In a process of its own: finish `committed` items and commit them, finish `after`
    more with no commit coming, then die by SIGKILL."""
    child = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from cascade.batch import state
        from tests.test_batch_records import finish_all
        state.COMMIT_EVERY, state.COMMIT_AFTER_S = 10**9, 10.0**9  # the next commit never comes
        job = state.JobState(Path({str(out)!r}), input_path=Path({str(source)!r}), config_digest={CONFIG!r})
        finish_all(job, range({committed}))
        job.flush()
        finish_all(job, range({committed}, {committed + after}))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).parent.parent, timeout=60)
    assert proc.returncode == -9


def test_a_kill_9_between_group_commits_loses_nothing_and_holds_nothing_twice(tmp_path):
    source, out = job(tmp_path, 30)
    killed_between_commits(source, out, committed=10, after=15)
    assert committed_done(out) == 10  # the window: 15 finished items the state had not committed
    with records_path(state_path(out)).open("ab") as records:
        records.write(b'{"key": "\\"i29\\"", "line": 30')  # and half a line, cut by the kill
    state = JobState(out, input_path=source, config_digest=CONFIG)
    try:
        assert state.counts() == (25, 25)
        assert [state.claim(json.dumps(f"i{k}"), k + 1)[0] for k in range(30)] == ["done"] * 25 + ["new"] * 5
        for k in range(25, 30):
            finish(state, k)
        written = [json.loads(line) for line in state.output_records()]
    finally:
        state.close()
    assert [r["id"] for r in written] == [f"i{k}" for k in range(30)]  # each once, in input order
    assert [r["output"] for r in written] == [f"answer {k}" for k in range(30)]
    assert committed_done(out) == 30


def test_the_state_holds_what_resume_needs_and_the_records_file_each_record_once(tmp_path):
    source, out = job(tmp_path, 20)
    state = JobState(out, input_path=source, config_digest=CONFIG)
    finish_all(state, range(20))
    state.close()
    with sqlite3.connect(state_path(out)) as db:
        assert db.execute("SELECT COUNT(*) FROM items WHERE record IS NOT NULL").fetchone() == (0,)
    lines = records_path(state_path(out)).read_bytes().splitlines()
    assert len(lines) == 20 and all(b'"output": "answer' in line for line in lines)


def test_a_state_from_before_the_records_file_is_moved_into_one(tmp_path):
    source, out = job(tmp_path, 5)
    state = JobState(out, input_path=source, config_digest=CONFIG)
    finish_all(state, range(5))
    before = list(state.output_records())
    state.close()
    # what an older version wrote: each record in the state itself, no records file
    with sqlite3.connect(state_path(out)) as db:
        for key, text in zip([json.dumps(f"i{k}") for k in range(5)], before, strict=True):
            db.execute(
                "UPDATE items SET record = ?, pos = NULL, size = NULL, answered = NULL WHERE key = ?",
                (text, key),
            )
        db.execute("DELETE FROM meta WHERE key = 'records_bytes'")
    records_path(state_path(out)).unlink()
    state = JobState(out, input_path=source, config_digest=CONFIG)
    try:
        assert [state.claim(json.dumps(f"i{k}"), k + 1)[0] for k in range(5)] == ["done"] * 5
        assert list(state.output_records()) == before
    finally:
        state.close()
    with sqlite3.connect(state_path(out)) as db:
        assert db.execute("SELECT COUNT(*) FROM items WHERE record IS NOT NULL").fetchone() == (0,)


def test_a_state_deleted_to_start_over_takes_nothing_from_the_records_left_beside_it(tmp_path):
    source, out = job(tmp_path, 5)
    state = JobState(out, input_path=source, config_digest=CONFIG)
    finish_all(state, range(5))
    state.close()
    state_path(out).unlink()
    state = JobState(out, input_path=source, config_digest=CONFIG)
    try:
        assert state.counts() == (0, 0)
        assert state.claim(json.dumps("i0"), 1)[0] == "new"
    finally:
        state.close()
    assert records_path(state_path(out)).stat().st_size == 0


def test_a_records_file_that_lost_records_is_refused(tmp_path):
    source, out = job(tmp_path, 5)
    state = JobState(out, input_path=source, config_digest=CONFIG)
    finish_all(state, range(5))
    state.close()
    records_path(state_path(out)).write_bytes(b"")
    with pytest.raises(ConfigError, match="records of finished items are missing"):
        JobState(out, input_path=source, config_digest=CONFIG)
    # ... again, not "another job holds the lock": the refusal let go of the lock and files
    with pytest.raises(ConfigError, match="records of finished items are missing"):
        JobState(out, input_path=source, config_digest=CONFIG)
