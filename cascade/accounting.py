"""Prices and the arithmetic of money.

Prices come from a tier's `price:` in config, else from the genai-prices snapshot that
ships with that package (no network). Amounts are Decimal, quantized to 1e-12 USD per
call so that sums are exact and survive a trip through JSON.

The baseline is what the same request would have cost sent straight to the top tier:
the top tier's actual attempt when the cascade made one; otherwise the returned
answer's input and output token counts priced at the top tier's rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from genai_prices import Usage as _PricesUsage
from genai_prices import calc_price

from cascade.errors import ConfigError
from cascade.tokens import count_tokens
from cascade.types import Attempt, Outcome, Usage

QUANTUM = Decimal("1e-12")
_MTOK = Decimal(1_000_000)

# our provider names -> genai-prices provider ids
_PRICES_PROVIDER = {"openai": "openai", "anthropic": "anthropic"}


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
        ) / _MTOK
        return amount.quantize(QUANTUM)

    def describe(self) -> str:
        return f"${self.input_per_mtok}/${self.output_per_mtok} per Mtok (config)"


class CatalogPrice:
    """The list price of a model from the genai-prices snapshot.

    The model's plain per-token rates are looked up once; a call past `FLAT_UP_TO_TOKENS`
    input tokens, where providers' long-context tiers begin, is priced by genai-prices
    with its real usage, so tiered prices come out right without a lookup per call.
    """

    FLAT_UP_TO_TOKENS = 100_000

    def __init__(self, model: str, provider: str | None = None) -> None:
        self.model = model
        self.provider = provider
        # fails at configuration time, not on the first bill
        self._per_input = Decimal(self._calc(Usage(1_000, 0)).total_price) / 1_000
        self._per_output = Decimal(self._calc(Usage(0, 1_000)).total_price) / 1_000

    def __repr__(self) -> str:
        return f"CatalogPrice({self.model!r}, {self.provider!r})"

    def cost(self, usage: Usage) -> Decimal:
        if usage.input_tokens > self.FLAT_UP_TO_TOKENS:
            return Decimal(self._calc(usage).total_price).quantize(QUANTUM)
        amount = usage.input_tokens * self._per_input + usage.output_tokens * self._per_output
        return amount.quantize(QUANTUM)

    def describe(self) -> str:
        per_mtok_in = f"{(self._per_input * _MTOK).normalize():f}"
        per_mtok_out = f"{(self._per_output * _MTOK).normalize():f}"
        return f"${per_mtok_in}/${per_mtok_out} per Mtok (genai-prices)"

    def _calc(self, usage: Usage) -> Any:
        try:
            return calc_price(
                _PricesUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
                self.model,
                provider_id=_PRICES_PROVIDER.get(self.provider or ""),
            )
        except LookupError:
            raise ConfigError(
                f"no known price for model {self.model!r}; add `price: {{input_per_mtok: ..., "
                f"output_per_mtok: ...}}` to its tier (use 0 for a free local model)"
            ) from None


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
