"""`cascade demo`: the README's main job, offline and without a key."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal

from tests.conftest import run_cli


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    keys: dict[str, str | None] = {k: None for k in os.environ if k.endswith("_API_KEY")}
    return run_cli("demo", *args, env=keys, timeout=120)


def test_demo_shows_escalation_verdicts_and_cost_report():
    proc = run_demo()
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "small ✗ hedging → large ✓" in out
    assert "small ✗ non_empty → large ✓" in out
    assert "HTTP 503" in out  # a failing call, retried then fallen through
    assert "reaches threshold" in out  # the verdicts' reasons
    for figure in ("total cost", "wasted on escalation", "top tier alone (baseline)", "saved"):
        assert figure in out


def test_demo_json_results_add_up():
    proc = run_demo("--json")
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line, parse_float=Decimal) for line in proc.stdout.splitlines()]
    assert len(results) == 12 and all(r["verified"] for r in results)
    escalated = [r for r in results if r["tier"] == "large"]
    assert 0 < len(escalated) < len(results)
    for r in results:
        assert r["cost"]["total_usd"] == sum(a["cost_usd"] for a in r["attempts"])


def test_a_long_prompt_is_clipped_at_a_word_with_an_ellipsis():
    from cascade.cli.render import clip

    clipped = clip("What is the boiling point of water at two thousand metres above sea level?", 30)
    assert clipped == "What is the boiling point of …" and len(clipped) <= 30
