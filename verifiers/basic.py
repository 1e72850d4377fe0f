"""Cheap structural checks."""

from __future__ import annotations

from cascade.types import Candidate, Verdict


class NonEmptyVerifier:
    """Fails an answer that is blank, or shorter than `min_chars` once stripped."""

    name = "non_empty"

    def __init__(self, min_chars: int = 1) -> None:
        if min_chars < 1:
            raise ValueError("min_chars must be at least 1")
        self.min_chars = min_chars

    def __call__(self, candidate: Candidate) -> Verdict:
        length = len(candidate.text.strip())
        if length >= self.min_chars:
            return Verdict(self.name, True, f"{length} characters", score=1.0)
        what = "empty answer" if length == 0 else f"only {length} characters"
        return Verdict(self.name, False, f"{what} (at least {self.min_chars} required)", score=0.0)
