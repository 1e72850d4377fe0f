"""Prices and the arithmetic of money.

Prices come from a tier's `price:` in config, else from the genai-prices snapshot
(`cascade.providers.pricing`). Amounts are Decimal, quantized to 1e-12 USD per
call so that sums are exact and survive a trip through JSON.

The baseline is what the same request would have cost sent straight to the top tier:
the top tier's actual attempt when the cascade made one; otherwise the returned
answer's input and output token counts priced at the top tier's rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from cascade.core.tokens import count_tokens
from cascade.core.values import Attempt, Outcome, Usage

QUANTUM = Decimal("1e-12")
MTOK = Decimal(1_000_000)


class Pricing(Protocol):
    """Anything that can put a price on a call's usage."""

    def cost(self, usage: Usage) -> Decimal: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Price:
    """A flat price: USD per million input and output tokens (a tier's `price:` in config)."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal

    def cost(self, usage: Usage) -> Decimal:
        amount = (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        ) / MTOK
        return amount.quantize(QUANTUM)

    def describe(self) -> str:
        return f"${self.input_per_mtok}/${self.output_per_mtok} per Mtok (config)"


def baseline_cost(
    attempts: Sequence[Attempt],
    returned: int | None,
    top_tier: str,
    top_model: str,
    top_price: Pricing,
    request_text: str,
) -> Decimal:
    """What the request would have cost sent straight to the top tier's primary model.

    The cascade's own answered attempt on that model when there is one; otherwise the
    returned answer's tokens (or, with no answer, the request's estimated input tokens
    alone) at the top model's prices.
    """
    for attempt in attempts:
        answered = attempt.outcome in (Outcome.ACCEPTED, Outcome.REJECTED)
        if answered and attempt.tier == top_tier and attempt.model == top_model:
            return attempt.cost_usd
    if returned is not None:
        usage = attempts[returned].usage
        return top_price.cost(Usage(usage.input_tokens, usage.output_tokens, estimated=True))
    return top_price.cost(Usage(count_tokens(request_text, top_model), 0, estimated=True))
