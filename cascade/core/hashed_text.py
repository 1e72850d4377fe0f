"""Text as hashed sparse features, for the small linear models learned from recorded outcomes
(the learned verifier, the learned router): lowercased word unigrams and bigrams (every
number one token), hashed with zlib.crc32 under a namespace's seed into 2^bits buckets and
valued 1/sqrt(how many distinct buckets); a numeric feature has the bucket of its name.
Pure standard library.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any, ClassVar

HEAD_CHARS, TAIL_CHARS = 16_000, 4_000  # a longer text is read as its head and its tail

# A group of buckets sharing one value; a model's features are a tuple of groups. A bucket in
# two groups counts twice (hash collisions add up).
FeatureGroup = tuple[float, tuple[int, ...]]
HashedFeatures = tuple[FeatureGroup, ...]

_WORD = re.compile(r"[^\W\d_]+|\d+")
_NUMBER = re.compile(r"\d+")
# a unigram's bucket: crc32(token, namespace seed) mod 2^bits; a bigram's:
# (crc(first) * M + crc(second)) mod 2^bits
_BIGRAM_MULTIPLIER = 0x9E3779B1


def _seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


@lru_cache(maxsize=512)
def _numeric_bucket(name: str, bits: int) -> tuple[int, ...]:
    return (_seed("numeric:" + name) & ((1 << bits) - 1),)


class HashedNgrams:
    """The hashed n-grams of texts in one namespace (its name seeds the hash), with the crc32
    of each token remembered (bounded) so that repeated words cost a lookup."""

    # what these features are: a model file records them, and one made otherwise is refused
    SETTINGS: ClassVar[Mapping[str, Any]] = {
        "hash": "crc32",
        "ngrams": [1, 2],
        "tokens": "lowercased words, every number as one token",
        "values": "binary n-grams scaled by 1/sqrt(distinct n-grams) per namespace",
        "max_chars": HEAD_CHARS + TAIL_CHARS,
    }
    LIMIT = 200_000

    def __init__(self, namespace: str) -> None:
        self.seed = _seed(namespace)
        self._known: dict[str, int] = {}

    @staticmethod
    def window(text: str) -> str:
        """The part of `text` that is read: all of it, or its head and its tail."""
        if len(text) <= HEAD_CHARS + TAIL_CHARS:
            return text
        return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]

    @staticmethod
    def tokens(text: str) -> tuple[list[str], int]:
        """The lowercased words of `text` (its window), every number as the token "0", and how
        many digits the window holds."""
        window = HashedNgrams.window(text)
        numbered, runs = _NUMBER.subn("0", window)
        return _WORD.findall(numbered.lower()), len(window) - len(numbered) + runs

    @staticmethod
    def numeric(name: str, value: float, bits: int) -> FeatureGroup:
        """A numeric feature: `value` in the bucket of its `name`."""
        return value, _numeric_bucket(name, bits)

    def hashes(self, tokens: Iterable[str]) -> list[int]:
        known, hashes = self._known, []
        for token in tokens:
            value = known.get(token)
            if value is None:
                if len(known) >= self.LIMIT:
                    known.clear()
                value = known[token] = zlib.crc32(token.encode("utf-8", "surrogatepass"), self.seed)
            hashes.append(value)
        return hashes

    def group(self, tokens: list[str], bits: int) -> FeatureGroup:
        """The distinct unigram and bigram buckets of `tokens`, valued 1/sqrt(how many there are)."""
        mask = (1 << bits) - 1
        unigrams = self.hashes(tokens)
        buckets = {h & mask for h in unigrams}
        buckets.update({(first * _BIGRAM_MULTIPLIER + second) & mask for first, second in pairwise(unigrams)})
        return (1.0 / math.sqrt(len(buckets)) if buckets else 0.0), tuple(buckets)

    def __call__(self, text: str, bits: int) -> FeatureGroup:
        return self.group(self.tokens(text)[0], bits)


def flatten(found: HashedFeatures) -> dict[int, float]:
    """Bucket -> value, values of a bucket in several groups added up."""
    flat: dict[int, float] = {}
    for value, buckets in found:
        if value:
            for bucket in buckets:
                flat[bucket] = flat.get(bucket, 0.0) + value
    return flat
