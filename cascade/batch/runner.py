"""A batch job: items from JSONL through the cascade, bounded in concurrency and memory,
durable at every finished item, with its output and review files written at the end."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.batch.items import Item, LineError, read_items
from cascade.batch.report import BatchReport, report_file
from cascade.batch.state import JobState, state_path, write_atomically
from cascade.config import CascadeConfig
from cascade.engine import Cascade
from cascade.errors import ConfigError, ExhaustedError
from cascade.limits import RateLimitedProvider
from cascade.logging import get_logger
from cascade.secrets import redact
from cascade.tiers import TierModel
from cascade.types import Result


@dataclass(frozen=True)
class BatchOptions:
    input: Path
    output: Path
    concurrency: int = 8
    max_cost_usd: Decimal | None = None
    review: Path | None = None  # default: OUTPUT with `.review.jsonl`
    record: Path | None = None  # also write the outcomes in the recorded-outcomes format
    # tier name -> (requests per minute, tokens per minute); overrides the config's
    rate_limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @property
    def review_path(self) -> Path:
        return self.review or self.output.with_name(self.output.stem + ".review.jsonl")

    def check(self) -> None:
        """Refuse paths that would lose data or fail only at the end: an output, review or
        record file that is the input, two of them the same file, or a folder that is missing."""
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if not self.input.is_file():
            raise ConfigError(f"--input {self.input}: no such file")
        written = [("--output", self.output), ("--review", self.review_path)]
        if self.record is not None:
            written.append(("--record", self.record))
        written.append(("state file", state_path(self.output)))
        for flag, path in written:
            if _same_file(path, self.input):
                raise ConfigError(f"{flag} {path} is the input file: it would be overwritten")
            if path.is_dir():
                raise ConfigError(f"{flag} {path} is a folder, not a file")
            if not path.parent.is_dir():
                raise ConfigError(f"{flag} {path}: no folder {path.parent} to write it in")
        for i, (flag, path) in enumerate(written):
            for other_flag, other in written[i + 1 :]:
                if _same_file(path, other):
                    raise ConfigError(f"{flag} and {other_flag} are the same file: {path}")


@dataclass(frozen=True)
class BatchOutcome:
    report: BatchReport
    output_lines: int
    review_lines: int
    skipped_done: int  # items finished by an earlier run, not sent again
    stopped_by_budget: bool
    not_started: int  # items left for a later run (budget)
    input_changed: bool = False  # the input is not the one the last run read (finished ids are kept)


# (non-blank input lines dealt with so far in this run, cost so far in this job): an item
# finished now or by an earlier run, an item left for later (budget), or a line in error.
Progress = Callable[[int, Decimal], None]
PROGRESS_EVERY = 100  # lines passed over without a call are reported in steps of this many
COUNT_BLOCK_BYTES = 1 << 20

WORKERS_PER_CALL = 4  # items in progress per call in flight: the others wait for a rate limit


async def run_batch(
    config: CascadeConfig,
    options: BatchOptions,
    *,
    base_dir: Path | None = None,
    total_hint: Callable[[int], None] | None = None,
    progress: Progress | None = None,
) -> BatchOutcome:
    """Run (or resume) the job, then write its output, review file, and report."""
    options.check()
    state = JobState(options.output, input_path=options.input, config_digest=_digest(config))
    if state.input_changed:
        get_logger().warning("input_changed", input=str(options.input), finished_ids="kept")
    try:
        if total_hint is not None:
            total_hint(_count_lines(options.input))
        cascade = _limited(Cascade.from_config(config, base_dir=base_dir), config, options)
        async with cascade:
            counts = await _run_items(cascade, state, options, progress)
        output_lines = write_atomically(options.output, state.output_records())
        review_lines = write_atomically(options.review_path, state.review_records())
        if options.record is not None:
            write_atomically(options.record, recorded_outcomes(state, options.input))
    finally:
        state.close()
    return BatchOutcome(
        report_file(options.output), output_lines, review_lines, **counts, input_changed=state.input_changed
    )


async def _run_items(
    cascade: Cascade, state: JobState, options: BatchOptions, progress: Progress | None
) -> dict[str, Any]:
    spent = state.spent()  # earlier runs of this job count against its budget
    handled = 0  # input lines dealt with in this run, for the progress bar
    # `concurrency` caps the CALLS in flight (the semaphore every model's limiter shares);
    # more items than that are in progress, so that those waiting for one tier's rate limit
    # leave calls to the other tiers. Memory stays bounded by the workers and the queue.
    workers = options.concurrency * WORKERS_PER_CALL
    queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=options.concurrency * 2)
    counts = {"skipped_done": 0, "stopped_by_budget": False, "not_started": 0}
    log = get_logger()

    def over_budget() -> bool:
        return options.max_cost_usd is not None and spent >= options.max_cost_usd

    def advance(every: int = 1) -> None:
        nonlocal handled
        handled += 1
        if progress is not None and handled % every == 0:
            progress(handled, spent)

    async def produce() -> None:
        for entry in read_items(options.input):
            if isinstance(entry, LineError):
                state.record_line_error(entry.line, entry.record())
                advance(PROGRESS_EVERY)
                continue
            status, first_line = state.claim(entry.key, entry.line)
            if status == "duplicate":
                message = f"line {entry.line}: duplicate id {entry.id!r} (first on line {first_line})"
                state.record_line_error(entry.line, LineError(entry.line, message, entry.id).record())
                advance(PROGRESS_EVERY)
            elif status == "done":
                counts["skipped_done"] += 1
                advance(PROGRESS_EVERY)
            elif over_budget():
                counts["stopped_by_budget"] = True
                counts["not_started"] += 1
                advance(PROGRESS_EVERY)
            else:
                state.flush()  # the claim is durable before the item can finish
                await queue.put(entry)
        state.flush()
        for _ in range(workers):
            await queue.put(None)

    async def work() -> None:
        nonlocal spent
        while (item := await queue.get()) is not None:
            if over_budget():  # reached while this item waited in the queue
                counts["stopped_by_budget"] = True
                counts["not_started"] += 1
                advance()
                continue
            result, error = await _answer(cascade, item)
            record = {"id": item.id, "line": item.line, "metadata": item.metadata, **result.to_dict()}
            if error:
                record["error"] = error
            state.finish(item.key, record, verified=result.verified, cost_usd=result.cost.total_usd)
            spent += result.cost.total_usd
            advance()
        log.debug("worker_done")

    await asyncio.gather(produce(), *(work() for _ in range(workers)))
    if progress is not None:
        progress(handled, spent)
    if counts["stopped_by_budget"]:
        log.warning("budget_reached", spent_usd=str(spent), not_started=counts["not_started"])
    return counts


async def _answer(cascade: Cascade, item: Item) -> tuple[Result, str | None]:
    """The item's result; a cascade that gives up still has a result (every attempt billed)."""
    try:
        return await cascade.arun(item.request), None
    except ExhaustedError as exc:
        return exc.result, str(exc)


def recorded_outcomes(state: JobState, source: Path) -> Iterator[str]:
    """The finished items as recorded outcomes (cascade.replay's format), for `eval` and
    `calibrate` once a person has marked answers `correct`: each model's last answer to
    each request, with its tokens, cost and latency. The input is read again, in order."""
    for entry in read_items(source):
        if not isinstance(entry, Item):
            continue
        record = state.record_of(entry.key, entry.line)
        if record is None:
            continue
        responses: dict[str, dict[str, Any]] = {}
        for attempt in record.get("attempts", []):
            if attempt.get("output") is None or attempt.get("outcome") == "error":
                continue
            responses[attempt["model"]] = {
                "text": attempt["output"],
                "input_tokens": attempt["input_tokens"],
                "output_tokens": attempt["output_tokens"],
                "cost_usd": attempt["cost_usd"],
                "latency_ms": round(attempt["latency_s"] * 1000, 1),
                "finish_reason": attempt.get("finish_reason"),
                "verified": attempt["outcome"] == "accepted",
            }
        if not responses:
            continue
        request = entry.request
        line: dict[str, Any] = {"id": entry.id}
        if request.system:
            line["system"] = request.system
        line["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        line["responses"] = responses
        if entry.metadata is not None:
            line["metadata"] = entry.metadata
        yield redact(json.dumps(line, ensure_ascii=False))  # requests too: a key pasted in a prompt


def _limited(cascade: Cascade, config: CascadeConfig, options: BatchOptions) -> Cascade:
    """The cascade with every model behind its rate limiter (config, then command line),
    all of them sharing one cap of `concurrency` calls in flight."""
    calls = asyncio.Semaphore(options.concurrency)
    tiers = []
    for tier, tier_config in zip(cascade.tiers, config.tiers, strict=True):
        models = []
        for model, model_config in zip(tier.models, [tier_config, *tier_config.alternates], strict=True):
            limits = model_config.rate_limit
            rpm, tpm = options.rate_limits.get(
                tier.name, (limits.requests_per_minute, limits.tokens_per_minute)
            )
            limited = RateLimitedProvider(
                model.provider,
                max_in_flight=options.concurrency,
                calls=calls,
                requests_per_minute=rpm,
                tokens_per_minute=tpm,
                output_guess=model.max_tokens,
            )
            models.append(TierModel(limited, model.price, model.retry, model.idle_timeout_s))
        tiers.append(replace(tier, models=tuple(models)))
    return cascade.with_tiers(tiers)


def _digest(config: CascadeConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def _count_lines(path: Path) -> int:
    """Non-blank lines of `path` (the progress bar's total), read in blocks of 1 MiB: memory
    stays bounded however long a line is."""
    count = 0
    open_line = False  # the block so far ends inside a line that is not blank
    with path.open("rb") as data:
        while block := data.read(COUNT_BLOCK_BYTES):
            pieces = block.split(b"\n")
            for piece in pieces[:-1]:  # each ends a line
                if open_line or piece.strip():
                    count += 1
                open_line = False
            open_line = open_line or bool(pieces[-1].strip())
    return count + open_line


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links), existing or not."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
        return a.resolve() == b.resolve()
    except OSError:
        return False
