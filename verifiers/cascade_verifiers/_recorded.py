"""Signals recorded with a replayed answer, for the verifiers that cannot compute theirs
offline (a self-rating, token logprobs, a judge's grade). The verdict says it used one."""

from __future__ import annotations

import math
from typing import Any

from cascade import Candidate

REPLAY_NOTE = " (recorded, replay)"


def recorded_number(candidate: Candidate, key: str) -> float | None:
    """The finite number recorded under `key` with this answer, if it was replayed with one."""
    recorded: Any = candidate.completion.recorded
    if not recorded:
        return None
    value = recorded.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
