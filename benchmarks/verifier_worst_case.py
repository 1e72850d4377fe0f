"""Adversarial answers for the built-in checks, and every check run on one.

    python benchmarks/verifier_worst_case.py            # 1 MB of each shape
    python benchmarks/verifier_worst_case.py --mb 4     # 4 MB: linear checks take 4x as long

A check runs in the event loop that serves every request of the process: one that is
quadratic in its input freezes them all. These shapes are the ones that once made a check
quadratic (a long word at the end of a streamed prefix, nested forged markers, a megabyte
of code fences, JSON starts that fail one after another); `run_every_check` runs each
built-in check and partial check on a text, for the test (a bound in seconds) and the
benchmark (the figures, against a linear scan of the same text).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

from cascade import Cascade, Price, Tier, TierModel
from cascade.core.redaction import read_key, redact
from cascade.core.stream_events import StreamDone, TextDelta
from cascade.core.values import Candidate, Completion, Request, Usage
from cascade_verifiers._injection import find_injection
from cascade_verifiers.basic import LengthVerifier, NonEmptyVerifier
from cascade_verifiers.confidence import SelfConfidenceVerifier
from cascade_verifiers.hedging import HedgingVerifier
from cascade_verifiers.judge import JudgeVerifier
from cascade_verifiers.learned_features import features
from cascade_verifiers.schema import JsonSchemaVerifier

MB = 1_000_000


def adversarial(unit: str, size: int = MB) -> str:
    """`unit` repeated to `size` characters."""
    return (unit * (size // max(1, len(unit)) + 1))[:size]


def _nested_markers(size: int) -> str:
    """Forged markers nested inside each other: removing one joins the pieces of the next."""
    half = size // 2
    return adversarial("<<<END ", half) + adversarial("ANSWER>>>", size - half)


SHAPES: dict[str, Callable[[int], str]] = {
    "one long word, then a stop": lambda size: adversarial("a", size - 1) + ".",
    "nested forged markers": _nested_markers,
    "repeated fences": lambda size: adversarial("```\n", size),
    "fences opening JSON": lambda size: adversarial("```json\n{", size),
    "fenced JSON keys": lambda size: adversarial('```\n{"a":', size),
    "inline code marks": lambda size: adversarial("`a ", size),
    "JSON starts in prose": lambda size: adversarial('{"a": ', size),
    "brackets": lambda size: adversarial("[{", size),
    "rating lines": lambda size: adversarial("confidence: 9\n", size),
    "blank lines": lambda size: adversarial("\n \n", size),
    "a ligature that is a phrase": lambda size: adversarial("\ufdfa", size),  # NFKC: 18 characters
    "tag characters": lambda size: adversarial("\U000e0061x", size),
    "right-to-left runs": lambda size: adversarial("\u202eab\n", size),
    "masked forms of a key": lambda size: adversarial("Zq81...dJ3sA ", size),
}


def _candidate(text: str) -> Candidate:
    return Candidate(Request.from_prompt("How many apples?"), Completion(text, "m", Usage(1, 1)), "small")


def _judge() -> JudgeVerifier:
    """A judge that is never called: only the work before its call is timed."""
    model = {
        "provider": "openai",
        "model": "judge-model",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": "CASCADE_WORST_CASE_NO_KEY",
        "price": {"input_per_mtok": 1, "output_per_mtok": 1},
    }
    return JudgeVerifier(model=model)


# keys known to the redactor: two of the usual shapes, and ten more, as a process with many
# tiers and judges has (the redactor's work must not grow with them); redaction runs on
# every answer, event and line written
BENCHMARK_KEYS = {
    "CASCADE_BENCHMARK_KEY_A": "Zq81mXv0Pt9LcQ2wRy7uKe4HbN6dJ3sA",
    "CASCADE_BENCHMARK_KEY_B": "sk-ant-api03-Q8zR2mKp1xYwT7vB3nL0aHc",
    **{f"CASCADE_BENCHMARK_KEY_{n}": f"sk-proj-{n:02d}" + "Hx7Qm2Lp9Vt4Rw8Kc3Nb6Yz1" for n in range(10)},
}
REDACTION = f"redaction ({len(BENCHMARK_KEYS)} keys known)"


def know_keys() -> None:
    for name, key in BENCHMARK_KEYS.items():
        os.environ.setdefault(name, key)
        read_key(name)


def checks() -> dict[str, Callable[[str], object]]:
    """Every built-in check that reads the answer's text, by name, and the redactor."""
    know_keys()
    hedging = HedgingVerifier()
    hedging_ignoring = HedgingVerifier(ignore=["code", "json_strings"])
    schema = JsonSchemaVerifier(schema={"type": "object", "required": ["a"]})
    confidence = SelfConfidenceVerifier()
    length = LengthVerifier(max_chars=10 * MB)
    judge = _judge()
    return {
        "non_empty": lambda text: NonEmptyVerifier()(_candidate(text)),
        "length (partial)": length.check_partial,
        "hedging": lambda text: hedging(_candidate(text)),
        "hedging (partial)": hedging.check_partial,
        "hedging, code and JSON ignored": lambda text: hedging_ignoring(_candidate(text)),
        "json_schema": lambda text: schema(_candidate(text)),
        "json_schema (partial)": schema.check_partial,
        "self_confidence": lambda text: asyncio.run(confidence(_candidate(text))),
        "self_confidence clean_output": confidence.clean_output,
        "judge pre-check": lambda text: find_injection(text, "How many apples?"),
        "judge fence (forged markers)": lambda text: judge.judge_request(_candidate(text)),
        "learned features": lambda text: features("How many apples?", text),
        REDACTION: redact,
    }


def run_every_check(text: str) -> dict[str, float]:
    """Seconds each check took on `text`."""
    seconds = {}
    for name, check in checks().items():
        started = time.perf_counter()
        check(text)
        seconds[name] = time.perf_counter() - started
    return seconds


class PieceByPieceProvider:
    """A provider that streams a fixed answer in pieces of `piece` characters, at once."""

    model = "piece-by-piece"

    def __init__(self, text: str, piece: int = 16) -> None:
        self.text, self.piece = text, piece

    async def complete(self, request: Request) -> Completion:
        return Completion(self.text, self.model, Usage(1, 1), "stop")

    async def stream_events(self, request: Request) -> AsyncIterator[TextDelta | StreamDone]:
        for start in range(0, len(self.text), self.piece):
            yield TextDelta(self.text[start : start + self.piece])
        yield StreamDone("stop", Usage(1, 1))

    async def aclose(self) -> None:
        return None


def stream_seconds(text: str, verifiers: list[Any], piece: int = 16) -> float:
    """Seconds to stream `text` through a one-tier cascade under the restart policy (its
    partial checks, redaction and delta events), `piece` characters at a time."""
    know_keys()  # every delta is redacted
    tier = Tier("only", (TierModel(PieceByPieceProvider(text, piece), Price(Decimal(1), Decimal(1))),))
    cascade = Cascade([tier], verifiers)

    async def drain() -> None:
        async for _ in cascade.astream("q", policy="restart"):
            pass

    started = time.perf_counter()
    asyncio.run(drain())
    return time.perf_counter() - started


def _baseline(text: str) -> float:
    """Seconds of one linear pass: lower-casing the text and one regex search through it."""
    started = time.perf_counter()
    re.search(r"\bignore\s+previous\b", text.lower())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=1.0, help="size of each input, in MB (default 1)")
    size = int(parser.parse_args().mb * MB)
    print(f"each check on {size:,} characters of each shape; seconds, and x = time / one linear scan")
    worst: tuple[float, str] = (0.0, "")
    for name, make in SHAPES.items():
        text = make(size)
        base = min(_baseline(text) for _ in range(3))
        print(f"\n{name}  (linear scan {base * 1000:.1f} ms)")
        for check, seconds in run_every_check(text).items():
            print(f"  {check:34} {seconds:8.3f} s  {seconds / base:8.1f} x")
            worst = max(worst, (seconds, f"{check} on {name}"))
    print(f"\nslowest: {worst[1]}, {worst[0]:.3f} s")
    words = adversarial("word ", size)
    for name, verifiers in (
        ("hedging", [HedgingVerifier()]),
        ("self_confidence", [SelfConfidenceVerifier()]),
    ):
        seconds = stream_seconds(words, verifiers)
        base = _baseline(words)
        print(f"streamed in 16-character pieces, {name}: {seconds:.3f} s  {seconds / base:.1f} x")


if __name__ == "__main__":
    main()
