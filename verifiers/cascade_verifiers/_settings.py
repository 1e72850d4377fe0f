"""Checks of settings shared by the verifiers that grade on a scale (judge, self_confidence)."""

from __future__ import annotations

from typing import Any


def check_threshold(threshold: Any) -> float:
    """`threshold` as a float from 0 to 1; ValueError otherwise."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a number from 0 to 1, not {threshold!r}")
    return float(threshold)


def check_scale(scale: Any) -> int:
    """`scale` as a positive integer; ValueError otherwise."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, not {scale!r}")
    return scale
