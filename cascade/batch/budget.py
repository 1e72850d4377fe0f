"""The job budget as a ceiling: an item starts only once its worst case is reserved.

Checking what was spent before an item starts is not enough when many are in flight: 128
items started at once on the last dollar overshoot it 128 times. So each item reserves,
before it starts, what it could cost at most: every tier of the ladder answering at its
token limit, each reask with the conversation grown by an answer, and the verifiers' own
model calls. An item starts only when what was spent, plus the reservations of the items
in flight, plus its own, fits in the budget; when it finishes, its reservation gives way to
what it really cost.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

from cascade.core.tokens import most_tokens
from cascade.core.values import ZERO, Usage
from cascade.routing.start import worst_routing_usd
from cascade.verification.chain import prepare_request, worst_cost_usd

if TYPE_CHECKING:
    from cascade.core.values import Request
    from cascade.engine import Cascade

# output tokens reserved per call of a model whose params set no max_tokens (a guess: set
# max_tokens on every tier for a budget that is a hard ceiling)
UNCAPPED_OUTPUT_TOKENS = 4096
FEEDBACK_TOKENS = 200  # a reask's feedback message, on top of the rejected answer
MESSAGE_TOKENS = 8  # a provider counts what frames each message too


def uncapped_tiers(cascade: Cascade) -> list[str]:
    """Tiers with a model whose output has no limit in its params."""
    return [t.name for t in cascade.tiers if any(m.max_tokens is None for m in t.models)]


def worst_case_usd(cascade: Cascade, request: Request) -> Decimal:
    """The most `request` can cost through `cascade`: every tier tried, the dearest model of
    each answering (an alternate answers only when a call failed, and a failed call is not
    billed, but for a timeout's input), every reask used, each answer at its model's token
    limit, and the checks of each answer; and routing it (a classifier's calls, every retry)."""
    total = worst_routing_usd(cascade.plan.router, request)
    for tier in cascade.tiers:
        chain = cascade.plan.chain(tier.name)
        sent = prepare_request(chain, request)
        framing = MESSAGE_TOKENS * (len(sent.messages) + 1)
        dearest = ZERO
        for model in tier.models:
            output = model.max_tokens or UNCAPPED_OUTPUT_TOKENS
            asked = most_tokens(sent.text(), model.model) + framing
            cost = ZERO
            for reask in range(cascade.plan.max_reasks(tier.name) + 1):
                input_tokens = asked + reask * (output + FEEDBACK_TOKENS)
                cost += model.price.cost(Usage(input_tokens, output))
                cost += worst_cost_usd(chain, input_tokens, output, model.price)
            dearest = max(dearest, cost)
        total += dearest
    return total


class JobBudget:
    """What a job may still spend, shared by its workers. Without a limit every item fits."""

    def __init__(self, limit: Decimal | None, spent: Decimal) -> None:
        self.limit = limit
        self.spent = spent  # by every run of the job, the items in flight not included
        self.reserved = ZERO  # the worst cases of the items in flight
        self._freed = asyncio.Event()

    async def reserve(self, amount: Decimal | None) -> bool:
        """Reserve `amount` for an item about to start: at once when it fits; else once items
        in flight have finished and freed enough; False when it can never fit."""
        if self.limit is None or amount is None:
            return True
        while self.spent + self.reserved + amount > self.limit:
            if self.reserved == ZERO:  # nothing in flight will free any room
                return False
            self._freed.clear()
            await self._freed.wait()
        self.reserved += amount
        return True

    def settle(self, reserved: Decimal | None, cost: Decimal) -> None:
        """An item finished: its reservation gives way to what it cost."""
        self.spent += cost
        self.release(reserved)

    def release(self, reserved: Decimal | None) -> None:
        """An item's reservation is not needed any more (finished, or abandoned unrecorded)."""
        if reserved is not None and self.limit is not None:
            self.reserved -= reserved
        self._freed.set()
