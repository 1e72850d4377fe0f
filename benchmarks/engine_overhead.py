"""The cascade's own overhead against the raw `openai` SDK, side by side in one process.

    python benchmarks/engine_overhead.py             # full run (minutes; more on a busy machine)
    python benchmarks/engine_overhead.py --quick     # a smoke run: figures too noisy to judge by
    python benchmarks/engine_overhead.py --profile   # also: where the cascade's own time goes

Both sides talk to the same loopback fake server (OpenAI wire format), which answers at
once, so what is left is client overhead. They run in alternating short blocks (raw SDK,
cascade, raw, cascade, ...) so that drift and noise from a busy machine hit both alike.

- one tier, two verifiers (non_empty, hedging), the answer accepted: each cascade request
  against one raw `chat.completions.create` call;
- escalation: the cheap model hedges, the second tier's answer is accepted: each cascade
  request against two raw calls made one after the other, as the cascade makes them.

The raw side is one `openai.AsyncOpenAI` reused throughout; the cascade is built from a YAML
config as a user builds it, so it has what users get (one SDK client per tier). Requests per
second count cascade requests (a pair of raw calls on the escalation path). CPU ms per request
come from `time.process_time`, which also counts the fake server's thread: that work is the
same on both sides, so the difference is the cascade's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import openai
import yaml

import cascade
from cascade import Cascade
from cascade.testing.server import FakeProviderServer, RecordedRequest, Reply

KEY_ENV = "ENGINE_OVERHEAD_API_KEY"
KEY = "sk-loopback-not-a-key"
ANSWERS, HEDGES = "gpt-4o-mini", "gpt-4.1-nano"  # the server's only two behaviours, by model
ANSWER = Reply.text("3 + 4 = 7.")
HEDGE = Reply.text("I'm not sure, but it might be 7.")  # fails the hedging verifier
CASCADE_DIR = str(Path(cascade.__file__).resolve().parent) + os.sep

Call = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    models: tuple[str, ...]  # the tiers' models, cheapest first; the last one answers
    concurrency: int
    goal: float | None  # the least ratio to the raw SDK the issue asks for, if any


SCENARIOS = [
    *(Scenario("one tier", (ANSWERS,), c, 0.9) for c in (1, 16, 128)),
    *(Scenario("escalation", (HEDGES, ANSWERS), c, 0.85 if c == 128 else None) for c in (1, 16, 128)),
]


@dataclass
class Tally:
    """Requests, wall and CPU seconds summed over one side's blocks."""

    requests: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def per_second(self) -> float:
        return self.requests / self.wall_s

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.requests


def prompt(i: int) -> str:
    return f"item {i}: 3 + 4?"


def reply_for(request: RecordedRequest) -> Reply:
    return HEDGE if request.model == HEDGES else ANSWER


def write_config(server: FakeProviderServer, models: tuple[str, ...], folder: Path) -> Path:
    tiers = [
        {
            "name": f"tier{i}",
            "provider": "openai",
            "model": m,
            "base_url": server.openai_base_url,
            "api_key_env": KEY_ENV,
        }
        for i, m in enumerate(models)
    ]
    config = {"tiers": tiers, "verifiers": [{"type": "non_empty"}, {"type": "hedging"}]}
    path = folder / f"{len(models)}-tiers.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def raw_call(client: openai.AsyncOpenAI, models: tuple[str, ...]) -> Call:
    async def one(i: int) -> None:
        for model in models:
            await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt(i)}]
            )

    return one


def cascade_call(engine: Cascade, answering_model: str) -> Call:
    async def one(i: int) -> None:
        result = await engine.arun(prompt(i))
        if not result.verified or result.model != answering_model:
            raise AssertionError(f"request {i} ended on {result.model} ({result.stop_reason})")

    return one


async def block(call: Call, n: int, concurrency: int) -> Tally:
    """`n` requests, `concurrency` at a time: each worker takes the next index until none is left."""
    indices = iter(range(n))

    async def worker() -> None:
        for i in indices:
            await call(i)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Tally(n, time.perf_counter() - wall, time.process_time() - cpu)


async def compare(
    server: FakeProviderServer, raw: Call, engine: Call, scenario: Scenario, n: int, blocks: int
) -> tuple[Tally, Tally]:
    sides = {"raw": (raw, Tally()), "cascade": (engine, Tally())}
    for call, _ in sides.values():  # warm up: connection pools, lazy imports, caches
        await block(call, n, scenario.concurrency)
    for _ in range(blocks):
        for call, total in sides.values():
            done = await block(call, n, scenario.concurrency)
            total.requests += done.requests
            total.wall_s += done.wall_s
            total.cpu_s += done.cpu_s
            server.reset()  # the server logs every request: keep that out of the next block
    return sides["raw"][1], sides["cascade"][1]


HEADER = (
    "scenario",
    "conc",
    "raw/s",
    "cascade/s",
    "ratio",
    "goal",
    "met",
    "raw CPU ms",
    "cascade CPU ms",
    "+CPU ms",
)
WIDTHS = (10, 4, 7, 9, 5, 5, 3, 10, 14, 7)


def row(scenario: Scenario, raw: Tally, engine: Tally) -> str:
    ratio = engine.per_second / raw.per_second
    goal, met = (
        ("-", "-")
        if scenario.goal is None
        else (f"{scenario.goal:.2f}", "yes" if ratio >= scenario.goal else "no")
    )
    cells = (
        scenario.name,
        scenario.concurrency,
        f"{raw.per_second:.0f}",
        f"{engine.per_second:.0f}",
        f"{ratio:.2f}",
        goal,
        met,
        f"{raw.cpu_ms:.2f}",
        f"{engine.cpu_ms:.2f}",
        f"{engine.cpu_ms - raw.cpu_ms:+.2f}",
    )
    return line(cells)


def line(cells: tuple[object, ...]) -> str:
    return "  ".join(
        f"{c!s:<{w}}" if i == 0 else f"{c!s:>{w}}" for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True))
    )


async def profile(call: Call, n: int, concurrency: int, top: int = 15) -> None:
    """Profile `n` cascade requests; print the `top` functions inside `cascade/` by self time
    (cProfile counts a coroutine's call once per resumption)."""
    profiler = cProfile.Profile()
    profiler.enable()
    await block(call, n, concurrency)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]  # documented, untyped
    total = sum(tt for _, _, tt, _, _ in stats.values())
    ours = sorted(
        ((tt, nc, ct, f) for f, (_, nc, tt, ct, _) in stats.items() if f[0].startswith(CASCADE_DIR)),
        reverse=True,
    )
    share = sum(tt for tt, *_ in ours) / total
    print(
        f"\nprofile: {n} cascade requests at concurrency {concurrency}, one tier; "
        f"self time inside cascade/: {share:.0%} of the main thread's"
    )
    print(f"{'self ms':>8} {'µs/call':>8} {'cum ms':>8} {'calls':>7}  function")
    for tt, calls, ct, (path, lineno, name) in ours[:top]:
        where = f"cascade/{path[len(CASCADE_DIR) :]}:{lineno}({name})"
        print(f"{1000 * tt:>8.1f} {1e6 * tt / calls:>8.1f} {1000 * ct:>8.1f} {calls:>7}  {where}")


async def run(server: FakeProviderServer, folder: Path, quick: bool, with_profile: bool) -> None:
    # raw calls per block (short, so both sides see the same moments of a busy machine),
    # in the full run a few times the concurrency, so that a block's ragged end weighs little
    calls = {1: 8, 16: 32, 128: 128} if quick else {1: 100, 16: 320, 128: 640}
    blocks = 1 if quick else 10
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0)
    engines = {
        models: Cascade.from_config(write_config(server, models, folder))
        for models in {s.models for s in SCENARIOS}
    }
    try:
        print(line(HEADER))
        for scenario in SCENARIOS:
            raw = raw_call(client, scenario.models)
            engine = cascade_call(engines[scenario.models], scenario.models[-1])
            n = max(calls[scenario.concurrency] // len(scenario.models), scenario.concurrency)
            print(row(scenario, *await compare(server, raw, engine, scenario, n, blocks)), flush=True)
        if with_profile:
            await profile(cascade_call(engines[(ANSWERS,)], ANSWERS), 300 if quick else 3000, 16)
    finally:
        await client.close()
        for built in engines.values():
            await built.aclose()
    if server.errors:
        raise SystemExit(f"the fake server failed:\n{server.errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small blocks, for a smoke run")
    parser.add_argument(
        "--profile", action="store_true", help="profile the cascade at concurrency 16, one tier"
    )
    args = parser.parse_args()
    os.environ[KEY_ENV] = KEY
    with FakeProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.default = reply_for
        asyncio.run(run(server, Path(tmp), args.quick, args.profile))


if __name__ == "__main__":
    main()
