"""Batch jobs: JSONL in and out, line errors, resume after kill -9, rate limits, the report."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from cascade.batch.items import parse_line
from cascade.batch.report import report_file
from cascade.batch.runner import BatchOptions, run_batch
from cascade.batch.state import state_path
from cascade.config import load_config
from cascade.limits import AdaptiveGate, TokenBucket
from cascade.testing.server import RecordedRequest, Reply

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo.yaml"


def write_jsonl(path: Path, rows: list[object]) -> Path:
    with path.open("w") as out:
        for row in rows:
            out.write(row if isinstance(row, str) else json.dumps(row))
            out.write("\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]


def demo_prompts() -> list[str]:
    examples = REPO / "cascade" / "demo" / "examples.jsonl"
    return [json.loads(line)["prompt"] for line in examples.read_text().splitlines()]


def run(config, options: BatchOptions):
    return asyncio.run(run_batch(load_config(config), options, base_dir=Path(config).parent))


# -- input lines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "line 7: not valid JSON"),
        ("[1, 2]", "line 7: a JSON object is required, not list"),
        ('{"prompt": "hi"}', "line 7: missing or invalid `id`"),
        ('{"id": true, "prompt": "hi"}', "line 7: missing or invalid `id`"),
        ('{"id": 3}', "line 7: give exactly one of `prompt` or `messages`"),
        ('{"id": 3, "prompt": "  "}', "line 7: `prompt` must be a non-empty string"),
        ('{"id": 3, "messages": [{"role": "user"}]}', "line 7: messages[0] must be"),
        (
            '{"id": 3, "messages": [{"role": "assistant", "content": "x"}]}',
            "line 7: the last message must be from the user",
        ),
    ],
)
def test_bad_lines_become_errors_naming_the_line(line, expected):
    parsed = parse_line(line, 7)
    assert parsed.message.startswith(expected)  # type: ignore[union-attr]


def test_messages_and_metadata_are_read():
    item = parse_line(
        json.dumps(
            {
                "id": 5,
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                "metadata": {"k": [1]},
            }
        ),
        1,
    )
    assert item.request.system == "Be brief." and item.request.messages[0].content == "Hi"  # type: ignore[union-attr]
    assert item.metadata == {"k": [1]} and item.key == "5"  # type: ignore[union-attr]


# -- a job ----------------------------------------------------------------------------------


def test_a_job_writes_one_line_per_id_and_reports_errors_by_line(tmp_path):
    prompts = demo_prompts()
    rows: list[object] = [{"id": f"q{i}", "prompt": p, "metadata": {"n": i}} for i, p in enumerate(prompts)]
    rows += ["{oops", {"id": "q0", "prompt": "again"}, {"prompt": "no id"}, {"id": 7, "prompt": "Bonjour?"}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    outcome = run(DEMO, BatchOptions(source, out, concurrency=4))
    records = read_jsonl(out)
    results = [r for r in records if r["id"] is not None]
    assert sorted(map(str, (r["id"] for r in results))) == sorted(
        [f"q{i}" for i in range(len(prompts))] + ["7"]
    )
    assert all(r["metadata"] == {"n": int(str(r["id"])[1:])} for r in results if r["id"] != 7)
    errors = {r["line"]: r["error"] for r in records if r["id"] is None}
    n = len(prompts)
    assert errors[n + 1].startswith(f"line {n + 1}: not valid JSON")
    assert errors[n + 2] == f"line {n + 2}: duplicate id 'q0' (first on line 1)"
    assert errors[n + 3].startswith(f"line {n + 3}: missing or invalid `id`")
    assert [r["line"] for r in records] == sorted(r["line"] for r in records)  # input order
    report = outcome.report
    assert report.items == len(results) and report.line_errors == 3
    assert report.money["total_usd"] == sum(r["cost"]["total_usd"] for r in results)
    assert report.money["baseline_usd"] == sum(r["cost"]["baseline_usd"] for r in results)
    assert sum(report.accepted_by_tier.values()) == report.verified == sum(r["verified"] for r in results)


def test_unverified_items_are_flagged_and_listed_for_review(tmp_path):
    examples = write_jsonl(
        tmp_path / "ex.jsonl",
        [
            {
                "id": "1",
                "prompt": "hard",
                "responses": {
                    "gpt-4o-mini": {"text": "I'm not sure."},
                    "claude-sonnet-4-5": {"text": "I don't know."},
                },
            }
        ],
    )
    config = tmp_path / "c.yaml"
    config.write_text(DEMO.read_text().replace("examples: builtin", f"examples: {examples}"))
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": "a", "prompt": "hard"}, {"id": "b", "prompt": "easy"}]
    )
    out = tmp_path / "out.jsonl"
    outcome = run(config, BatchOptions(source, out))
    review = read_jsonl(tmp_path / "out.review.jsonl")
    assert [r["id"] for r in review] == ["a"] and review[0]["verified"] is False
    assert outcome.report.unverified == 1 and outcome.review_lines == 1


def test_a_second_run_resumes_and_sends_nothing_again(tmp_path, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch-123")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"tiers:\n  - {{name: only, provider: openai, model: gpt-4o-mini, "
        f"base_url: '{fake_server.openai_base_url}'}}\n"
    )
    fake_server.default = Reply.text("Fine.")
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"item {i}"} for i in range(20)])
    out = tmp_path / "out.jsonl"
    run(config, BatchOptions(source, out, concurrency=5))
    assert len(fake_server.requests) == 20
    first = out.read_text()
    again = run(config, BatchOptions(source, out, concurrency=5))
    assert len(fake_server.requests) == 20 and again.skipped_done == 20
    assert out.read_text() == first


def test_the_job_budget_stops_new_items_and_says_so(tmp_path):
    prompts = demo_prompts()
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": i, "prompt": prompts[i % len(prompts)]} for i in range(40)]
    )
    out = tmp_path / "out.jsonl"
    outcome = run(DEMO, BatchOptions(source, out, concurrency=2, max_cost_usd=Decimal("0.001")))
    assert outcome.stopped_by_budget and outcome.not_started > 0
    assert outcome.report.items + outcome.not_started == 40
    resumed = run(DEMO, BatchOptions(source, out, concurrency=2))
    assert resumed.report.items == 40 and resumed.skipped_done == outcome.report.items


def test_a_state_file_of_another_input_is_refused(tmp_path):
    from cascade.errors import ConfigError

    out = tmp_path / "out.jsonl"
    run(DEMO, BatchOptions(write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "prompt": "x"}]), out))
    with pytest.raises(ConfigError, match="holds the state of a job on"):
        run(DEMO, BatchOptions(write_jsonl(tmp_path / "b.jsonl", [{"id": 1, "prompt": "x"}]), out))


def test_cascade_report_recomputes_the_same_figures(tmp_path):
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": i, "prompt": p} for i, p in enumerate(demo_prompts())]
    )
    out = tmp_path / "out.jsonl"
    report_json = tmp_path / "r.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascade.cli",
            "batch",
            str(DEMO),
            "--input",
            str(source),
            "--output",
            str(out),
            "--report-json",
            str(report_json),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Batch report" in proc.stdout and "Traceback" not in proc.stderr
    again = subprocess.run(
        [sys.executable, "-m", "cascade.cli", "report", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(again.stdout) == json.loads(report_json.read_text())


# -- rate limits ----------------------------------------------------------------------------


def test_token_bucket_spaces_requests_out():
    async def go() -> float:
        bucket = TokenBucket(per_minute=600)  # 10 a second, bursts of 10
        started = time.monotonic()
        for _ in range(20):
            await bucket.acquire()
        return time.monotonic() - started

    assert 0.8 < asyncio.run(go()) < 2.0  # the first 10 at once, the next 10 over a second


def test_adaptive_gate_halves_on_429_and_regrows():
    async def go() -> list[int]:
        gate = AdaptiveGate(8)
        seen = [gate.limit]
        gate.back_off()
        seen.append(gate.limit)
        gate.back_off()
        seen.append(gate.limit)
        for _ in range(3):
            await gate.recover()
        seen.append(gate.limit)
        return seen

    assert asyncio.run(go()) == [8, 4, 2, 5]


# -- crash and resume -----------------------------------------------------------------------


def _item_of(request: RecordedRequest) -> str | None:
    """The item a request is for: its prompt starts `item <id>:`."""
    users = [m["content"] for m in request.body.get("messages") or [] if m.get("role") == "user"]
    return users[0].split(":", 1)[0].removeprefix("item ") if users else None


_tries: dict[tuple[str | None, str], int] = {}


def _faulty(request: RecordedRequest) -> Reply:
    """A provider that throttles, fails and dawdles: pseudo-randomly, the same way for the
    same item, model and try number (the server calls this on its one thread)."""
    key = (_item_of(request), request.model)
    _tries[key] = _tries.get(key, 0) + 1
    roll = zlib.crc32(f"{key}/{_tries[key]}".encode()) % 100
    if roll < 8:
        return Reply.status(429, retry_after=0.05)
    if roll < 14:
        return Reply.status(500)
    if roll < 18:
        return Reply.text("I'm not sure, perhaps 7?", delay_s=0.05)
    return Reply.text(f"The answer for {key[0]} is 7.", delay_s=0.01 if roll < 40 else 0.0)


def _done_ids(output: Path) -> set[str]:
    with sqlite3.connect(state_path(output)) as db:
        return {json.loads(k) for (k,) in db.execute("SELECT key FROM items WHERE done = 1")}


def test_kill_9_twice_then_resume_finishes_every_item_exactly_once(tmp_path, fake_server):
    """The issue's acceptance run: 2,000 items, a faulty provider, two kill -9s, a resume."""
    fake_server.default = _faulty
    config = tmp_path / "c.yaml"
    config.write_text(
        textwrap.dedent(f"""
        tiers:
          - name: small
            provider: openai
            model: gpt-4o-mini
            base_url: {fake_server.openai_base_url}
            retry: {{max_attempts: 4, initial_wait_s: 0.01, max_wait_s: 1}}
          - name: large
            provider: anthropic
            model: claude-opus-4-8
            base_url: {fake_server.anthropic_base_url}
            retry: {{max_attempts: 6, initial_wait_s: 0.01, max_wait_s: 1}}
        verifiers: [{{type: non_empty}}, {{type: hedging}}]
    """)
    )
    rows: list[object] = [{"id": f"i{n}", "prompt": f"item i{n}: what is 3 + 4?"} for n in range(2000)]
    rows.insert(500, "{this line is broken")
    rows.insert(1500, {"id": "i3", "prompt": "item i3: a duplicate"})
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-kill-123", "ANTHROPIC_API_KEY": "sk-ant-kill-123"}
    command = [
        sys.executable,
        "-m",
        "cascade.cli",
        "batch",
        str(config),
        "--input",
        str(source),
        "--output",
        str(out),
        "--concurrency",
        "32",
        "--no-progress",
    ]

    done_before_run: list[set[str]] = []
    run_windows: list[tuple[float, float]] = []
    for kill_after in (300, 1100, None):
        done_before_run.append(_done_ids(out) if state_path(out).exists() else set())
        started = time.monotonic()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kill_after is None:
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 3, stderr  # 3: line errors to look at
        else:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if state_path(out).exists() and len(_done_ids(out)) >= kill_after:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, "the job finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        run_windows.append((started, time.monotonic()))

    records = read_jsonl(out)
    ids = [r["id"] for r in records if r["id"] is not None]
    assert sorted(ids) == sorted(f"i{n}" for n in range(2000))  # every id, exactly once
    errors = [r for r in records if r["id"] is None]
    assert [e["line"] for e in errors] == [501, 1501]
    assert errors[0]["error"].startswith("line 501: not valid JSON")
    assert errors[1]["error"] == "line 1501: duplicate id 'i3' (first on line 4)"
    # the provider's own log: no item finished by an earlier run was requested again
    assert len(done_before_run[1]) >= 300 and len(done_before_run[2]) >= 1100
    for (start, end), finished in zip(run_windows, done_before_run, strict=True):
        requested = {_item_of(r) for r in fake_server.requests if start <= r.received_at <= end}
        assert not (requested & finished)
    report = report_file(out)
    results = [r for r in records if r["id"] is not None]
    assert report.items == 2000 and report.line_errors == 2
    for key in ("total_usd", "wasted_usd", "verification_usd", "baseline_usd", "saved_usd"):
        assert report.money[key] == sum(r["cost"][key] for r in results)
    assert report.fell_back > 0 and report.escalated > 0  # the faults and hedges did happen
