"""The items of one run of a batch job, through the cascade by a pool of workers.

Three things stop new items from starting, each for good in this run: the budget (an item
whose worst case no longer fits), the same configuration failure (401, 403, 404, a missing
key) on one model for several items in a row, and SIGINT or SIGTERM. After a signal the
items in flight finish and are saved; a second signal abandons them (they are run again by
the next run, and what their calls cost is not counted: it was never recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cascade.batch.budget import JobBudget, worst_case_usd
from cascade.batch.items import EVERY_TIER, Item, LineError, Starts, read_items
from cascade.batch.report import BatchReport
from cascade.batch.state import JobState
from cascade.core.errors import CONFIGURATION_FAILURES, ExhaustedError
from cascade.core.values import Attempt, Outcome, Result
from cascade.engine import Cascade
from cascade.logs import get_logger
from cascade.providers.rate_limited import CALL_GUARD


@dataclass
class Tally:
    """How the run is going, for a progress bar. `handled` counts non-blank input lines dealt
    with in this run: an item answered now or `skipped` (finished by an earlier run), one left
    for later, or a line in error; `answered` holds the figures of the items answered in this
    run, counted as the job's report counts them."""

    handled: int = 0
    skipped: int = 0
    spent: Decimal = Decimal(0)  # in this job, earlier runs included
    answered: BatchReport = field(default_factory=BatchReport)


Progress = Callable[[Tally], None]
PROGRESS_EVERY = 100  # lines passed over without a call are reported in steps of this many
WORKERS_PER_CALL = 4  # items in progress per call in flight: the others wait for a rate limit


@dataclass
class RunCounts:
    """What became of this run's lines."""

    skipped_done: int = 0  # finished by an earlier run, not sent again
    not_started: int = 0  # left for a later run (budget, failures, a signal)
    abandoned: int = 0  # in flight at a second signal: run again next time
    stopped_by_budget: bool = False
    stopped_by_failures: str | None = None  # why, when the same configuration failure repeated
    interrupted: str | None = None  # the signal's name


class ConfigFailureWatch:
    """Notices a model failing the same way, for reasons no retry fixes, item after item.

    Per model, it counts the items in a row on which its calls failed with one code of
    `CONFIGURATION_FAILURES` and its tier gave no answer (an alternate that answered made up
    for it). An item on which the model answered ends the run; items that never called it
    do not count either way."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: never stop
        self.runs: dict[tuple[str, str], tuple[int, str]] = {}  # (model, code) -> (items, message)

    def saw(self, attempts: tuple[Attempt, ...]) -> str | None:
        """Take in one finished item; why to stop the job, once a run reaches the limit."""
        answered_tiers = {a.tier for a in attempts if a.outcome is not Outcome.ERROR}
        failed = {
            (a.model, a.error_code): a.error or a.error_code
            for a in attempts
            if a.outcome is Outcome.ERROR
            and a.error_code in CONFIGURATION_FAILURES
            and a.tier not in answered_tiers
        }
        called = {a.model for a in attempts}
        for key in [k for k in self.runs if k[0] in called and k not in failed]:
            del self.runs[key]
        for key, message in failed.items():
            self.runs[key] = (self.runs.get(key, (0, ""))[0] + 1, message or "")
        for (model, code), (items, message) in self.runs.items():
            if self.limit and items >= self.limit:
                return (
                    f"{model} failed with {code} on {items} items in a row ({message}); no retry fixes "
                    "that: fix the key, the model name or the permissions, then run the same command "
                    "again (with --retry-failed to redo the items left without any answer)"
                )
        return None


class Job:
    """One run over the input: a producer reading it, workers answering the items."""

    def __init__(
        self,
        cascade: Cascade,
        state: JobState,
        *,
        concurrency: int,
        budget: JobBudget,
        watch: ConfigFailureWatch,
        progress: Progress | None,
        tags: Mapping[str, str] | None = None,
        cache: bool = True,
        starts: Starts = EVERY_TIER,
    ) -> None:
        self.cascade = cascade
        self.tags, self.cache, self.starts = dict(tags or {}), cache, starts
        self.state = state
        self.concurrency = concurrency
        self.budget = budget
        self.watch = watch
        self.progress = progress
        self.counts = RunCounts()
        self.tally = Tally(spent=budget.spent)
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: Exception | None = None
        self._log = get_logger()

    @property
    def stopping(self) -> bool:
        c = self.counts
        return c.stopped_by_budget or c.stopped_by_failures is not None or c.interrupted is not None

    def interrupt(self, name: str) -> None:
        """A signal: start no more items; at the second, abandon those in flight."""
        if self.counts.interrupted is not None:
            self._log.warning("abandoning_items_in_flight", signal=name)
            for task in self._tasks:
                task.cancel()
            return
        self.counts.interrupted = name
        self._log.warning("interrupted", signal=name, then="finishing the items in flight")

    async def run(self, input_path: Any) -> RunCounts:
        # `concurrency` caps the CALLS in flight (the semaphore every model's limiter
        # shares); more items than that are in progress, so that those waiting for one
        # tier's rate limit leave calls to the other tiers. Memory stays bounded by the
        # workers and the queue.
        workers = self.concurrency * WORKERS_PER_CALL
        queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=self.concurrency * 2)
        self._tasks = [asyncio.create_task(self._failing_all(self._produce, input_path, queue, workers))]
        self._tasks += [asyncio.create_task(self._failing_all(self._work, queue)) for _ in range(workers)]
        with _signals_to(self.interrupt):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._failure is not None:
            raise self._failure
        if self.progress is not None:
            self.tally.spent = self.budget.spent
            self.progress(self.tally)
        if self.counts.stopped_by_budget:
            self._log.warning(
                "budget_reached", spent_usd=str(self.budget.spent), not_started=self.counts.not_started
            )
        return self.counts

    async def _failing_all(self, part: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run one task of the pool; if it fails (the state cannot be written: a full disk),
        the others stop too, and the run fails with that error: none is left waiting for
        work that will never come."""
        try:
            await part(*args)
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
                for task in self._tasks:
                    task.cancel()
            raise

    def _first_call_guard(self) -> Callable[[], None]:
        """What the limiters run before each call of one item: once the job is stopping,
        an item that has not called anything yet does not start (items waiting for a call
        slot would otherwise start after a signal); one already under way goes on."""
        called = False

        def guard() -> None:
            nonlocal called
            if not called and self.stopping:
                raise _NotStarted
            called = True

        return guard

    def _advance(self, every: int = 1) -> None:
        self.tally.handled += 1
        if self.progress is not None and self.tally.handled % every == 0:
            self.tally.spent = self.budget.spent
            self.progress(self.tally)

    async def _produce(self, input_path: Any, queue: asyncio.Queue[Item | None], workers: int) -> None:
        state = self.state
        for entry in read_items(input_path):
            if isinstance(entry, Item):
                entry = self.starts.checked(entry, list(self.cascade.plan.tier_rank))
            if isinstance(entry, LineError):
                state.record_line_error(entry.line, entry.record())
                self._advance(PROGRESS_EVERY)
                continue
            status, first_line = state.claim(entry.key, entry.line)
            if status == "duplicate":
                message = f"line {entry.line}: duplicate id {entry.id!r} (first on line {first_line})"
                state.record_line_error(entry.line, LineError(entry.line, message, entry.id).record())
                self._advance(PROGRESS_EVERY)
            elif status == "done":
                self.counts.skipped_done += 1
                self.tally.skipped += 1
                self._advance(PROGRESS_EVERY)
            elif self.stopping:
                self.counts.not_started += 1
                self._advance(PROGRESS_EVERY)
            else:
                await queue.put(entry)
        state.flush()
        for _ in range(workers):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[Item | None]) -> None:
        while (item := await queue.get()) is not None:
            reserved = worst_case_usd(self.cascade, item.request) if self.budget.limit is not None else None
            if not await self._reserve(reserved):
                self._not_started()
                continue
            token = CALL_GUARD.set(self._first_call_guard())
            try:
                result, error = await self._answer(item)
            except _NotStarted:  # a stop came before its first call went out: nothing was spent
                self.budget.release(reserved)
                self._not_started()
                continue
            except asyncio.CancelledError:
                self.budget.release(reserved)
                self.counts.abandoned += 1
                raise
            finally:
                CALL_GUARD.reset(token)
            record = {"id": item.id, "line": item.line, "metadata": item.metadata, **result.to_dict()}
            if error:
                record["error"] = error
            self.state.finish(item.key, record, verified=result.verified, cost_usd=result.cost.total_usd)
            self.budget.settle(reserved, result.cost.total_usd)
            self.tally.answered.add(record)
            stop = self.watch.saw(result.attempts)
            if stop is not None and self.counts.stopped_by_failures is None:
                self.counts.stopped_by_failures = stop
                self._log.error("stopping_job", reason=stop)
            self._advance()

    async def _reserve(self, reserved: Decimal | None) -> bool:
        """Whether an item may start, its worst case reserved: not once the job is stopping
        (a stop may come while it waits for room), nor when its worst case does not fit."""
        if self.stopping:
            return False
        if not await self.budget.reserve(reserved):
            self.counts.stopped_by_budget |= not self.stopping
            return False
        if self.stopping:
            self.budget.release(reserved)
            return False
        return True

    async def _answer(self, item: Item) -> tuple[Result, str | None]:
        """The item's result; a cascade that gives up still has a result (every attempt billed)."""
        try:
            tags = {**self.tags, **item.tags}
            min_tier, start_tier = self.starts.of(item)
            result = await self.cascade.arun(
                item.request, tags=tags, cache=self.cache, min_tier=min_tier, start_tier=start_tier
            )
            return result, None
        except ExhaustedError as exc:
            return exc.result, str(exc)

    def _not_started(self) -> None:
        self.counts.not_started += 1
        self._advance()


class _NotStarted(BaseException):
    """An item stopped before its first call: not an error of the item (the cascade's own
    handlers, which catch Exception, let it through)."""


@contextlib.contextmanager
def _signals_to(handler: Callable[[str], None]) -> Any:
    """SIGINT and SIGTERM call `handler(name)` while the block runs (in the main thread; a
    job run from another thread keeps the process's own handling)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig.name)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
