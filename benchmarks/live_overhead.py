"""What a config's live sections (ledger, cache, audit) add to each request, and how big the
ledger grows.

    python benchmarks/live_overhead.py             # full run (about 5 minutes on a busy 2-core machine)
    python benchmarks/live_overhead.py --quick     # a smoke run: figures too noisy to judge by

Three cascades built from YAML configs, as a user builds them, talk to one loopback fake
server (OpenAI wire format) that answers at once. They share a 2-tier ladder (non_empty and
hedging verifiers) whose cheap tier answers and is accepted, and differ only in their live
sections:

- baseline: none;
- ledger+cache: `ledger` (SQLite) and `cache` (SQLite); every prompt is new, so every
  request is the cache's worst case: a lookup that misses, then a store. Each cache starts
  holding its default `max_entries` (100,000) answers, where a cache of ever-new prompts
  ends up and stays, so each store also evicts the oldest (`--cache-entries 0`: empty);
- ledger+cache+audit: the same plus `audit: {sample: 0.05}`, whose audits are real extra
  calls to the top tier, made in the background (shown as "extra calls").

They run in alternating short blocks (baseline, ledger+cache, ledger+cache+audit, baseline,
...) so that drift and noise from a busy machine hit all alike. Each block ends once the
audits it started have finished and the writers have committed its rows (ledger, cache),
so a block's figures hold all the work its requests caused.

What is counted: "CPU ms/req" is the whole process's CPU time (`time.process_time`, every
thread: the event loop's requests and audits, the writer threads) less the fake server's thread
(which stands for the remote provider and would not run in a real deployment), per
request. Of it, "writers" is the ledger's and cache's background threads. "added" is the
CPU per request over the baseline's, against the goal of under 10 %; on the audit row it
includes the audits' own calls (about `sample` x a request's work, by design).

The ledger's size: N results of a real request (1 attempt: the cheap tier accepted; 2
attempts: the cheap tier hedges, the top tier is accepted), each with its own request id,
written through the real writer into a fresh SQLite ledger, flushed and checkpointed; the
file's growth over an empty ledger, per result, gives bytes per million requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from cascade import Cascade
from cascade.config.build_live import ledger_writer
from cascade.config.live import CacheConfig, LedgerConfig
from cascade.core.values import Result
from cascade.live.rows import result_rows
from cascade.live.store import open_store
from cascade.testing.server import FakeProviderServer, RecordedRequest, Reply

KEY_ENV = "LIVE_OVERHEAD_API_KEY"
KEY = "sk-loopback-not-a-key"
CHEAP, HEDGES, TOP = "gpt-4o-mini", "gpt-4.1-nano", "gpt-4o"  # the server hedges only as HEDGES
ANSWER = Reply.text("3 + 4 = 7.")
HEDGE = Reply.text("I'm not sure, but it might be 7.")  # fails the hedging verifier
TAGS = {"feature": "faq", "team": "search"}  # every request carries a couple of tags, as in use
LADDER = (CHEAP, TOP)  # the cheap tier's answer is accepted; the audits ask TOP
CONCURRENCY = (1, 16, 128)
GOAL = 0.10  # the most CPU per request the live sections may add, as a share of the baseline's
AUDIT_SAMPLE = 0.05
MAX_ENTRIES = CacheConfig.model_fields["max_entries"].default  # the cache's default cap
WRITER_THREAD = "cascade-ledger"  # the name of the ledger's and the cache's writer threads


@dataclass(frozen=True)
class Side:
    name: str
    live: dict[str, Any]  # the config's live sections


SIDES = (
    Side("baseline", {}),
    Side("ledger+cache", {"ledger": {"path": "spend.sqlite"}, "cache": {"path": "cache.sqlite"}}),
    Side(
        "ledger+cache+audit",
        {
            "ledger": {"path": "spend.sqlite"},
            "cache": {"path": "cache.sqlite"},
            "audit": {"sample": AUDIT_SAMPLE, "seed": 1},
        },
    ),
)


@dataclass
class Tally:
    """Requests, wall and CPU seconds (the process's, the fake server's thread's, the
    writer threads') summed over one side's blocks, and the provider calls they made."""

    requests: int = 0
    calls: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    server_s: float = 0.0
    writers_s: float = 0.0

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.calls += other.calls
        self.wall_s += other.wall_s
        self.cpu_s += other.cpu_s
        self.server_s += other.server_s
        self.writers_s += other.writers_s

    @property
    def per_second(self) -> float:
        return self.requests / self.wall_s

    @property
    def cpu_ms(self) -> float:
        """The process's CPU per request, less the fake server's."""
        return 1000 * (self.cpu_s - self.server_s) / self.requests

    @property
    def writers_ms(self) -> float:
        return 1000 * self.writers_s / self.requests

    @property
    def server_ms(self) -> float:
        return 1000 * self.server_s / self.requests

    @property
    def extra_calls(self) -> float:
        """Provider calls beyond one per request, per 100 requests."""
        return 100 * (self.calls - self.requests) / self.requests


def thread_cpu(threads: list[threading.Thread]) -> float:
    """CPU seconds the `threads` (alive) have used so far."""
    return sum(time.clock_gettime(time.pthread_getcpuclockid(t.ident or 0)) for t in threads)


def named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def prompt(i: int) -> str:
    return f"item {i}: 3 + 4?"


def reply_for(request: RecordedRequest) -> Reply:
    return HEDGE if request.model == HEDGES else ANSWER


def write_config(
    server: FakeProviderServer, models: tuple[str, ...], live: dict[str, Any], folder: Path
) -> Path:
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
    # the ledger's and the cache's files in `folder` (their paths are the working directory's)
    files = {k: {**v, "path": str(folder / v["path"])} for k, v in live.items() if k in ("ledger", "cache")}
    config = {"tiers": tiers, "verifiers": [{"type": "non_empty"}, {"type": "hedging"}], **live, **files}
    folder.mkdir()
    path = folder / "cascade.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Runner:
    """One side's cascade, and the requests it has run."""

    side: Side
    engine: Cascade
    total: Tally = field(default_factory=Tally)

    async def settle(self) -> None:
        """Wait for the audits started so far, then for the writers to commit what they hold."""
        live = self.engine.live
        if live is None:
            return
        if live.auditor is not None:
            await live.auditor.background.drain()
        for writer in (live.ledger, live.cache.writer if live.cache is not None else None):
            if writer is not None and not writer.flush(timeout=60):
                raise SystemExit(f"{self.side.name}: the writer for {writer.where} did not catch up")

    async def block(
        self, server: FakeProviderServer, numbers: Iterator[int], n: int, concurrency: int
    ) -> Tally:
        """`n` requests, `concurrency` at a time, each a prompt never asked before."""
        server_thread, writers = named("FakeProviderServer"), named(WRITER_THREAD)
        left = iter(range(n))

        async def worker() -> None:
            for _ in left:
                result = await self.engine.arun(prompt(next(numbers)), tags=TAGS)
                if not result.verified or result.model != CHEAP or result.cache == "hit":
                    raise AssertionError(f"{self.side.name}: ended on {result.model} ({result.stop_reason})")

        server.reset()
        wall, cpu = time.perf_counter(), time.process_time()
        served, written = thread_cpu(server_thread), thread_cpu(writers)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await self.settle()
        done = Tally(
            requests=n,
            wall_s=time.perf_counter() - wall,
            cpu_s=time.process_time() - cpu,
            server_s=thread_cpu(server_thread) - served,
            writers_s=thread_cpu(writers) - written,
        )
        done.calls = len(server.requests)
        return done


HEADER = (
    "conc",
    "side",
    "req/s",
    "CPU ms/req",
    "writers",
    "server",
    "extra calls",
    "added",
    "goal",
    "met",
)
WIDTHS = (4, 18, 6, 10, 7, 6, 11, 7, 5, 3)


def line(cells: tuple[object, ...]) -> str:
    return "  ".join(
        f"{c!s:<{w}}" if i == 1 else f"{c!s:>{w}}" for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True))
    )


def row(concurrency: int, name: str, tally: Tally, baseline: Tally | None) -> str:
    if baseline is None:
        added, goal, met = "-", "-", "-"
    else:
        share = tally.cpu_ms / baseline.cpu_ms - 1
        added, goal, met = f"{share:+.1%}", f"<{GOAL:.0%}", "yes" if share < GOAL else "no"
    cells = (
        concurrency,
        name,
        f"{tally.per_second:.0f}",
        f"{tally.cpu_ms:.3f}",
        f"{tally.writers_ms:.3f}",
        f"{tally.server_ms:.3f}",
        f"{tally.extra_calls:.1f}%",
        added,
        goal,
        met,
    )
    return line(cells)


async def overhead(server: FakeProviderServer, folder: Path, quick: bool, cache_entries: int) -> None:
    # requests per block: short, so all sides see the same moments of a busy machine; in the
    # full run a few times the concurrency, so that a block's ragged end weighs little
    calls = {1: 4, 16: 16, 128: 128} if quick else {1: 100, 16: 320, 128: 640}
    blocks = 1 if quick else 10
    numbers = itertools.count()  # every prompt of the run is new: every cache lookup misses
    template = await filled_cache(server, folder / "template", cache_entries)
    print(
        f"every request a new prompt (cache miss + store); each cache starts with {cache_entries} "
        f"entries (max_entries {MAX_ENTRIES}); {blocks} timed block{'s' * (blocks > 1)} per side "
        "after a warm-up"
    )
    print(line(HEADER))
    for concurrency in CONCURRENCY:
        # fresh cascades and files at each level: every level starts from the same cache
        async with contextlib.AsyncExitStack() as stack:
            runners = await build(stack, server, folder / f"c{concurrency}", template)
            for r in runners:  # warm up: connection pools, lazy imports, the files' first pages
                await r.block(server, numbers, calls[concurrency], concurrency)
            for _ in range(blocks):
                for r in runners:
                    r.total.add(await r.block(server, numbers, calls[concurrency], concurrency))
            live = runners[-1].engine.live
            assert live is not None and live.auditor is not None
            counts = live.auditor.background.counts
        baseline = runners[0].total
        for r in runners:
            print(row(concurrency, r.side.name, r.total, None if r is runners[0] else baseline), flush=True)
        print(
            f"      audits: {counts.started} run, {counts.skipped_busy} sampled but skipped "
            f"(max_in_flight busy), {counts.failed} failed",
            flush=True,
        )


async def build(
    stack: contextlib.AsyncExitStack, server: FakeProviderServer, folder: Path, cache: Path
) -> list[Runner]:
    """The sides' cascades, built in `folder` (each cache a copy of `cache`), each closed
    (audits drained, files committed) when `stack` is."""
    folder.mkdir()
    runners = []
    for side in SIDES:
        path = write_config(server, LADDER, side.live, folder / side.name)
        if "cache" in side.live:
            shutil.copyfile(cache, path.parent / side.live["cache"]["path"])
        runners.append(Runner(side, await stack.enter_async_context(Cascade.from_config(path))))
    return runners


async def filled_cache(server: FakeProviderServer, folder: Path, entries: int) -> Path:
    """A cache file holding `entries` answers no request of the run will ask for: one real
    entry stored by a cascade, copied under random keys."""
    path = write_config(server, LADDER, {"cache": {"path": "cache.sqlite"}}, folder).parent / "cache.sqlite"
    async with Cascade.from_config(folder / "cascade.yaml") as engine:
        await engine.arun(prompt(-1), tags=TAGS)
    with contextlib.closing(sqlite3.connect(path)) as db:
        ((_, ts, value),) = db.execute("SELECT key, ts, value FROM answers").fetchall()
        with db:
            db.execute("DELETE FROM answers")
            db.executemany(
                "INSERT INTO answers (key, ts, value) VALUES (?, ?, ?)",
                ((os.urandom(32).hex(), ts, value) for _ in range(entries)),
            )
    return path


async def one_result(
    server: FakeProviderServer, folder: Path, models: tuple[str, ...], attempts: int
) -> Result:
    """A real request's result, with `attempts` attempts, from a cascade on `models`."""
    async with Cascade.from_config(write_config(server, models, {}, folder)) as engine:
        result = await engine.arun(prompt(0), tags=TAGS)
    if not result.verified or len(result.attempts) != attempts:
        raise AssertionError(f"{len(result.attempts)} attempts, not {attempts} ({result.stop_reason})")
    return result


def ledger_bytes(folder: Path, result: Result, n: int) -> tuple[int, int]:
    """(the bytes `n` copies of `result` add to an empty SQLite ledger once checkpointed, the
    WAL's size before the checkpoint), written through the real writer."""
    path = folder / "spend.sqlite"
    open_store(path=path).close()  # the empty ledger: its tables and indexes
    empty = files_size(path)
    writer = ledger_writer(LedgerConfig(path=str(path)))
    try:
        digest = "0" * 64  # as long as a config's digest
        rows = 0
        for i in range(n):
            copy = replace(result, request_id=uuid.uuid4().hex)
            batch = result_rows(copy, config=digest, latency_s=0.0123 + i * 1e-7, ts=time.time())
            rows += len(batch)
            writer.put(batch)
        if not writer.flush(timeout=120) or writer.counts.written != rows:
            raise SystemExit(f"the ledger writer wrote {writer.counts.written} of {rows} rows")
        wal = path.with_name(path.name + "-wal").stat().st_size
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        grown = files_size(path) - empty
    finally:
        writer.close()
    return grown, wal


def files_size(path: Path) -> int:
    """The database's size on disk with its write-ahead log."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


async def ledger_size(server: FakeProviderServer, folder: Path, quick: bool) -> None:
    n = 500 if quick else 20_000
    shapes = {1: LADDER, 2: (HEDGES, TOP)}  # attempts per request: the ladder that makes them
    for attempts, models in shapes.items():
        label = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        result = await one_result(server, folder / f"result-{attempts}", models, attempts)
        where = folder / f"ledger-{attempts}"
        where.mkdir()
        grown, wal = await asyncio.to_thread(ledger_bytes, where, result, n)
        print(
            f"ledger size, {label} per request: {grown / n:.0f} bytes/request = "
            f"{grown / n:.0f} MB per million requests ({n} results written, checkpointed; "
            f"the WAL held {wal / 1e6:.1f} MB before, bounded by the autocheckpoint)",
            flush=True,
        )


async def run(server: FakeProviderServer, folder: Path, quick: bool, cache_entries: int) -> None:
    await overhead(server, folder / "overhead", quick, cache_entries)
    print()
    (folder / "size").mkdir()
    await ledger_size(server, folder / "size", quick)
    if server.errors:
        raise SystemExit(f"the fake server failed:\n{server.errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small blocks, for a smoke run")
    parser.add_argument(
        "--cache-entries",
        type=int,
        help=f"answers each cache holds at the start (default: {MAX_ENTRIES}, its default cap, where "
        "a cache of ever-new prompts stays; 1000 with --quick)",
    )
    args = parser.parse_args()
    entries = args.cache_entries if args.cache_entries is not None else 1000 if args.quick else MAX_ENTRIES
    os.environ[KEY_ENV] = KEY
    with FakeProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.default = reply_for
        (Path(tmp) / "overhead").mkdir()
        asyncio.run(run(server, Path(tmp), args.quick, entries))


if __name__ == "__main__":
    main()
