"""Work done beside requests, never on their path: a daily budget and a bound on how many
such calls are in flight, shared by the audit and the shadow cascade."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cascade.core.values import ZERO, Request
from cascade.live.rows import day_of
from cascade.logs import get_logger
from cascade.runtime.plan import CascadePlan

REREAD_S = 1.0  # a ledger-backed budget reads the day's spend again at most this often


class DailyBudget:
    """USD per UTC day. Work starts only while the day's spend is under the limit, so the
    day can end over it by what the calls already in flight cost, no more.

    With `ledger` (the day's spend recorded there since a time: every process on the ledger
    counts), the spend is the ledger's, read again at most every REREAD_S, plus what this
    process spent since that read: processes sharing a ledger share the budget, and a
    restart does not begin the day again."""

    def __init__(self, limit: Decimal | None, ledger: Callable[[float], float] | None = None) -> None:
        self.limit = limit
        self.ledger = ledger
        self._day = day_of(time.time())
        self._recorded = ZERO  # the ledger's figure at its last read
        self._since = ZERO  # spent here since then
        self._read_at = -math.inf
        self._unreadable = False

    def allows(self) -> bool:
        if self.limit is None:
            return True
        return self.spent < self.limit

    def spend(self, usd: Decimal) -> None:
        self._roll()
        self._since += usd

    @property
    def spent(self) -> Decimal:
        self._roll()
        if self.ledger is not None and time.monotonic() - self._read_at >= REREAD_S:
            self._read_at = time.monotonic()
            try:
                # what this process spent in the last moment may not be committed yet: the
                # figure can lag by one writer batch (LINGER_S), no more
                self._recorded, self._since = Decimal(str(self.ledger(_midnight()))), ZERO
                self._unreadable = False
            except Exception as exc:  # a ledger that cannot be read: count on what was spent here
                if not self._unreadable:  # said once, not every second
                    get_logger().warning("budget_unreadable", error=f"{type(exc).__name__}: {exc}")
                self._unreadable = True
        return self._recorded + self._since

    def _roll(self) -> None:
        today = day_of(time.time())
        if today != self._day:
            self._day, self._recorded, self._since = today, ZERO, ZERO
            self._read_at = -math.inf


def _midnight() -> float:
    """The start of the UTC day, as a Unix time."""
    now = time.time()
    return now - now % 86_400


def has_room(plan: CascadePlan, request: Request) -> bool:
    """Has the first model `plan` calls spare room under its rate limits (a model without
    limits always has)? Work beside the live requests goes only then: it never makes one
    of them wait behind it."""
    provider = plan.tiers[0].models[0].provider
    spare = getattr(provider, "has_spare", None)
    return not callable(spare) or bool(spare(request))


@dataclass
class BackgroundCounts:
    started: int = 0
    finished: int = 0
    skipped_busy: int = 0  # sampled, but `max_in_flight` were running, or the limits had no room
    skipped_budget: int = 0  # sampled, but the day's budget was spent
    failed: int = 0


class Background:
    """Tasks off the request's path, at most `max_in_flight` at once; `drain` awaits them."""

    def __init__(self, name: str, *, max_in_flight: int, budget: DailyBudget) -> None:
        self.name = name
        self.max_in_flight = max_in_flight
        self.budget = budget
        self.counts = BackgroundCounts()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` in the background when there is room and budget; False (and `work`
        closed unstarted) when not."""
        if len(self._tasks) >= self.max_in_flight:
            self.counts.skipped_busy += 1
            work.close()
            return False
        if not self.budget.allows():
            self.counts.skipped_budget += 1
            work.close()
            return False
        task = asyncio.get_running_loop().create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.counts.started += 1
        return True

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:  # a failure beside a request is logged, never raised into it
            self.counts.failed += 1
            get_logger().warning(f"{self.name}_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.counts.finished += 1

    async def drain(self) -> None:
        """Wait for the tasks running now (closing a cascade lets its audits finish)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
