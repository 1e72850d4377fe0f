"""The learned verifier's features (see `cascade_verifiers.learned`): word unigrams and
bigrams of the request and of the answer (separate namespaces; numbers read as one token),
and a few numeric ones (answer length in log chars and its power-of-two bucket, share of
digits, a final numeric answer such as `#### 42` or "the answer is 42", hedging weight from
the hedging lexicon), hashed into 2^bits buckets with zlib.crc32.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable
from functools import lru_cache
from itertools import pairwise
from typing import Any

from cascade_verifiers.hedging import HedgingVerifier

DEFAULT_BITS = 18
HEAD_CHARS, TAIL_CHARS = 16_000, 4_000  # a longer text is read as its head and its tail
FINAL_ANSWER_WINDOW = 1_000  # a final answer is looked for in the last chars only
MAX_LENGTH_BUCKET = 20

_WORD = re.compile(r"[^\W\d_]+|\d+")
_NUMBER = re.compile(r"\d+")
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
    "hash": "crc32",
    "ngrams": [1, 2],
    "namespaces": ["request", "answer"],
    "tokens": "lowercased words, every number as one token",
    "values": "binary n-grams scaled by 1/sqrt(distinct n-grams) per namespace",
    "numeric": list(NUMERIC),
    "max_chars": HEAD_CHARS + TAIL_CHARS,
}
# a unigram's bucket: crc32(token, namespace seed) mod 2^bits; a bigram's:
# (crc(first) * M + crc(second)) mod 2^bits
_BIGRAM_MULTIPLIER = 0x9E3779B1


def _seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


_REQUEST_SEED, _ANSWER_SEED = _seed("request:"), _seed("answer:")


# The features of one (request, answer) pair, as groups of buckets sharing a value: the
# request's n-grams, the answer's n-grams, then each numeric feature alone. A bucket in two
# groups counts twice (hash collisions add up).
Features = tuple[tuple[float, tuple[int, ...]], ...]


class _TokenHashes:
    """crc32 of each token in one namespace, remembered (bounded) so repeated words cost a lookup."""

    LIMIT = 200_000

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.known: dict[str, int] = {}

    def __call__(self, tokens: Iterable[str]) -> list[int]:
        known, hashes = self.known, []
        for token in tokens:
            value = known.get(token)
            if value is None:
                if len(known) >= self.LIMIT:
                    known.clear()
                value = known[token] = zlib.crc32(token.encode("utf-8", "surrogatepass"), self.seed)
            hashes.append(value)
        return hashes


_REQUEST_HASHES, _ANSWER_HASHES = _TokenHashes(_REQUEST_SEED), _TokenHashes(_ANSWER_SEED)


def _window(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def _ngram_group(tokens: list[str], hashes: _TokenHashes, mask: int) -> tuple[float, tuple[int, ...]]:
    """A namespace's distinct unigram and bigram buckets, valued 1/sqrt(how many there are)."""
    unigrams = hashes(tokens)
    buckets = {h & mask for h in unigrams}
    buckets.update({(first * _BIGRAM_MULTIPLIER + second) & mask for first, second in pairwise(unigrams)})
    return (1.0 / math.sqrt(len(buckets)) if buckets else 0.0), tuple(buckets)


def _tokens(text: str) -> tuple[list[str], int]:
    """The lowercased words of `text` (its window), every number as the token "0", and how
    many digits the window holds."""
    window = _window(text)
    numbered, runs = _NUMBER.subn("0", window)
    return _WORD.findall(numbered.lower()), len(window) - len(numbered) + runs


@lru_cache(maxsize=64)
def _request_group(text: str, bits: int) -> tuple[float, tuple[int, ...]]:
    """Cached: every tier's answer to one request shares its request features."""
    return _ngram_group(_tokens(text)[0], _REQUEST_HASHES, (1 << bits) - 1)


@lru_cache(maxsize=1)
def _hedging_words() -> tuple[HedgingVerifier, tuple[frozenset[str], ...]]:
    """The hedging lexicon, and the words of each phrase: an answer that lacks some word of
    every phrase has no hedging, and the (slower) phrase search is skipped."""
    hedging = HedgingVerifier()
    return hedging, tuple(frozenset(_WORD.findall(phrase)) for phrase in hedging.lexicon)


def _numeric(answer: str, words: Iterable[str], digits: int) -> dict[str, float]:
    window = _window(answer)
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
    words, digits = _tokens(answer)
    return _numeric(answer, words, digits)


@lru_cache(maxsize=512)
def _numeric_bucket(name: str, bits: int) -> tuple[int, ...]:
    return (_seed("numeric:" + name) & ((1 << bits) - 1),)


def features(request: str, answer: str, bits: int = DEFAULT_BITS) -> Features:
    """The hashed features of one (request, answer) pair."""
    words, digits = _tokens(answer)
    numeric = [
        (value, _numeric_bucket(name, bits)) for name, value in _numeric(answer, words, digits).items()
    ]
    answer_group = _ngram_group(words, _ANSWER_HASHES, (1 << bits) - 1)
    return (_request_group(request, bits), answer_group, *numeric)


def flatten(found: Features) -> dict[int, float]:
    """Bucket -> value, values of a bucket in several groups added up."""
    flat: dict[int, float] = {}
    for value, buckets in found:
        if value:
            for bucket in buckets:
                flat[bucket] = flat.get(bucket, 0.0) + value
    return flat
