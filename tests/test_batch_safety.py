"""A batch never loses data or pays twice: one job at a time on an output, no silent resume
under another config, no endless calls against a bad key, a budget that is a ceiling,
SIGTERM like SIGINT, and a judge's calls inside the job's limits. Through the real CLI,
against the loopback provider."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from cascade.batch.budget import worst_case_usd
from cascade.batch.report import report_file
from cascade.batch.state import state_path
from cascade.config import load_config
from cascade.core.values import Request
from cascade.engine import Cascade
from cascade.testing.server import RecordedRequest, Reply
from cascade_verifiers.judge import JudgeVerifier
from tests.conftest import cli_command, run_cli

KEYS = {"OPENAI_API_KEY": "sk-test-batch-safety", "ANTHROPIC_API_KEY": "sk-ant-test-batch-safety"}
PRICE = "{input_per_mtok: 1000, output_per_mtok: 2000}"  # dear: a few items cost cents


def write_config(tmp_path: Path, server, *, verifiers: str = "[{type: hedging}]", extra: str = "") -> Path:
    path = tmp_path / "cascade.yaml"
    path.write_text(
        textwrap.dedent(f"""
        tiers:
          - name: small
            provider: openai
            model: gpt-4o-mini
            base_url: {server.openai_base_url}
            price: {PRICE}
            params: {{max_tokens: 50}}
            retry: {{max_attempts: 2, initial_wait_s: 0, max_wait_s: 1}}
          - name: large
            provider: openai
            model: gpt-4o
            base_url: {server.openai_base_url}
            price: {PRICE}
            params: {{max_tokens: 50}}
            retry: {{max_attempts: 2, initial_wait_s: 0, max_wait_s: 1}}
        verifiers: {verifiers}
        """)
        + extra
    )
    return path


def write_items(tmp_path: Path, n: int, name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "".join(json.dumps({"id": f"i{k}", "prompt": f"item i{k}: 3 + 4?"}) + "\n" for k in range(n))
    )
    return path


def job_files(tmp_path: Path, server, items: int) -> tuple[Path, Path, Path]:
    """A job's config, an input of `items` items, and where its output goes."""
    return write_config(tmp_path, server), write_items(tmp_path, items), tmp_path / "out.jsonl"


def batch_command(config: Path, source: Path, out: Path, *extra: str) -> list[str]:
    files = [str(config), "--input", str(source), "--output", str(out)]
    return ["batch", *files, "--no-progress", *extra]


def cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=KEYS)


def start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, **KEYS}
    return subprocess.Popen(
        cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def said(proc: subprocess.CompletedProcess[str]) -> str:
    return " ".join((proc.stdout + proc.stderr).split())


def item_of(request: RecordedRequest) -> str:
    first = next(m["content"] for m in request.body["messages"] if m["role"] == "user")
    return first.split(":", 1)[0].removeprefix("item ")


def wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def requests_by_item(server) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in server.requests:
        counts[item_of(request)] = counts.get(item_of(request), 0) + 1
    return counts


# -- one job at a time --------------------------------------------------------------------------


def test_a_second_job_on_the_same_output_exits_2_at_once_naming_the_first(tmp_path, fake_server):
    fake_server.default = Reply.text("Seven.", delay_s=0.05)
    config, source, out = job_files(tmp_path, fake_server, 60)
    first = start(batch_command(config, source, out, "--concurrency", "1"))
    try:
        assert wait_for(lambda: len(fake_server.requests) >= 3), "the first job never started"
        started = time.monotonic()
        second = cli(batch_command(config, source, out, "--concurrency", "4"))
        assert time.monotonic() - started < 20  # at once: it waits for nothing
        assert second.returncode == 2, said(second)
        assert str(state_path(out)) in said(second) and f"pid {first.pid}" in said(second)
        assert "another `cascade batch` is running" in said(second)
        assert "Traceback" not in second.stderr
    finally:
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(f"i{k}" for k in range(60))
    assert set(requests_by_item(fake_server).values()) == {1}  # no item paid for twice


# -- a changed config ----------------------------------------------------------------------------


def test_a_changed_config_is_refused_unless_allowed_and_each_item_says_its_config(tmp_path, fake_server):
    fake_server.default = Reply.text("Seven.")
    config, out = write_config(tmp_path, fake_server), tmp_path / "out.jsonl"
    source = write_items(tmp_path, 3)
    assert cli(batch_command(config, source, out)).returncode == 0
    write_items(tmp_path, 5)  # two more items, and a stricter config
    config = write_config(tmp_path, fake_server, verifiers="[{type: hedging, threshold: 0.5}]")
    refused = cli(batch_command(config, source, out))
    assert refused.returncode == 2 and "the config changed since this job's last run" in said(refused)
    assert "3 items were answered under the earlier one" in said(refused)
    assert "--allow-config-change" in said(refused) and "Traceback" not in refused.stderr
    assert len(fake_server.requests) == 3  # nothing was sent
    allowed = cli(batch_command(config, source, out, "--allow-config-change"))
    assert allowed.returncode == 0, said(allowed)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    configs = [r["config"] for r in records]
    assert len(set(configs[:3])) == 1 and len(set(configs[3:])) == 1 and configs[0] != configs[3]
    assert f"3 under config {configs[0]}, 2 under config {configs[3]} (this one)" in said(allowed)


def test_an_edited_schema_file_is_a_changed_config(tmp_path, fake_server):
    fake_server.default = Reply.text('{"a": 1}')
    (tmp_path / "schema.json").write_text(json.dumps({"type": "object", "required": ["a"]}))
    config = write_config(tmp_path, fake_server, verifiers="[{type: json_schema, schema_file: schema.json}]")
    source, out = write_items(tmp_path, 2), tmp_path / "out.jsonl"
    assert cli(batch_command(config, source, out)).returncode == 0
    (tmp_path / "schema.json").write_text(json.dumps({"type": "object", "required": ["b"]}))
    refused = cli(batch_command(config, source, out))
    assert refused.returncode == 2 and "the config changed" in said(refused), said(refused)


# -- a bad key ----------------------------------------------------------------------------------


def test_the_same_401_on_item_after_item_stops_the_job_and_retry_failed_redoes_them(tmp_path, fake_server):
    fake_server.default = Reply.status(401, message="Invalid API key")
    config, source, out = job_files(tmp_path, fake_server, 200)
    stopped = cli(batch_command(config, source, out, "--concurrency", "1"))
    assert stopped.returncode == 3, said(stopped)
    assert "stopped: gpt-4o-mini failed with http_401 on 5 items in a row" in said(stopped)
    assert "--retry-failed" in said(stopped)
    calls = len(fake_server.requests)
    assert calls <= 2 * (5 + 4)  # 5 items, plus those in flight (4 workers a call slot), 2 tiers each
    fake_server.default = Reply.text("Seven.")  # the key is fixed
    again = cli(batch_command(config, source, out, "--concurrency", "4"))
    assert again.returncode == 3  # items left without an answer are kept as they are (for review)...
    failed = [json.loads(line) for line in out.read_text().splitlines() if '"output": null' in line]
    assert len(failed) == calls // 2
    retried = cli(batch_command(config, source, out, "--retry-failed"))  # ... until asked
    assert retried.returncode == 0, said(retried)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 200 and all(r["output"] == "Seven." for r in records)
    redone = [r for r in records if "earlier" in r]
    assert len(redone) == len(failed) and all(r["earlier"]["attempts"] == 2 for r in redone)
    assert report_file(out).attempts == 200 + 2 * len(failed)  # the failed calls are still counted


def test_a_failing_model_whose_alternate_answers_does_not_stop_the_job(tmp_path, fake_server):
    fake_server.default = lambda r: Reply.status(401) if r.model == "gpt-4o-mini" else Reply.text("Seven.")
    url = fake_server.openai_base_url
    alternate = f"alternates: [{{provider: openai, model: gpt-4.1-nano, base_url: '{url}', price: {PRICE}}}]"
    config = write_config(tmp_path, fake_server)
    config.write_text(
        config.read_text().replace("model: gpt-4o-mini\n", f"model: gpt-4o-mini\n    {alternate}\n")
    )
    source, out = write_items(tmp_path, 20), tmp_path / "out.jsonl"
    proc = cli(batch_command(config, source, out, "--concurrency", "1"))
    assert proc.returncode == 0, said(proc)  # every item answered on its tier: nothing to stop for
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 20 and {r["model"] for r in records} == {"gpt-4.1-nano"}


def test_after_a_stop_the_fixed_config_and_retry_failed_finish_the_job(tmp_path, fake_server):
    fake_server.default = Reply.status(404, message="model not found")
    config, source, out = job_files(tmp_path, fake_server, 30)
    assert cli(batch_command(config, source, out, "--concurrency", "1")).returncode == 3
    fake_server.default = Reply.text("Seven.")
    config.write_text(config.read_text().replace("gpt-4o-mini", "gpt-4.1-mini"))  # the name, fixed
    retried = cli(batch_command(config, source, out, "--retry-failed"))
    assert retried.returncode == 0, said(retried)  # items with no answer mix nothing: no refusal
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 30 and all(r["output"] == "Seven." for r in records)


# -- the budget ----------------------------------------------------------------------------------


def test_the_job_budget_is_a_ceiling_at_high_concurrency(tmp_path, fake_server):
    fake_server.default = Reply.text("Seven.", input_tokens=20, output_tokens=10, delay_s=0.02)
    config, source, out = job_files(tmp_path, fake_server, 400)
    worst = worst_case_usd(Cascade.from_config(load_config(config)), Request.from_prompt("item i399: 3 + 4?"))
    budget = Decimal("1.5")  # about 40 items as they really cost; far fewer at their worst case
    proc = cli(batch_command(config, source, out, "--concurrency", "32", "--max-cost-usd", str(budget)))
    assert proc.returncode == 3 and "budget of $1.5 reached" in said(proc), said(proc)
    spent = report_file(out).money["total_usd"]
    assert spent <= budget  # a ceiling, with 128 items in progress at a time
    assert spent > budget - worst  # and used: an item is refused only when its worst case does not fit
    billed = Decimal(len(fake_server.requests)) * (20 * 1000 + 10 * 2000) / 1_000_000
    assert billed == spent  # what the provider was asked for is what the report says


def test_a_resumed_job_counts_what_earlier_runs_spent_against_its_budget(tmp_path, fake_server):
    fake_server.default = Reply.text("Seven.", input_tokens=20, output_tokens=10)
    config, source, out = job_files(tmp_path, fake_server, 60)
    command = batch_command(config, source, out, "--concurrency", "4", "--max-cost-usd", "0.6")
    first = cli(command)  # an item costs $0.04, and reserves its worst case, about $0.25
    assert first.returncode == 3 and "budget of $0.6 reached" in said(first), said(first)
    spent, calls = report_file(out).money["total_usd"], len(fake_server.requests)
    assert spent > Decimal("0.3")
    resumed = cli(command)  # what is left does not fit one more item
    assert resumed.returncode == 3 and "budget of $0.6 reached" in said(resumed), said(resumed)
    assert len(fake_server.requests) == calls and report_file(out).money["total_usd"] == spent


def test_the_budget_holds_for_text_that_is_a_token_a_character(tmp_path, fake_server):
    prompt = "\u4eca\u5929\u5929\u6c14\u5f88\u597d" * 1300  # CJK: about a token a character, not four
    fake_server.default = lambda r: Reply.text("Seven.", input_tokens=len(prompt), output_tokens=10)
    config = write_config(tmp_path, fake_server)
    config.write_text(
        config.read_text().replace("gpt-4o-mini", "mistral-small").replace("gpt-4o", "mistral-large")
    )
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": k, "prompt": prompt}) + "\n" for k in range(20)))
    out = tmp_path / "out.jsonl"
    proc = cli(batch_command(config, source, out, "--concurrency", "8", "--max-cost-usd", "100"))
    assert proc.returncode == 3 and "budget of $100 reached" in said(proc), said(proc)
    assert 50 < report_file(out).money["total_usd"] <= 100


def test_the_reservation_covers_a_judge_with_a_long_rubric(tmp_path, fake_server):
    fake_server.default = lambda r: Reply.text(
        json.dumps({"score": 9, "reason": "ok"}) if r.model == "judge-model" else "Seven."
    )
    rubric = " ".join(f"Criterion {n}: the answer must be right about part {n}." for n in range(400))
    url = fake_server.openai_base_url
    model = f"{{provider: openai, model: judge-model, base_url: '{url}', price: {PRICE}}}"
    config = write_config(
        tmp_path, fake_server, verifiers=f"[{{type: judge, rubric: '{rubric}', model: {model}}}]"
    )
    cascade = Cascade.from_config(load_config(config))
    request = Request.from_prompt("item i0: 3 + 4?")
    worst = worst_case_usd(cascade, request)
    result = cascade.run(request)
    assert result.verified and result.cost.verification_usd > 0
    # the judge's share of the worst case covers the judge's real call, rubric and all
    (judge,) = cascade.plan.chain("small")
    assert isinstance(judge, JudgeVerifier)
    reserved = judge.worst_cost_usd(100, 50, None)
    assert result.cost.verification_usd <= reserved and result.cost.total_usd <= worst


# -- signals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_the_items_in_flight_says_so_and_the_same_command_resumes(
    tmp_path, fake_server, sig, code
):
    fake_server.default = Reply.text("Seven.", delay_s=0.1)
    config, source, out = job_files(tmp_path, fake_server, 80)
    command = batch_command(config, source, out, "--concurrency", "2")
    job = start(command)
    assert wait_for(lambda: len(fake_server.requests) >= 10)
    signalled_at = time.monotonic()
    job.send_signal(sig)
    stdout, stderr = job.communicate(timeout=60)
    late = [r for r in fake_server.requests if r.received_at > signalled_at + 0.05]
    assert late == []  # no item started after the signal: not even those waiting for a call slot
    text = " ".join((stdout + stderr).split())
    assert job.returncode == code, text
    assert f"interrupted by {sig.name}:" in text and "0 in flight were abandoned" in text
    assert "Run the same command again to resume" in text and "Traceback" not in text
    assert not out.exists()  # the output is written only by a run that ends
    done = int(text.split(f"interrupted by {sig.name}: ")[1].split(" items")[0])
    assert 10 <= done < 80
    assert wait_for(lambda: all(r.completed for r in fake_server.requests))  # nothing left hanging
    resumed = cli(command)
    assert resumed.returncode == 0 and f"{done} items finished by an earlier run" in said(resumed)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(f"i{k}" for k in range(80))
    assert set(requests_by_item(fake_server).values()) == {1}  # finished items were not redone


def test_a_second_signal_abandons_the_items_in_flight_and_they_are_run_again(tmp_path, fake_server):
    fake_server.default = Reply.text("Seven.", delay_s=2.0)
    config, source, out = job_files(tmp_path, fake_server, 20)
    command = batch_command(config, source, out, "--concurrency", "2")
    job = start(command)
    assert wait_for(lambda: len(fake_server.requests) >= 2)
    job.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    job.send_signal(signal.SIGTERM)
    stdout, stderr = job.communicate(timeout=30)
    text = " ".join((stdout + stderr).split())
    assert job.returncode == 143, text
    abandoned = int(text.split("; ")[1].split(" in flight were abandoned")[0])
    assert abandoned >= 2  # the two calls at the provider, and the items waiting for a call slot
    fake_server.default = Reply.text("Seven.")
    assert cli(command).returncode == 0
    assert len(out.read_text().splitlines()) == 20


# -- the judge inside the job's limits --------------------------------------------------------------


def test_a_judges_calls_share_the_jobs_cap_on_calls_in_flight(tmp_path, fake_server):
    def reply(request: RecordedRequest) -> Reply:
        if request.model == "judge-model":
            return Reply.text(json.dumps({"score": 9, "reason": "right"}), delay_s=0.05)
        return Reply.text("Seven.", delay_s=0.05)

    fake_server.default = reply
    url = fake_server.openai_base_url
    model = f"{{provider: openai, model: judge-model, base_url: '{url}', price: {PRICE}}}"
    judge = f"[{{type: judge, model: {model}}}]"
    config = write_config(tmp_path, fake_server, verifiers=judge)
    source, out = write_items(tmp_path, 12), tmp_path / "out.jsonl"
    proc = cli(batch_command(config, source, out, "--concurrency", "1"))
    assert proc.returncode == 0, said(proc)
    judged = [r for r in fake_server.requests if r.model == "judge-model"]
    assert len(judged) == 12
    spans = sorted((r.received_at, r.finished_at or r.received_at) for r in fake_server.requests)
    # (a reply is marked finished just after the client has read it: a few ms of slack)
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1] - 0.02]
    assert overlaps == []  # --concurrency 1: one call in flight at a time, the judge's included
