"""Throughput and memory of batch runs, against the raw `openai` SDK, in one run.

    python benchmarks/batch_throughput.py            # full: 100k-item memory run (minutes)
    python benchmarks/batch_throughput.py --quick    # smaller sizes

A loopback fake provider answers at once. For concurrency 1, 16 and 128 it times the same
requests made (a) with the raw SDK (`AsyncOpenAI.chat.completions.create` under a
semaphore), (b) through the full engine (`Cascade.arun`, one tier, two verifiers:
non_empty and hedging) and (c) through a whole batch job (JSONL in, SQLite state, JSONL
out). It prints items per second (best of three for (a) and (b)) and the ratio to the
raw SDK (goal: the engine keeps at least 0.8 of it). The fake provider runs in the same
process, on the same two cores, as the client: the ratios compare like with like.
Then it runs batch jobs of 10k and 100k items in fresh processes and prints their peak
memory (goal: flat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

from cascade import Cascade
from cascade.batch.runner import BatchOptions, run_batch
from cascade.config import parse_config
from cascade.testing.server import FakeProviderServer, Reply

os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-not-a-key")


def config_for(server: FakeProviderServer) -> dict[str, object]:
    return {
        "tiers": [
            {
                "name": "small",
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": server.openai_base_url,
            }
        ],
        "verifiers": [{"type": "non_empty"}, {"type": "hedging"}],
    }


async def raw_sdk(server: FakeProviderServer, n: int, concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"item {i}: 3 + 4?"}]
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await client.close()
    return n / elapsed


async def engine(server: FakeProviderServer, n: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with Cascade.from_config(parse_config(config_for(server))) as cascade:

        async def one(i: int) -> None:
            async with gate:
                result = await cascade.arun(f"item {i}: 3 + 4?")
                assert result.verified

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - started)


async def batch(server: FakeProviderServer, n: int, concurrency: int, folder: Path) -> float:
    source = folder / f"in-{n}-{concurrency}.jsonl"
    write_input(source, n)
    started = time.perf_counter()
    options = BatchOptions(source, folder / f"out-{n}-{concurrency}.jsonl", concurrency=concurrency)
    outcome = await run_batch(parse_config(config_for(server)), options)
    assert outcome.report.items == n
    return n / (time.perf_counter() - started)


def write_input(path: Path, n: int) -> None:
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"id": i, "prompt": f"item {i}: 3 + 4?"}) + "\n")


MEMORY_CHILD = """
import asyncio, json, resource, sys
from pathlib import Path
from cascade.batch.runner import BatchOptions, run_batch
from cascade.config import parse_config
config, source, output = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
outcome = asyncio.run(run_batch(parse_config(config), BatchOptions(source, output, concurrency=64)))
print(outcome.report.items, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(server: FakeProviderServer, n: int, folder: Path) -> tuple[int, float, float]:
    """(items, peak RSS in MiB, seconds) of a batch job of `n` items in a fresh process."""
    source = folder / f"mem-{n}.jsonl"
    write_input(source, n)
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            MEMORY_CHILD,
            json.dumps(config_for(server)),
            str(source),
            str(folder / f"mem-{n}.out"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    items, kib = proc.stdout.split()
    return int(items), int(kib) / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    args = parser.parse_args()
    sizes = {1: 200, 16: 1000, 128: 2000} if args.quick else {1: 500, 16: 3000, 128: 5000}
    memory_sizes = (2_000, 20_000) if args.quick else (10_000, 100_000)
    with FakeProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.default = Reply.text("3 + 4 = 7.")
        folder = Path(tmp)
        header = ("concurrency", "items", "raw SDK/s", "engine/s", "ratio", "batch/s", "ratio")
        widths = (11, 6, 10, 9, 6, 8, 6)
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
        for concurrency, n in sizes.items():
            asyncio.run(raw_sdk(server, 50, concurrency))  # warm up: imports, connections
            # best of three, interleaved, so that a noisy moment does not favour either side
            raw = full = job = 0.0
            for _ in range(3):
                raw = max(raw, asyncio.run(raw_sdk(server, n, concurrency)))
                full = max(full, asyncio.run(engine(server, n, concurrency)))
            job = asyncio.run(batch(server, n, concurrency, folder))
            row = (f"{concurrency}", f"{n}", f"{raw:.0f}", f"{full:.0f}", f"{full / raw:.2f}", f"{job:.0f}")
            print(" ".join(f"{v:>{w}}" for v, w in zip((*row, f"{job / raw:.2f}"), widths, strict=True)))
        print()
        print(f"{'batch items':>11} {'peak RSS MiB':>13} {'seconds':>8}")
        peaks = []
        for n in memory_sizes:
            items, mib, seconds = peak_memory(server, n, folder)
            peaks.append(mib)
            print(f"{items:>11} {mib:>13.1f} {seconds:>8.1f}")
        print(f"peak memory ratio, {memory_sizes[1]} vs {memory_sizes[0]} items: {peaks[1] / peaks[0]:.2f}")


if __name__ == "__main__":
    main()
