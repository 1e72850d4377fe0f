"""The code type-checks: `python -m mypy` from the repo root, as a developer or CI runs it,
checks cascade, cascade_verifiers and tests (the `packages` in pyproject.toml) and passes.

mypy keeps its cache in .mypy_cache: the first run on a clean checkout takes ~25 s on two
cores, a run after it a few seconds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_passes_on_the_code_and_the_tests():
    run = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"mypy exited {run.returncode}:\n{run.stdout}{run.stderr}"
