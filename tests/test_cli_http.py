"""`cascade run` as a user runs it: a subprocess against the loopback fake provider."""

from __future__ import annotations

import json
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from cascade.testing.server import Reply
from tests.conftest import run_cli

OPENAI_KEY = "sk-test-openai-TOPSECRET-1234567890"
ANTHROPIC_KEY = "sk-ant-test-TOPSECRET-0987654321"


@pytest.fixture
def config(tmp_path, fake_server) -> Path:
    path = tmp_path / "cascade.yaml"
    path.write_text(
        textwrap.dedent(f"""
        tiers:
          - name: small
            provider: openai
            model: gpt-4o-mini
            base_url: {fake_server.openai_base_url}
            timeout_s: 5
            retry: {{max_attempts: 3, initial_wait_s: 0, max_wait_s: 2}}
          - name: large
            provider: anthropic
            model: claude-opus-4-8
            base_url: {fake_server.anthropic_base_url}
            timeout_s: 5
            retry: {{max_attempts: 2, initial_wait_s: 0, max_wait_s: 2}}
        verifiers:
          - type: non_empty
          - type: hedging
    """)
    )
    return path


def cascade_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}, stdin=stdin)


def assert_no_key(proc: subprocess.CompletedProcess[str]) -> None:
    for stream in (proc.stdout, proc.stderr):
        assert "TOPSECRET" not in stream


def test_run_escalates_hedged_answer_to_anthropic_and_bills_both(config, fake_server):
    fake_server.script(
        "gpt-4o-mini", [Reply.text("I'm not sure. Possibly 12?", input_tokens=30, output_tokens=9)]
    )
    fake_server.script("claude-opus-4-8", [Reply.text("The answer is 12.", input_tokens=31, output_tokens=6)])
    proc = cascade_cli("run", str(config), "What is 3 * 4?", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout, parse_float=Decimal)
    assert result["output"] == "The answer is 12." and result["verified"] is True
    assert result["tier"] == "large" and result["model"] == "claude-opus-4-8"
    assert [a["outcome"] for a in result["attempts"]] == ["rejected", "accepted"]
    assert [a["tier"] for a in result["attempts"]] == ["small", "large"]
    rejected = result["attempts"][0]
    assert rejected["verdicts"][-1]["verifier"] == "hedging" and not rejected["verdicts"][-1]["passed"]
    assert "i'm not sure" in rejected["verdicts"][-1]["reason"]
    costs = [a["cost_usd"] for a in result["attempts"]]
    assert all(c > 0 for c in costs)
    assert result["cost"]["total_usd"] == sum(costs)
    assert result["cost"]["wasted_usd"] == costs[0]
    assert_no_key(proc)
    # events per attempt on stderr
    assert proc.stderr.count("attempt_finished") == 2


def test_run_plain_prints_answer_on_stdout_and_report_on_stderr(config, fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("Blue.")])
    proc = cascade_cli("run", str(config), "--system", "Answer in one word.", stdin="Colour of the sky?")
    assert proc.returncode == 0
    assert proc.stdout == "Blue.\n"
    assert "verified" in proc.stderr and "small" in proc.stderr
    assert fake_server.requests[0].body["messages"][-1]["content"] == "Colour of the sky?"


def test_500_then_success_retries_same_tier(config, fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(500), Reply.text("Recovered.")])
    proc = cascade_cli("run", str(config), "q", "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert [(a["tier"], a["outcome"], a["retry"]) for a in result["attempts"]] == [
        ("small", "error", 0),
        ("small", "accepted", 1),
    ]


def test_401_not_retried_falls_through(config, fake_server):
    fake_server.script(
        "gpt-4o-mini", [Reply.status(401, message=f"Incorrect API key provided: {OPENAI_KEY}")]
    )
    fake_server.script("claude-opus-4-8", [Reply.text("From Anthropic.")])
    proc = cascade_cli("run", str(config), "q", "--json", "--log-format", "json")
    assert proc.returncode == 0
    assert len(fake_server.requests_for("gpt-4o-mini")) == 1
    result = json.loads(proc.stdout)
    assert "HTTP 401" in result["attempts"][0]["error"]
    assert_no_key(proc)
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [e["outcome"] for e in events if e["event"] == "attempt_finished"] == ["error", "accepted"]


def test_every_tier_failing_exits_3_with_a_clear_message(config, fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(503)] * 3)
    fake_server.script("claude-opus-4-8", [Reply.status(529)] * 2)
    proc = cascade_cli("run", str(config), "q")
    assert proc.returncode == 3
    assert "every tier failed" in proc.stderr and "HTTP 503" in proc.stderr and "HTTP 529" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_every_tier_failing_with_json_still_reports_the_attempts(config, fake_server):
    fake_server.script("gpt-4o-mini", [Reply.status(400)])
    fake_server.script("claude-opus-4-8", [Reply.status(400)])
    proc = cascade_cli("run", str(config), "q", "--json")
    assert proc.returncode == 3
    result = json.loads(proc.stdout)
    assert result["output"] is None and result["verified"] is False and len(result["attempts"]) == 2
    assert result["error"].startswith("every tier failed")


def test_unverified_answer_exits_3(config, fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("I'm not sure.")])
    fake_server.script("claude-opus-4-8", [Reply.text("I don't know, as an AI.")])
    proc = cascade_cli("run", str(config), "q")
    assert proc.returncode == 3
    assert proc.stdout.strip() == "I don't know, as an AI."
    assert "UNVERIFIED" in proc.stderr


def test_run_takes_a_conversation_with_tools_from_a_messages_file(config, fake_server, tmp_path):
    conversation = {
        "system": "Use the tools.",
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "One moment."},
            {"role": "user", "content": "Well?"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
        ],
    }
    (tmp_path / "chat.json").write_text(json.dumps(conversation))
    fake_server.script("gpt-4o-mini", [Reply.tool_call({"city": "Oslo"}, name="get_weather")])
    proc = cascade_cli("run", str(config), "--messages", str(tmp_path / "chat.json"))
    assert proc.returncode == 0, proc.stderr
    (call,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    sent = fake_server.requests[0].body
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[{", "not valid JSON"),
        ('[{"role": "user"}]', "messages[0].content must be a string"),
        ('"hi"', "a messages list or an object"),
    ],
)
def test_a_broken_messages_file_is_a_usage_error_naming_it(config, tmp_path, content, problem):
    (tmp_path / "chat.json").write_text(content)
    proc = cascade_cli("run", str(config), "--messages", str(tmp_path / "chat.json"))
    assert proc.returncode == 2 and problem in proc.stderr and "chat.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_messages_file_with_a_key_it_cannot_hold_is_refused(config, tmp_path):
    (tmp_path / "chat.json").write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "temperature": 0})
    )
    proc = cascade_cli("run", str(config), "--messages", str(tmp_path / "chat.json"))
    assert proc.returncode == 2 and "unknown key temperature" in proc.stderr
