"""The runnable examples in docs/examples run offline and do what their docstrings say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def run_example(name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}  # no key needed
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_agent_loop_escalates_per_step_and_after_a_tool_error():
    done = run_example("agent_loop.py")
    assert done.returncode == 0, done.stderr
    steps = [line for line in done.stdout.splitlines() if line.startswith("step")]
    assert steps == [
        'step 1: [small:accepted] get_weather({"city":"Olso"}) = error: no such city: Olso',
        'step 2: [large:accepted] get_weather({"city": "Oslo"}) = 12',  # started higher after the error
        'step 3: [small:rejected -> large:accepted] to_fahrenheit({"celsius": 12}) = 53.6',  # invalid call
        "step 4: [small:accepted] answer: It is 53.6 °F in Oslo.",
    ]
    assert "over 5 calls" in done.stdout
