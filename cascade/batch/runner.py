"""A batch job: items from JSONL through the cascade, bounded in concurrency and memory,
durable at every finished item, with its output and review files written at the end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.batch.budget import JobBudget, uncapped_tiers
from cascade.batch.files import write_atomically
from cascade.batch.items import EVERY_TIER, Item, Starts, read_items
from cascade.batch.job import ConfigFailureWatch, Job, Progress, RunCounts
from cascade.batch.records import records_path
from cascade.batch.report import BatchReport, report_file, report_lines
from cascade.batch.state import JobState, state_path
from cascade.config import CascadeConfig
from cascade.config.digest import config_digest
from cascade.core.errors import ConfigError
from cascade.core.recorded import recorded_request, recorded_response
from cascade.core.redaction import redact
from cascade.engine import Cascade
from cascade.logs import get_logger
from cascade.providers.rate_limited import RateLimitedProvider, server_of, unlimited
from cascade.routing.start import wrap_router_models
from cascade.runtime.ladder import TierModel
from cascade.verification.chain import wrap_models


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
    allow_config_change: bool = False  # resume a job whose config changed, keeping its items
    retry_failed: bool = False  # run again the finished items that got no answer
    retry_unverified: bool = False  # ... and those whose answer is not verified
    max_config_failures: int = 5  # stop once one 401/403/404/missing key hits this many in a row
    tags: dict[str, str] = field(default_factory=dict)  # of every item; a line's own tags win
    cache: bool = True  # ask (and fill) the config's cache of verified answers
    starts: Starts = EVERY_TIER  # where every item starts (`--min-tier`, `--start-tier`); a line's own win

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
        written.append(("records file", records_path(state_path(self.output))))
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
    output_lines: int  # 0 when interrupted: the output is written only by a run that ends
    review_lines: int
    counts: RunCounts
    input_changed: bool = False  # the input is not the one the last run read (finished ids are kept)
    configs: dict[str, int] = field(default_factory=dict)  # finished items by config digest
    config: str = ""  # the digest of this run's config
    uncapped_tiers: tuple[str, ...] = ()  # tiers whose output the budget had to guess

    @property
    def skipped_done(self) -> int:
        return self.counts.skipped_done

    @property
    def stopped_by_budget(self) -> bool:
        return self.counts.stopped_by_budget

    @property
    def not_started(self) -> int:
        return self.counts.not_started


COUNT_BLOCK_BYTES = 1 << 20


async def run_batch(
    config: CascadeConfig,
    options: BatchOptions,
    *,
    base_dir: Path | None = None,
    total_hint: Callable[[int], None] | None = None,
    progress: Progress | None = None,
) -> BatchOutcome:
    """Run (or resume) the job, then write its output, review file, and report (an
    interrupted run writes none of them: its items are saved, and the next run resumes)."""
    options.check()
    digest = config_digest(config, base_dir)
    state = JobState(
        options.output,
        input_path=options.input,
        config_digest=digest,
        allow_config_change=options.allow_config_change,
        retry_failed=options.retry_failed,
        retry_unverified=options.retry_unverified,
    )
    if state.input_changed:
        get_logger().warning("input_changed", input=str(options.input), finished_ids="kept")
    try:
        if total_hint is not None:
            total_hint(_count_lines(options.input))
        cascade = _limited(Cascade.from_config(config, base_dir=base_dir), options)
        uncapped = tuple(uncapped_tiers(cascade)) if options.max_cost_usd is not None else ()
        job = Job(
            cascade,
            state,
            concurrency=options.concurrency,
            budget=JobBudget(options.max_cost_usd, state.spent()),  # earlier runs count against it
            watch=ConfigFailureWatch(options.max_config_failures),
            progress=progress,
            tags=options.tags,
            cache=options.cache,
            starts=options.starts,
        )
        async with cascade:
            counts = await job.run(options.input)
        if counts.interrupted:
            report = report_lines(state.output_records())
            output_lines = review_lines = 0
        else:
            output_lines = write_atomically(options.output, state.output_records())
            review_lines = write_atomically(options.review_path, state.review_records())
            if options.record is not None:
                write_atomically(options.record, recorded_outcomes(state, options.input))
            report = report_file(options.output)
        configs = state.configs()
    finally:
        state.close()
    return BatchOutcome(
        report, output_lines, review_lines, counts, state.input_changed, configs, digest, uncapped
    )


def recorded_outcomes(state: JobState, source: Path) -> Iterator[str]:
    """The finished items as recorded outcomes (cascade.providers.replay's format), for `eval` and
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
            responses[attempt["model"]] = recorded_response(attempt)
        if not responses:
            continue
        line = recorded_request(entry.request, entry.id)
        line["responses"] = responses
        if entry.metadata is not None:
            line["metadata"] = entry.metadata
        yield redact(json.dumps(line, ensure_ascii=False))  # requests too: a key pasted in a prompt


def _limited(cascade: Cascade, options: BatchOptions) -> Cascade:
    """The cascade with every model behind its rate limiter (config, then command line),
    the verifiers' own models (a judge) too, all of them sharing one cap of `concurrency`
    calls in flight. One limiter per model and server: a judge on a tier's model shares the
    tier's limits."""
    calls = asyncio.Semaphore(options.concurrency)
    limiters: dict[tuple[str, str, str], RateLimitedProvider] = {}

    def limit(model: TierModel, tier: str | None = None) -> TierModel:
        provider = unlimited(model.provider)  # this job's limiter stands in for the config's
        key = (type(provider).__name__, server_of(provider), model.model)
        shared = limiters.get(key)
        if shared is None:
            rpm, tpm = model.rate_limit.requests_per_minute, model.rate_limit.tokens_per_minute
            rpm, tpm = options.rate_limits.get(tier or "", (rpm, tpm))
            shared = limiters[key] = RateLimitedProvider(
                provider,
                max_in_flight=options.concurrency,
                calls=calls,
                requests_per_minute=rpm,
                tokens_per_minute=tpm,
                output_guess=model.max_tokens,
            )
        return replace(model, provider=shared.sharing_with(provider))

    limited = cascade.with_tiers(
        [replace(tier, models=tuple(limit(m, tier.name) for m in tier.models)) for tier in cascade.tiers]
    )
    wrap_models(limited.plan.all_verifiers(), limit)  # each verifier once, whatever chains share it
    wrap_router_models(limited.plan.router, limit)  # a classifier shares its server's limits too
    return limited


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
