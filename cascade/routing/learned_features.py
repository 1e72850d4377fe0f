"""The learned router's features, of the request's text alone (`Request.text()`: the system
prompt, every message, the tool calls): its word unigrams and bigrams (`cascade.HashedNgrams`),
and a few numeric ones: its length in log chars, whether it holds code, how many messages
the conversation has, and its share of digits.
"""

from __future__ import annotations

import math
import re
from typing import Any

from cascade.core.hashed_text import HashedFeatures, HashedNgrams
from cascade.core.requests import Request

DEFAULT_BITS = 18
NUMERIC = ("log_chars", "code", "messages", "digits_share")
# what the features are; a file made with other settings is refused rather than misread
FEATURE_SETTINGS: dict[str, Any] = {
    **HashedNgrams.SETTINGS,
    "namespaces": ["request"],
    "text": "system, messages and tool calls (Request.text)",
    "numeric": list(NUMERIC),
}
# cheap marks of code: a fence, or a line that opens a definition, an import, an include
_CODE = re.compile(
    r"```|^[ \t]*(?:def |class |import |from \w[\w.]* import |#include\b|function\b|public |fn )",
    re.MULTILINE,
)

_REQUEST = HashedNgrams("request:")


def numeric_features(request: Request) -> dict[str, float]:
    """The numeric features of a request, by name."""
    text = request.text()
    window = HashedNgrams.window(text)
    return _numeric(text, window, HashedNgrams.tokens(text)[1], len(request.messages))


def _numeric(text: str, window: str, digits: int, messages: int) -> dict[str, float]:
    return {
        "log_chars": math.log1p(len(text)) / 10,
        "code": 1.0 if _CODE.search(window) else 0.0,
        "messages": math.log1p(messages) / 3,
        "digits_share": digits / len(window) if window else 0.0,
    }


def features(request: Request, bits: int = DEFAULT_BITS) -> HashedFeatures:
    """The hashed features of a request."""
    text = request.text()
    tokens, digits = HashedNgrams.tokens(text)
    numeric = _numeric(text, HashedNgrams.window(text), digits, len(request.messages))
    return (_REQUEST.group(tokens, bits), *(HashedNgrams.numeric(n, v, bits) for n, v in numeric.items()))
