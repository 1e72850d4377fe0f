"""List prices from the genai-prices snapshot that ships with that package (no network)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cascade.core.errors import ConfigError
from cascade.core.money import MTOK, QUANTUM
from cascade.core.values import Usage

# our provider names -> genai-prices provider ids
_PRICES_PROVIDER = {"openai": "openai", "anthropic": "anthropic"}


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
        per_mtok_in = f"{(self._per_input * MTOK).normalize():f}"
        per_mtok_out = f"{(self._per_output * MTOK).normalize():f}"
        return f"${per_mtok_in}/${per_mtok_out} per Mtok (genai-prices)"

    def _calc(self, usage: Usage) -> Any:
        # imported on first use: the snapshot takes a while to load, and `import cascade`
        # (or a config whose every tier has a `price:`) should not wait for it
        from genai_prices import Usage as _PricesUsage
        from genai_prices import calc_price

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
