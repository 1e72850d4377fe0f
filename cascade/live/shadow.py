"""A candidate cascade on a sample of live requests, in the background: both outcomes go to
the ledger (`shadows`), so a new config can be compared on real traffic before it serves
anyone. The candidate's answer is never returned."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from cascade.config.live import ShadowConfig
from cascade.core.errors import ExhaustedError
from cascade.core.redaction import redact
from cascade.core.values import Request, Result
from cascade.live.agreement import agree
from cascade.live.answer import answer
from cascade.live.background import Background, DailyBudget, has_room
from cascade.live.rows import Row, day_of, money, tags_json
from cascade.live.writer import LedgerWriter
from cascade.runtime.plan import CascadePlan

# what makes the candidate's plan for one request: the same response checks as the live one
Prepare = Callable[[CascadePlan], CascadePlan]


class ShadowRunner:
    def __init__(
        self,
        plan: CascadePlan,
        config: ShadowConfig,
        *,
        ledger: LedgerWriter,
        digest: str,
        budget: DailyBudget,
    ) -> None:
        self.plan, self.config, self.ledger, self.digest = plan, config, ledger, digest
        self.background = Background("shadow", max_in_flight=config.max_in_flight, budget=budget)
        self._random = random.Random(config.seed)

    def consider(self, request: Request, live: Result, prepare: Prepare) -> bool:
        """Run the candidate on `request` in the background if it is sampled."""
        if live.cache == "hit" or self._random.random() >= self.config.sample:
            return False
        plan = prepare(self.plan)
        if not has_room(plan, request):
            self.background.counts.skipped_busy += 1
            return False
        return self.background.start(self._shadow(plan, request, live))

    async def _shadow(self, plan: CascadePlan, request: Request, live: Result) -> None:
        error = None
        try:
            shadow = await answer(plan, request)
        except ExhaustedError as exc:
            shadow, error = exc.result, redact(str(exc))
        self.background.budget.spend(shadow.cost.total_usd)
        now = time.time()
        self.ledger.put(
            [
                Row.of(
                    "shadows",
                    request_id=live.request_id,
                    ts=now,
                    day=day_of(now),
                    candidate=self.digest,
                    live_tier=live.tier,
                    live_verified=live.verified,
                    live_usd=money(live.cost.total_usd),
                    shadow_tier=shadow.tier,
                    shadow_verified=shadow.verified,
                    shadow_usd=money(shadow.cost.total_usd),
                    agreed=agree(shadow, live) if error is None else None,
                    tags=tags_json(live.tags),
                    error=error,
                )
            ]
        )
