"""The learned verifier's features (see `cascade_verifiers.learned`): word unigrams and
bigrams of the request and of the answer (separate namespaces; numbers read as one token),
and a few numeric ones (answer length in log chars and its power-of-two bucket, share of
digits, a final numeric answer such as `#### 42` or "the answer is 42", hedging weight from
the hedging lexicon), hashed into 2^bits buckets with zlib.crc32 (`cascade.HashedNgrams`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from cascade import HashedFeatures, HashedNgrams
from cascade_verifiers.hedging import HedgingVerifier

DEFAULT_BITS = 18
FINAL_ANSWER_WINDOW = 1_000  # a final answer is looked for in the last chars only
MAX_LENGTH_BUCKET = 20

_FINAL_ANSWER = re.compile(
    r"(?:####|\bthe\s+(?:final\s+)?answer\s+is\b:?|\banswer\s*:|\\boxed\{)[ \t*]*(?:\$[ \t]*)?-?\d",
    re.IGNORECASE,
)
NUMERIC = (
    "answer_log_chars",
    "answer_digits_share",
    "final_numeric_answer",
    "hedging_weight",
    "answer_length_bucket",
)
# what the features are; a file made with other settings is refused rather than misread
FEATURE_SETTINGS: dict[str, Any] = {
    **HashedNgrams.SETTINGS,
    "namespaces": ["request", "answer"],
    "numeric": list(NUMERIC),
}

# The features of one (request, answer) pair: the request's n-grams, the answer's n-grams,
# then each numeric feature alone.
Features = HashedFeatures

_REQUEST, _ANSWER = HashedNgrams("request:"), HashedNgrams("answer:")


@lru_cache(maxsize=64)
def _request_group(text: str, bits: int) -> tuple[float, tuple[int, ...]]:
    """Cached: every tier's answer to one request shares its request features."""
    return _REQUEST(text, bits)


@lru_cache(maxsize=1)
def _hedging_words() -> tuple[HedgingVerifier, tuple[frozenset[str], ...]]:
    """The hedging lexicon, and the words of each phrase: an answer that lacks some word of
    every phrase has no hedging, and the (slower) phrase search is skipped."""
    hedging = HedgingVerifier()
    return hedging, tuple(frozenset(HashedNgrams.tokens(phrase)[0]) for phrase in hedging.lexicon)


def _numeric(answer: str, words: Iterable[str], digits: int) -> dict[str, float]:
    window = HashedNgrams.window(answer)
    tail = window[-FINAL_ANSWER_WINDOW:]
    final = ("#" in tail or "answer" in tail.lower() or "boxed" in tail) and _FINAL_ANSWER.search(tail)
    hedging, phrases = _hedging_words()
    present = set(words)
    hedged = any(phrase <= present for phrase in phrases)
    bucket = min(len(answer).bit_length(), MAX_LENGTH_BUCKET)
    return {
        "answer_log_chars": math.log1p(len(answer)) / 10,
        "answer_digits_share": digits / len(window) if window else 0.0,
        "final_numeric_answer": 1.0 if final else 0.0,
        "hedging_weight": min(sum(hedging.find(window).values()), 5.0) if hedged else 0.0,
        f"answer_length_bucket_{bucket}": 1.0,
    }


def numeric_features(answer: str) -> dict[str, float]:
    """The numeric features of an answer, by name (the length bucket is named by its number)."""
    words, digits = HashedNgrams.tokens(answer)
    return _numeric(answer, words, digits)


def features(request: str, answer: str, bits: int = DEFAULT_BITS) -> Features:
    """The hashed features of one (request, answer) pair."""
    words, digits = HashedNgrams.tokens(answer)
    numeric = [
        HashedNgrams.numeric(name, value, bits) for name, value in _numeric(answer, words, digits).items()
    ]
    return (_request_group(request, bits), _ANSWER.group(words, bits), *numeric)
