"""Recorded outcomes: the format, the replay provider, `cascade eval`, and recording a batch."""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cascade.batch.runner import BatchOptions, run_batch
from cascade.config import load_config, parse_config
from cascade.core.errors import PermanentProviderError
from cascade.core.tokens import count_tokens
from cascade.core.values import Request
from cascade.offline.evaluation import evaluate
from cascade.offline.records import with_records
from cascade.providers.replay import ReplayProvider, load_recorded
from cascade.testing.server import Reply
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "routellm"
sys.path.insert(0, str(REPO / "benchmarks"))

CHEAP, STRONG = "cheap-model", "strong-model"
PRICES = {
    CHEAP: {"input_per_mtok": 1, "output_per_mtok": 2},
    STRONG: {"input_per_mtok": 10, "output_per_mtok": 20},
}


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def config(data: Path, verifiers: list[dict[str, Any]] | None = None):
    tiers = [
        {"name": n, "provider": "replay", "model": m, "price": PRICES[m]}
        for n, m in (("small", CHEAP), ("large", STRONG))
    ]
    return with_records(parse_config({"tiers": tiers, "verifiers": verifiers or [{"type": "hedging"}]}), data)


def test_malformed_lines_are_reported_by_number_and_skipped(tmp_path):
    data = write(
        tmp_path / "r.jsonl",
        [
            {"id": 1, "prompt": "a", "responses": {CHEAP: {"text": "x"}}, "source": "kept"},
            "{broken",
            {"id": 2, "prompt": "b"},
            {"id": 3, "prompt": "c", "responses": {CHEAP: {"text": "y", "correct": "yes"}}},
            {"id": 1, "prompt": "d", "responses": {CHEAP: {"text": "z"}}},
        ],
    )
    recorded = load_recorded(data)
    assert list(recorded.records) == ["1"]
    assert recorded.records["1"].extra == {"source": "kept"}  # unknown fields are kept
    assert [p.split(": ", 1)[0] for p in recorded.problems] == [f"{data} line {n}" for n in (2, 3, 4, 5)]
    assert "correct must be true or false" in recorded.problems[2]
    assert "duplicate id '1' (first on line 1)" in recorded.problems[3]


def test_replay_uses_recorded_usage_cost_and_latency_or_counts_them(tmp_path):
    data = write(
        tmp_path / "r.jsonl",
        [
            {
                "id": "q",
                "prompt": "What is 2+2?",
                "responses": {
                    CHEAP: {
                        "text": "4",
                        "input_tokens": 11,
                        "output_tokens": 1,
                        "cost_usd": 0.0042,
                        "latency_ms": 250,
                    },
                    STRONG: {"text": "Four."},
                },
            },
        ],
    )
    recorded = load_recorded(data)
    request = Request.from_prompt("What is 2+2?", id="q")
    recorded_one = asyncio.run(ReplayProvider(CHEAP, recorded).complete(request))
    assert (recorded_one.usage.input_tokens, recorded_one.usage.output_tokens) == (11, 1)
    assert not recorded_one.usage.estimated and recorded_one.cost_usd == Decimal("0.0042")
    assert recorded_one.latency_s == 0.25
    counted = asyncio.run(ReplayProvider(STRONG, recorded).complete(request))
    assert counted.usage.estimated and counted.cost_usd is None
    assert counted.usage.output_tokens == count_tokens("Four.", STRONG)
    with pytest.raises(PermanentProviderError, match="no recorded answer of other"):
        asyncio.run(ReplayProvider("other", recorded).complete(request))


def test_eval_replays_the_cascade_and_bills_recorded_costs(tmp_path):
    data = write(
        tmp_path / "r.jsonl",
        [
            {
                "id": 1,
                "prompt": "p1",
                "responses": {
                    CHEAP: {"text": "Sure: 1.", "correct": True, "cost_usd": 0.001},
                    STRONG: {"text": "1", "correct": True, "cost_usd": 0.01},
                },
            },
            {
                "id": 2,
                "prompt": "p2",
                "responses": {
                    CHEAP: {"text": "I'm not sure.", "correct": False, "cost_usd": 0.001},
                    STRONG: {"text": "2", "correct": True, "cost_usd": 0.01},
                },
            },
            {
                "id": 3,
                "prompt": "p3",
                "responses": {
                    CHEAP: {"text": "3, I think.", "correct": False, "cost_usd": 0.001},
                    STRONG: {"text": "3", "correct": False, "cost_usd": 0.01},
                },
            },
        ],
    )
    report = asyncio.run(evaluate(config(data), load_recorded(data)))
    assert report.cascade.accuracy == pytest.approx(2 / 3)  # 1 from small, 2 escalated, 3 wrong on small
    assert report.cascade.cost_usd == Decimal("0.001") * 3 + Decimal("0.01")
    assert [p.accuracy for p in report.tiers_alone] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert report.top.cost_usd == Decimal("0.03")
    # the oracle stops at the first correct tier: 1 on small; 2 small+large; 3 pays both, wrong
    assert report.oracle.accuracy == pytest.approx(2 / 3)
    assert report.oracle.cost_usd == Decimal("0.001") * 3 + Decimal("0.01") * 2
    assert report.escalated == 1 and report.reached_top == 1


def test_recorded_signals_stand_in_for_live_ones_and_say_so(tmp_path):
    data = write(
        tmp_path / "r.jsonl",
        [
            {
                "id": 1,
                "prompt": "p",
                "responses": {
                    CHEAP: {"text": "a", "confidence": 0.3, "correct": False},
                    STRONG: {"text": "b", "confidence": 0.9, "correct": True},
                },
            },
        ],
    )
    report = asyncio.run(
        evaluate(config(data, [{"type": "self_confidence", "threshold": 0.5}]), load_recorded(data))
    )
    assert report.cascade.accuracy == 1.0 and report.escalated == 1


def test_a_recorded_cut_off_answer_is_rejected_in_replay_as_it_was_live(tmp_path):
    data = write(
        tmp_path / "r.jsonl",
        [
            {
                "id": 1,
                "prompt": "p",
                "responses": {
                    CHEAP: {"text": "The answer is", "finish_reason": "length", "correct": False},
                    STRONG: {"text": "The answer is 4.", "finish_reason": "stop", "correct": True},
                },
            },
        ],
    )
    report = asyncio.run(evaluate(config(data), load_recorded(data)))
    assert report.cascade.accuracy == 1.0 and report.escalated == 1


def test_a_batch_records_a_tool_call_and_its_replay_rejects_it_as_live(tmp_path, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-replay-Wc4Np8")
    url = fake_server.openai_base_url
    tiers = [
        {"name": n, "provider": "openai", "model": m, "base_url": url, "price": PRICES[m]}
        for n, m in (("small", CHEAP), ("large", STRONG))
    ]
    live = parse_config({"tiers": tiers, "verifiers": [{"type": "non_empty"}]})
    fake_server.script(CHEAP, [Reply.tool_call({"q": "capital"}, text="Let me look that up.")])
    fake_server.script(STRONG, [Reply.text("Paris.")])
    source = write(tmp_path / "in.jsonl", [{"id": 1, "prompt": "Capital of France?"}])
    recorded = tmp_path / "recorded.jsonl"
    asyncio.run(run_batch(live, BatchOptions(source, tmp_path / "out.jsonl", record=recorded)))
    (line,) = [json.loads(text) for text in recorded.read_text().splitlines()]
    assert line["responses"][CHEAP]["tool_calls"] == [
        {"id": "call_fake1", "name": "lookup", "arguments": '{"q":"capital"}'}
    ]
    for response in line["responses"].values():  # a person marks the answers
        response["correct"] = response["text"] == "Paris."
    write(recorded, [line])
    report = asyncio.run(evaluate(config(recorded, [{"type": "non_empty"}]), load_recorded(recorded)))
    assert report.escalated == 1 and report.cascade.accuracy == 1.0  # as live: the tool call was rejected


def test_eval_cli_prints_json_and_table(tmp_path):
    data = write(
        tmp_path / "r.jsonl",
        [
            {
                "id": 1,
                "prompt": "p",
                "responses": {CHEAP: {"text": "x", "correct": True}, STRONG: {"text": "y", "correct": True}},
            }
        ],
    )
    path = tmp_path / "c.yaml"
    price = "{input_per_mtok: 1, output_per_mtok: 2}"
    path.write_text(
        "tiers:\n"
        f"  - {{name: small, provider: replay, model: {CHEAP}, price: {price}}}\n"
        f"  - {{name: large, provider: replay, model: {STRONG}, price: {price}}}\n"
    )
    proc = run_cli("eval", str(path), "--data", str(data), "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["cascade"]["accuracy"] == 1.0 and figures["requests"] == 1
    assert {"tiers_alone", "top_alone", "oracle"} <= set(figures)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/routellm is not here")
def test_eval_on_gsm8k_reproduces_the_recorded_accuracies(tmp_path):
    import routellm

    data = write(tmp_path / "gsm8k.jsonl", list(routellm.gsm8k()))
    report = asyncio.run(
        evaluate(
            with_records(load_config(REPO / "configs" / "routellm-gsm8k.yaml"), data),
            load_recorded(data),
        )
    )
    cheap, strong = report.tiers_alone
    # the data's README: Mixtral 63.8 %, GPT-4 85.7 %, one of them right 92.9 % (before the
    # contaminated prompts are left out)
    assert cheap.accuracy == pytest.approx(0.638, abs=0.005)
    assert strong.accuracy == pytest.approx(0.857, abs=0.005)
    assert report.oracle.accuracy == pytest.approx(0.929, abs=0.005)
    assert report.cascade.requests == 1307


def test_a_batch_can_record_its_outcomes_for_eval(tmp_path):
    source = write(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "prompt": "Who won the 1987 Tour de France?", "metadata": {"k": 1}},
            {"id": "b", "prompt": "What is 17 * 23?"},
        ],
    )
    recorded_path = tmp_path / "recorded.jsonl"
    demo = REPO / "cascade" / "demo" / "demo.yaml"
    asyncio.run(
        run_batch(
            load_config(demo),
            BatchOptions(source, tmp_path / "out.jsonl", record=recorded_path),
            base_dir=demo.parent,
        )
    )
    recorded = load_recorded(recorded_path)
    assert recorded.problems == [] and set(recorded.records) == {"a", "b"}
    a = recorded.records["a"]
    assert set(a.responses) == {"gpt-4o-mini", "claude-sonnet-4-5"}  # the hedge and the accepted answer
    assert a.responses["claude-sonnet-4-5"]["verified"] is True
    assert a.responses["claude-sonnet-4-5"]["finish_reason"] == "stop"
    assert a.extra == {"metadata": {"k": 1}}
    assert a.request.messages[-1].content == "Who won the 1987 Tour de France?"


def test_eval_and_calibrate_refuse_data_that_cannot_score_the_config(tmp_path):
    """A tier model absent from the data, or data with no `correct` label, is a usage error
    naming what is wrong, not a table of 0 % accuracies."""
    config_file = tmp_path / "c.yaml"
    tiers = [
        {"name": n, "provider": "replay", "model": m, "price": PRICES[m]}
        for n, m in (("small", CHEAP), ("large", STRONG))
    ]
    config_file.write_text(json.dumps({"tiers": tiers, "verifiers": [{"type": "hedging"}]}))
    only_cheap = write(
        tmp_path / "cheap.jsonl",
        [{"id": "1", "prompt": "q", "responses": {CHEAP: {"text": "a", "correct": True}}}],
    )
    unlabelled = write(
        tmp_path / "unlabelled.jsonl",
        [{"id": "1", "prompt": "q", "responses": {CHEAP: {"text": "a"}, STRONG: {"text": "b"}}}],
    )
    calibrate = ["calibrate", str(config_file), "--out", str(tmp_path / "o.yaml"), "--match-top", "--data"]
    for command in (["eval", str(config_file), "--data"], calibrate):
        absent = run_cli(*command, str(only_cheap), timeout=60)
        assert absent.returncode == 2, absent.stderr
        assert f"no recorded answers of tiers.1 ({STRONG}) (models in the data: {CHEAP})" in absent.stderr
        blind = run_cli(*command, str(unlabelled), timeout=60)
        assert blind.returncode == 2 and "no answer carries a `correct` label" in blind.stderr
        assert "Traceback" not in absent.stderr + blind.stderr
    assert not (tmp_path / "o.yaml").exists()
