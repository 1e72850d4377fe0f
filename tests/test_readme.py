"""The README's code examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

from cascade import Candidate, Completion, Request, Usage

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def block_containing(text: str) -> str:
    return next(b for b in BLOCKS if text in b)


def test_the_scripted_cascade_example_runs():
    exec(block_containing("ScriptedProvider"), {})  # it asserts its own result


def test_the_custom_verifier_example_works():
    namespace: dict[str, object] = {}
    exec(block_containing("class MaxWords"), namespace)
    verifier = namespace["MaxWords"](limit=3)
    long = Candidate(Request.from_prompt("q"), Completion("one two three four", "m", Usage()), "small")
    verdict = verifier(long)
    assert not verdict.passed and verdict.reason == "4 words (limit 3)"
