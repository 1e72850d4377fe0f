"""The live quality loop around each request: the cache before it, and after it the
ledger row, the cache's store, the sampled audit and the shadow cascade.

The engine asks it three things: a cached answer for this request (`cached`), the plan
with any tier whose drift alarm is up taken out (`plan_for`, under `on_drift: tighten`),
and to take the finished result (`finished`). Little of it is I/O on the request's path:
a cache lookup (one SQLite read), and, at most once a second, the day's audit or shadow
spend read back from the ledger; rows are queued, and audits and shadows run in the
background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cascade.core.values import Request, Result
from cascade.live.audit import Auditor
from cascade.live.cache import AnswerCache
from cascade.live.rows import ledger_digest, result_rows
from cascade.live.shadow import Prepare, ShadowRunner
from cascade.live.writer import LedgerWriter
from cascade.logs import get_logger
from cascade.runtime.plan import CascadePlan


@dataclass
class LiveLoop:
    """What a config's `ledger`, `cache`, `audit` and `shadow` sections built."""

    digest: str  # the config's: ledger rows say which config answered, and it keys the cache
    ledger: LedgerWriter | None = None
    cache: AnswerCache | None = None
    auditor: Auditor | None = None
    shadow: ShadowRunner | None = None
    tighten: bool = False  # `on_drift: tighten`: a drifted tier answers no more

    def cached(
        self, key: str | None, plan: CascadePlan, *, request_id: str, tags: Mapping[str, str]
    ) -> Result | None:
        """The cache's answer, if one of `plan`'s tiers gave it (a tier taken out of service
        by a drift alarm does not answer from the cache either)."""
        if key is None or self.cache is None:
            return None
        hit = self.cache.get(key, request_id=request_id, tags=tags)
        return hit if hit is not None and hit.tier in plan.tier_rank else None

    def plan_for(self, plan: CascadePlan, tags: Mapping[str, str]) -> CascadePlan:
        """`plan` without the tiers whose alarm is up (for these tags); the top tier stays."""
        if not self.tighten or self.auditor is None:
            return plan
        auditor = self.auditor
        kept = [t for t in plan.tiers[:-1] if not auditor.drifted(t.name, tags)] + [plan.tiers[-1]]
        return plan if len(kept) == len(plan.tiers) else replace(plan, tiers=tuple(kept))

    def finished(
        self,
        plan: CascadePlan,
        request: Request,
        result: Result,
        *,
        latency_s: float,
        ts: float,
        key: str | None,
        prepare: Prepare,
    ) -> None:
        """Record `result` and start what follows from it; never raises into the request."""
        try:
            if self.ledger is not None:
                rows = result_rows(result, config=ledger_digest(self.digest), latency_s=latency_s, ts=ts)
                self.ledger.put(rows)
            if key is not None and self.cache is not None:
                self.cache.put(key, result)
            if self.auditor is not None:
                self.auditor.consider(plan, request, result, key)
            if self.shadow is not None:
                self.shadow.consider(request, result, prepare)
        except Exception as exc:  # the answer stands: what follows it is the loop's own business
            get_logger().error("live_loop_failed", error=f"{type(exc).__name__}: {exc}")

    def refuted(self, key: str | None) -> None:
        """An audit disagreed with the answer stored under `key`: it is served no more."""
        if key is not None and self.cache is not None:
            self.cache.evict(key)

    async def aclose(self) -> None:
        """Let the audits and shadows running now finish, then commit and close the files."""
        for runner in (self.auditor, self.shadow):
            if runner is not None:
                await runner.background.drain()
        for closing in (self.cache, self.ledger):
            if closing is not None:
                await asyncio.to_thread(closing.close)  # the writer's last commit: off the loop
