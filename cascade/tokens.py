"""Token counts for when a provider does not report them.

The estimate is one token per four characters of text (rounded up), the rule of thumb
OpenAI and Anthropic both publish for English. Any count made here is flagged
`estimated` on the attempt that carries it.
"""

from __future__ import annotations

import math

from cascade.types import Usage

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def fill_usage(input_tokens: int | None, output_tokens: int | None, prompt: str, answer: str) -> Usage:
    """Usage from reported counts, estimating whichever part was not reported."""
    estimated = input_tokens is None or output_tokens is None
    return Usage(
        input_tokens if input_tokens is not None else estimate_tokens(prompt),
        output_tokens if output_tokens is not None else estimate_tokens(answer),
        estimated,
    )
