"""`cascade demo`: the README's main job, offline and without a key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "cascade.cli", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


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
