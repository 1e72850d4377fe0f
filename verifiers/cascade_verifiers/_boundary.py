"""Exact float boundaries, for `threshold_for` (score cut-off -> a verifier's own threshold).

A verifier whose verdict score is a monotone float function of the quantity it compares
with its threshold (hedging: 1 / (1 + weight); logprob: exp(logprob)) can give, for any
score cut-off, the threshold under which it passes exactly the answers whose score reaches
the cut-off, however the float arithmetic rounds: the boundary is found by bisection over
the floats themselves.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

_SIGN = 0x8000_0000_0000_0000
_MAGNITUDE = 0x7FFF_FFFF_FFFF_FFFF


def _key(x: float) -> int:
    """An integer that orders floats as they compare (-0.0 and 0.0 share one)."""
    bits: int = struct.unpack("<Q", struct.pack("<d", x))[0]
    return -(bits & _MAGNITUDE) if bits & _SIGN else bits


def _float(key: int) -> float:
    bits = key if key >= 0 else (-key) | _SIGN
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


def first_float_where(holds: Callable[[float], bool], lo: float, hi: float) -> float:
    """The least float x in (lo, hi] with `holds(x)`, for a `holds` that is false up to some
    point and true from there on, with `holds(lo)` false and `holds(hi)` true."""
    if math.isnan(lo) or math.isnan(hi) or lo >= hi:
        raise ValueError(f"need lo < hi, got {lo!r} and {hi!r}")
    low, high = _key(lo), _key(hi)
    while high - low > 1:
        middle = (low + high) // 2
        if holds(_float(middle)):
            high = middle
        else:
            low = middle
    return _float(high)


def check_score(score: object) -> float:
    """A score cut-off: a number from 0 to 1; ValueError otherwise."""
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise ValueError(f"a score cut-off is a number from 0 to 1, not {score!r}")
    return float(score)
