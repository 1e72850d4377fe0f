"""Work done beside requests, never on their path: a daily budget and a bound on how many
such calls are in flight, shared by the audit and the shadow cascade."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cascade.core.values import ZERO
from cascade.live.rows import day_of
from cascade.logs import get_logger


class DailyBudget:
    """USD per UTC day. Work starts only while the day's spend is under the limit, so the
    day can end over it by what the calls already in flight cost, no more."""

    def __init__(self, limit: Decimal | None, spent_today: Decimal = ZERO) -> None:
        self.limit = limit
        self._day = day_of(time.time())
        self._spent = spent_today

    def allows(self) -> bool:
        self._roll()
        return self.limit is None or self._spent < self.limit

    def spend(self, usd: Decimal) -> None:
        self._roll()
        self._spent += usd

    @property
    def spent(self) -> Decimal:
        self._roll()
        return self._spent

    def _roll(self) -> None:
        today = day_of(time.time())
        if today != self._day:
            self._day, self._spent = today, ZERO


@dataclass
class BackgroundCounts:
    started: int = 0
    finished: int = 0
    skipped_busy: int = 0  # sampled, but `max_in_flight` were already running
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
