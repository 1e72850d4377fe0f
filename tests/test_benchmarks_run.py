"""The benchmarks run end to end in their quick mode (their figures are not judged here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import engine_overhead  # noqa: E402  (found through the path just added)
import ladders  # noqa: E402
import live_overhead  # noqa: E402
import startup  # noqa: E402


def run_benchmark(script: str, *args: str) -> str:
    """What `python benchmarks/SCRIPT ARGS...` prints, once it has exited 0."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_engine_overhead_prints_a_ratio_for_every_scenario_and_a_profile() -> None:
    out = run_benchmark("engine_overhead.py", "--quick", "--profile")
    for s in engine_overhead.SCENARIOS:  # name, concurrency, raw/s, cascade/s, ratio
        row = rf"^{re.escape(s.name)} +{s.concurrency} +\d+ +\d+ +\d+\.\d\d "
        assert re.search(row, out, re.M), f"no ratio for {s.name} at {s.concurrency}:\n{out}"
    assert re.search(r"^\s*[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\s+cascade/\S+\.py:\d+\(", out, re.M)


def test_the_live_overhead_benchmark_prints_every_side_at_every_concurrency_and_the_ledger_size() -> None:
    out = run_benchmark("live_overhead.py", "--quick")
    for c in live_overhead.CONCURRENCY:  # req/s, CPU ms/req, writers, server, extra calls, added
        for side in live_overhead.SIDES:
            added = "-" if side == live_overhead.SIDES[0] else r"[+-]\d+\.\d%"
            row = rf"^ *{c} +{re.escape(side.name)} +\d+ +(\d+\.\d{{3}} +){{3}}\d+\.\d% +{added} "
            assert re.search(row, out, re.M), f"no row for {side.name} at {c}:\n{out}"
    for attempts in ("1 attempt", "2 attempts"):
        size = rf"^ledger size, {attempts} per request: \d+ bytes/request = \d+ MB per million requests "
        assert re.search(size, out, re.M), f"no ledger size for {attempts}:\n{out}"


def test_the_calibration_benchmark_prints_every_method_and_the_goal_on_gsm8k() -> None:
    if not ladders.available():
        pytest.skip(f"no recorded data at {ladders.DATA}")
    out = run_benchmark("calibration.py", "--only", "routellm-gsm8k", "--splits", "2")
    for method in ("top alone", "oracle", "test-fitted", "naive grid", "point estimate", "guaranteed"):
        assert re.search(rf"\| {method} +\| \d+\.\d% +\| [+-]\d+\.\d% +\| \d+% +\| \d+% ", out), method
    assert re.search(r"^guaranteed: unseen loss within 1% on \d+% of 2 \(ladder, split\) pairs", out, re.M)


def test_the_startup_benchmark_prints_every_row_and_each_goal() -> None:
    out = run_benchmark("startup.py", "--runs", "1")
    for name in (startup.RAW, startup.RUN, startup.VALIDATE_OPENAI, "cascade --help", "python -c pass"):
        assert re.search(rf"^{re.escape(name)} +\d+\.\d{{3}} +\d+\.\d{{3}} ", out, re.M), name
    assert len(re.findall(r"^(PASS|MISS)  ", out, re.M)) == 3, out
