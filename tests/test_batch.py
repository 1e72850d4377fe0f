"""Batch jobs: JSONL in and out, line errors, resume after kill -9, rate limits, the report."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import time
import tracemalloc
import zlib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cascade.batch import items, runner
from cascade.batch.items import Item, LineError, parse_line, read_items
from cascade.batch.report import report_file
from cascade.batch.runner import BatchOptions, run_batch
from cascade.batch.state import state_path
from cascade.cli import main
from cascade.config import load_config
from cascade.testing.server import RecordedRequest, Reply
from tests.conftest import cli_command, loopback_tier, run_cli

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "cascade" / "demo" / "demo.yaml"


def write_jsonl(path: Path, rows: Sequence[object]) -> Path:
    with path.open("w") as out:
        for row in rows:
            out.write(row if isinstance(row, str) else json.dumps(row))
            out.write("\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]


def demo_prompts() -> list[str]:
    examples = REPO / "cascade" / "demo" / "examples.jsonl"
    return [json.loads(line)["prompt"] for line in examples.read_text().splitlines()]


def run(config, options: BatchOptions):
    return asyncio.run(run_batch(load_config(config), options, base_dir=Path(config).parent))


def one_tier_job(tmp_path: Path, server, monkeypatch, verifiers: str = "") -> Path:
    """The config of a one-tier job on the loopback provider (gpt-4o-mini), its key set."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch-123")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"tiers:\n  - {{name: only, provider: openai, model: gpt-4o-mini, "
        f"base_url: '{server.openai_base_url}'}}\n{verifiers}"
    )
    return config


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
        ('{"id": 3, "messages": [{"role": "user"}]}', "line 7: messages[0].content must be a string"),
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
    config = one_tier_job(tmp_path, fake_server, monkeypatch)
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
    from cascade.core.errors import ConfigError

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
    proc = run_cli(
        "batch",
        str(DEMO),
        "--input",
        str(source),
        "--output",
        str(out),
        "--report-json",
        str(report_json),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Batch report" in proc.stdout and "Traceback" not in proc.stderr
    again = run_cli("report", str(out), "--json", timeout=60)
    assert json.loads(again.stdout) == json.loads(report_json.read_text())


# -- reading the input ---------------------------------------------------------------------


def test_an_over_long_line_becomes_an_error_and_the_next_line_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(items, "MAX_LINE_CHARS", 50)
    monkeypatch.setattr(items, "SKIP_CHUNK_CHARS", 7)  # the rest of the line is skipped in pieces
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [{"id": 1, "prompt": "a"}, {"id": 2, "prompt": "x" * 500}, {"id": 3, "prompt": "c"}],
    )
    entries = list(read_items(source))
    assert [e.line for e in entries] == [1, 2, 3]
    assert isinstance(entries[1], LineError)
    assert entries[1].message == "line 2: longer than 50 characters"
    assert isinstance(entries[2], Item) and entries[2].id == 3


def _peak_bytes(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_over_long_line_is_never_held_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(items, "MAX_LINE_CHARS", 1000)
    huge = 10_000_000
    source = write_jsonl(tmp_path / "in.jsonl", ['{"id": 1, "prompt": "' + "x" * huge + '"}'])
    found: list[object] = []
    peak = _peak_bytes(lambda: found.extend(read_items(source)))
    assert isinstance(found[0], LineError)
    assert peak < huge / 3  # chunks of the line, never the whole of it


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_the_progress_total_counts_non_blank_lines_across_blocks(tmp_path, monkeypatch, block):
    monkeypatch.setattr(runner, "COUNT_BLOCK_BYTES", block)
    text = '{"id": 1}\n\n   \n{"id": 22, "prompt": "long enough to span blocks"}\r\n\t\nx\n\nlast'
    source = tmp_path / "in.jsonl"
    source.write_text(text)
    assert runner._count_lines(source) == 4
    assert runner._count_lines(source) == sum(1 for e in read_items(source))


def test_counting_lines_never_holds_a_whole_line(tmp_path):
    huge = 10_000_000
    source = tmp_path / "in.jsonl"
    source.write_text("x" * huge + "\n{}\n")
    counted: list[int] = []
    peak = _peak_bytes(lambda: counted.append(runner._count_lines(source)))
    assert counted == [2]
    assert peak < huge / 3  # blocks of 1 MiB


# -- editing the input between runs ---------------------------------------------------------


def _loopback_job(tmp_path: Path, server, monkeypatch) -> Path:
    """A one-tier job on the loopback provider: prompts with `hard` get a hedged answer."""
    config = one_tier_job(tmp_path, server, monkeypatch, "verifiers: [{type: hedging}]\n")

    def answer(request: RecordedRequest) -> Reply:
        prompt = json.dumps(request.body.get("messages"))
        return Reply.text("I'm not sure." if "hard" in prompt else "Fine.")

    server.default = answer
    return config


def _prompts_sent(server) -> list[str]:
    return [m["content"] for r in server.requests for m in r.body["messages"] if m["role"] == "user"]


ABCD = [{"id": name, "prompt": f"item {name}"} for name in "abcd"]


def test_rerun_after_deleting_a_bad_line_keeps_every_id_once(tmp_path, fake_server, monkeypatch):
    config = _loopback_job(tmp_path, fake_server, monkeypatch)
    source = write_jsonl(tmp_path / "in.jsonl", [*ABCD[:2], "{oops", *ABCD[2:]])
    out = tmp_path / "out.jsonl"
    run(config, BatchOptions(source, out))
    write_jsonl(source, ABCD)  # the bad line deleted: c and d move up a line
    again = run(config, BatchOptions(source, out))
    records = read_jsonl(out)
    assert [r["id"] for r in records] == ["a", "b", "c", "d"]
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert not any("error" in r for r in records) and again.report.line_errors == 0
    assert sorted(_prompts_sent(fake_server)) == ["item a", "item b", "item c", "item d"]  # none again


def test_rerun_after_fixing_a_bad_line_in_place_clears_its_error(tmp_path, fake_server, monkeypatch):
    config = _loopback_job(tmp_path, fake_server, monkeypatch)
    source = write_jsonl(tmp_path / "in.jsonl", [*ABCD[:2], "{oops", *ABCD[2:]])
    out = tmp_path / "out.jsonl"
    run(config, BatchOptions(source, out))
    write_jsonl(source, [*ABCD[:2], {"id": "x", "prompt": "item x"}, *ABCD[2:]])
    again = run(config, BatchOptions(source, out))
    records = read_jsonl(out)
    assert [r["id"] for r in records] == ["a", "b", "x", "c", "d"]
    assert not any("error" in r for r in records) and again.report.line_errors == 0
    assert _prompts_sent(fake_server)[4:] == ["item x"]  # only the new item was sent
    assert again.skipped_done == 4


def test_ids_removed_from_the_input_leave_the_output_and_the_review(tmp_path, fake_server, monkeypatch):
    config = _loopback_job(tmp_path, fake_server, monkeypatch)
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [{"id": "a", "prompt": "easy"}, {"id": "b", "prompt": "hard"}, {"id": "c", "prompt": "easy too"}],
    )
    out = tmp_path / "out.jsonl"
    first = run(config, BatchOptions(source, out))
    assert first.review_lines == 1
    write_jsonl(source, [{"id": "a", "prompt": "easy"}])
    again = run(config, BatchOptions(source, out))
    assert [r["id"] for r in read_jsonl(out)] == ["a"]
    assert again.review_lines == 0 and (tmp_path / "out.review.jsonl").read_text() == ""
    assert len(fake_server.requests) == 3


def test_an_edited_input_is_noticed_and_an_unchanged_one_is_not(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": demo_prompts()[0]}])
    out = tmp_path / "out.jsonl"
    assert not run(DEMO, BatchOptions(source, out)).input_changed
    assert not run(DEMO, BatchOptions(source, out)).input_changed
    write_jsonl(source, [{"id": 1, "prompt": demo_prompts()[0]}, {"id": 2, "prompt": demo_prompts()[1]}])
    edited = run(DEMO, BatchOptions(source, out))
    assert edited.input_changed and edited.skipped_done == 1 and edited.report.items == 2


def test_the_command_says_the_input_changed_and_finished_ids_are_kept(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": demo_prompts()[0]}])
    args = [
        "batch",
        str(DEMO),
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.jsonl"),
        "--no-progress",
    ]
    assert main(args) == 0
    assert "changed since the last run" not in capsys.readouterr().out
    write_jsonl(source, [{"id": 1, "prompt": demo_prompts()[0]}, {"id": 2, "prompt": demo_prompts()[1]}])
    assert main(args) == 0  # a warning, not an error
    said = " ".join(capsys.readouterr().out.split())
    assert "changed since the last run: ids finished then are kept and not sent again" in said


def test_progress_reaches_its_total_on_a_resumed_run(tmp_path):
    prompts = demo_prompts()
    source = write_jsonl(
        tmp_path / "in.jsonl", [*({"id": i, "prompt": p} for i, p in enumerate(prompts)), "{oops"]
    )
    out = tmp_path / "out.jsonl"
    run(DEMO, BatchOptions(source, out))
    totals: list[int] = []
    seen: list[int] = []
    asyncio.run(
        run_batch(
            load_config(DEMO),
            BatchOptions(source, out),
            base_dir=DEMO.parent,
            total_hint=totals.append,
            progress=lambda tally: seen.append(tally.handled),
        )
    )
    assert totals == [len(prompts) + 1]
    assert seen and seen[-1] == totals[0]


# -- command-line checks --------------------------------------------------------------------


def _batch_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["batch", str(DEMO), "--no-progress", *args])
    return code, " ".join(capsys.readouterr().err.split())


def test_an_output_that_is_the_input_is_refused_and_the_input_untouched(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    before = source.read_bytes()
    code, said = _batch_cli(capsys, "--input", str(source), "--output", str(tmp_path / "." / "in.jsonl"))
    assert code == 2 and "is the input file: it would be overwritten" in said
    assert source.read_bytes() == before
    assert not state_path(source).exists()


@pytest.mark.parametrize("flag", ["--review", "--record"])
def test_a_review_or_record_file_that_is_the_input_is_refused(tmp_path, capsys, flag):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    before = source.read_bytes()
    code, said = _batch_cli(
        capsys, "--input", str(source), "--output", str(tmp_path / "out.jsonl"), flag, str(source)
    )
    assert code == 2 and f"{flag} {source} is the input file" in said
    assert source.read_bytes() == before


def test_a_missing_output_folder_is_refused_before_anything_runs(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    out = tmp_path / "missing" / "out.jsonl"
    code, said = _batch_cli(capsys, "--input", str(source), "--output", str(out))
    assert code == 2 and "internal error" not in said
    assert f"no folder {out.parent} to write it in" in said


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--rpm", "huge=5", "--rpm huge=5: no tier named 'huge' (tiers: large, small)"),
        ("--rpm", "small=fast", "--rpm small=fast: expected TIER=NUMBER"),
        ("--tpm", "large", "--tpm large: expected TIER=NUMBER"),
        ("--tpm", "small=-5", "--tpm small=-5: the rate must be a positive, finite number"),
        ("--rpm", "small=inf", "--rpm small=inf: the rate must be a positive, finite number"),
    ],
)
def test_bad_rate_flags_are_usage_errors(tmp_path, capsys, flag, value, message):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    code, said = _batch_cli(
        capsys, "--input", str(source), "--output", str(tmp_path / "o.jsonl"), flag, value
    )
    assert code == 2 and message in said
    assert not (tmp_path / "o.jsonl").exists()


# -- rate limits ----------------------------------------------------------------------------


def test_a_tight_rate_limit_on_one_tier_does_not_stall_the_other(tmp_path, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch-123")
    tiers = [
        loopback_tier(fake_server, "small", "small-model"),
        loopback_tier(fake_server, "large", "large-model"),
    ]
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"tiers": tiers, "verifiers": [{"type": "hedging"}]}))

    def answer(request: RecordedRequest) -> Reply:
        hard = "hard" in json.dumps(request.body.get("messages"))
        return Reply.text("I'm not sure." if hard and request.model == "small-model" else "It is 7.")

    fake_server.default = answer
    rows = [{"id": f"h{i}", "prompt": f"hard {i}"} for i in range(6)]  # these escalate to large
    rows += [{"id": f"e{i}", "prompt": f"easy {i}"} for i in range(40)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    # large: 120 a minute, a burst of 2, so its 6 calls take ~2 s; small: no limit
    options = BatchOptions(
        source, tmp_path / "out.jsonl", concurrency=2, rate_limits={"large": (120.0, None)}
    )
    outcome = run(config, options)
    assert outcome.report.items == 46
    large = sorted(r.received_at for r in fake_server.requests if r.model == "large-model")
    small = [r.received_at for r in fake_server.requests if r.model == "small-model"]
    assert len(large) == 6
    assert large[-1] - large[0] > 1.5  # large did wait for its rate limit
    # In the 1.2 s after large's first call, large is still waiting for its bucket: small
    # goes on meanwhile (~40 calls in ~0.2 s here). A stalled small tier makes only the
    # hard items' calls, one per large call (~4 in 1.2 s). The bound is loose for slow CI.
    window = 1.2
    in_window = [t for t in small if large[0] <= t <= large[0] + window]
    assert len(in_window) / window > 12, [round(t - large[0], 2) for t in small]


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


def _done_count_so_far(output: Path) -> int:
    """While the job runs: its state file may exist before its tables do."""
    try:
        return len(_done_ids(output)) if state_path(output).exists() else 0
    except sqlite3.OperationalError:
        return 0


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
    command = cli_command(
        "batch",
        str(config),
        "--input",
        str(source),
        "--output",
        str(out),
        "--concurrency",
        "32",
        "--no-progress",
    )

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
                if _done_count_so_far(out) >= kill_after:
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
    for key in ("total_usd", "wasted_usd", "verification_usd", "baseline_usd"):
        assert report.money[key] == sum(r["cost"][key] for r in results)
    # savings are claimed on verified items only
    assert report.money["saved_usd"] == sum(r["cost"]["saved_usd"] for r in results if r["verified"])
    assert report.fell_back > 0 and report.escalated > 0  # the faults and hedges did happen


def test_a_line_with_tools_gets_checked_tool_calls_in_its_output_record(tmp_path, fake_server, monkeypatch):
    config = one_tier_job(tmp_path, fake_server, monkeypatch)
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {"required": ["q"]}}}
    fake_server.script(
        "gpt-4o-mini", [Reply.tool_call({"q": "x"}, name="lookup"), Reply.tool_call({}, name="lookup")]
    )
    rows = [{"id": n, "prompt": "Look it up.", "tools": [lookup], "tool_choice": "required"} for n in "ab"]
    out = tmp_path / "out.jsonl"
    run(config, BatchOptions(write_jsonl(tmp_path / "in.jsonl", rows), out, concurrency=1))
    records = {r["id"]: r for r in read_jsonl(out)}
    assert records["a"]["verified"] and records["a"]["tool_calls"][0]["name"] == "lookup"
    assert not records["b"]["verified"]  # its call misses the required argument
    assert "missing required argument(s) q" in str(records["b"]["attempts"])
    assert fake_server.requests[0].body["tools"] == [lookup]


def test_the_progress_bar_counts_outcomes_and_leaves_skipped_items_out_of_rate_and_eta():

    from cascade.batch.job import Tally
    from cascade.cli.batch import progress_fields

    tally = Tally(handled=600, skipped=500)
    tally.answered.accepted_by_tier.update(small=70, large=25)
    tally.answered.escalated, tally.answered.unverified = 30, 5
    fields = progress_fields(tally, total=1100, elapsed_s=10.0)
    assert fields["outcomes"] == "✓ large 25 small 70 · ↑ 30 · ? 5"
    assert fields["rate"] == "10.0/s"  # 100 answered in 10 s; the 500 skipped are no speed
    assert fields["eta"] == "ETA 0:00:50"  # 500 left at 10 a second
    assert progress_fields(Tally(), total=None, elapsed_s=0)["eta"] == "ETA -"


def test_a_resumed_job_says_first_how_many_items_are_done(tmp_path, fake_server, monkeypatch):
    config = one_tier_job(tmp_path, fake_server, monkeypatch)
    fake_server.default = Reply.text("Fine.")
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"item {i}"} for i in range(3)])
    args = ("batch", str(config), "--input", str(source), "--output", str(tmp_path / "out.jsonl"))
    first = run_cli(*args, env={"OPENAI_API_KEY": "sk-test-batch-123"}, timeout=120)
    assert first.returncode == 0 and "resuming" not in first.stderr
    again = run_cli(*args, env={"OPENAI_API_KEY": "sk-test-batch-123"}, timeout=120)
    assert "resuming: 3 items are done already and will not be sent again" in again.stderr
