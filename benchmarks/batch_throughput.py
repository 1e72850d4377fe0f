"""Throughput and memory of batch runs, against the raw `openai` SDK, in one run.

    python benchmarks/batch_throughput.py            # full: 100k-item memory run (minutes)
    python benchmarks/batch_throughput.py --quick    # smaller sizes
    python benchmarks/batch_throughput.py --memory-only --memory-sizes 10000,100000,1000000

A loopback fake provider answers at once. For concurrency 1, 16 and 128 it times the same
requests made (a) with the raw SDK (`AsyncOpenAI.chat.completions.create` under a
semaphore), (b) through the full engine (`Cascade.arun`, one tier, two verifiers:
non_empty and hedging) and (c) through a whole batch job (JSONL in, SQLite state, JSONL
out). It prints items per second (best of three for (a) and (b)) and the ratio to the
raw SDK (goal: the engine keeps at least 0.8 of it). The fake provider runs in the same
process, on the same two cores, as the client: the ratios compare like with like.
Then it runs `cascade batch` on 10k and 100k items (or --memory-sizes), each job a process
of its own measured from outside (VmHWM in /proc/PID/status), and prints its peak memory
and the ratio to the first size's (goal: flat up to 1M items), its items per second
(start-up included), and the size of its state on disk.
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
from dataclasses import dataclass
from pathlib import Path

import openai

from cascade import Cascade
from cascade.batch.report import report_file
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


SAMPLE_EVERY_S = 0.02


@dataclass(frozen=True)
class JobFigures:
    items: int
    peak_mib: float
    seconds: float
    state_mib: float  # the job's state on disk at the end, beside its output


def job_from_outside(server: FakeProviderServer, n: int, folder: Path) -> JobFigures:
    """`cascade batch` on `n` items, run as a process of its own and measured from outside:
    its peak RSS is the VmHWM of /proc/PID/status, sampled while it runs. (A child reading
    its own `ru_maxrss` counts what it inherited from its parent before exec: that measured
    this benchmark, not the job.)"""
    source = folder / f"mem-{n}.jsonl"
    output = folder / f"mem-{n}.out"
    config = folder / "mem.yaml"
    config.write_text(json.dumps(config_for(server)))  # JSON is YAML
    write_input(source, n)
    command = [sys.executable, "-m", "cascade.cli", "batch", str(config), "--input", str(source)]
    command += ["--output", str(output), "--concurrency", "64", "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hwm = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except OSError:  # gone between poll() and the read
            break
        if "VmHWM" in fields:  # not in a zombie's status
            hwm = max(hwm, int(fields["VmHWM"].split()[0]))
        time.sleep(SAMPLE_EVERY_S)
    seconds = time.perf_counter() - started
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the {n}-item job exited {proc.returncode}: {stderr[-2000:]}")
    items = report_file(output).items
    state = sum(p.stat().st_size for p in folder.glob(f"{output.name}.state.*"))  # records too
    for path in folder.glob(f"mem-{n}.*"):
        path.unlink()  # a million items take a gigabyte of disk
    return JobFigures(items, hwm / 1024, seconds, state / 2**20)


def sizes_arg(text: str) -> tuple[int, ...]:
    sizes = tuple(int(part.replace("_", "")) for part in text.split(","))
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of item counts, e.g. 10000,100000")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    parser.add_argument(
        "--memory-sizes",
        type=sizes_arg,
        help="item counts of the memory runs, the first the baseline "
        "(default 10000,100000; 2000,20000 with --quick; 10000,100000,1000000 for the full goal)",
    )
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput table")
    args = parser.parse_args()
    sizes = {1: 200, 16: 1000, 128: 2000} if args.quick else {1: 500, 16: 3000, 128: 5000}
    memory_sizes = args.memory_sizes or ((2_000, 20_000) if args.quick else (10_000, 100_000))
    with FakeProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.default = Reply.text("3 + 4 = 7.")
        folder = Path(tmp)
        if not args.memory_only:
            throughput_table(server, sizes, folder)
        print()
        header = ("batch items", "peak RSS MiB", "ratio", "seconds", "items/s", "state MiB")
        widths = (11, 12, 6, 8, 8, 9)
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
        baseline = None
        for n in memory_sizes:
            job = job_from_outside(server, n, folder)
            baseline = baseline or job
            row = (
                f"{job.items}",
                f"{job.peak_mib:.1f}",
                f"{job.peak_mib / baseline.peak_mib:.2f}",  # against the first size, in this run
                f"{job.seconds:.1f}",
                f"{job.items / job.seconds:.0f}",
                f"{job.state_mib:.1f}",
            )
            print(" ".join(f"{v:>{w}}" for v, w in zip(row, widths, strict=True)))


def throughput_table(server: FakeProviderServer, sizes: dict[int, int], folder: Path) -> None:
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


if __name__ == "__main__":
    main()
