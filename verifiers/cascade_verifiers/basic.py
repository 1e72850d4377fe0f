"""Cheap structural checks: not empty, not too long."""

from __future__ import annotations

from cascade import Candidate, Verdict


class NonEmptyVerifier:
    """Fails an answer that is blank, or shorter than `min_chars` once stripped; an answer
    that calls tools is not empty."""

    name = "non_empty"

    def __init__(self, min_chars: int = 1) -> None:
        if not _whole(min_chars) or min_chars < 1:
            raise ValueError(f"min_chars must be a whole number of at least 1, not {min_chars!r}")
        self.min_chars = min_chars

    def __call__(self, candidate: Candidate) -> Verdict:
        length = len(candidate.text.strip())
        if length >= self.min_chars:
            return Verdict(self.name, True, f"{length} characters", score=1.0)
        if candidate.completion.tool_calls:
            return Verdict(self.name, True, f"{len(candidate.completion.tool_calls)} tool call(s)", score=1.0)
        what = "empty answer" if length == 0 else f"only {length} characters"
        return Verdict(self.name, False, f"{what} (at least {self.min_chars} required)", score=0.0)


class LengthVerifier:
    """Fails an answer shorter than `min_chars` or longer than `max_chars` (stripped).
    While streaming, an answer past `max_chars` is stopped at once."""

    name = "length"

    def __init__(self, min_chars: int = 0, max_chars: int | None = None) -> None:
        if not _whole(min_chars) or (max_chars is not None and not _whole(max_chars)):
            raise ValueError(
                f"min_chars and max_chars must be whole numbers, not {min_chars!r}, {max_chars!r}"
            )
        if min_chars < 0 or (max_chars is not None and max_chars < max(min_chars, 1)):
            raise ValueError("need 0 <= min_chars <= max_chars, and max_chars >= 1")
        self.min_chars = min_chars
        self.max_chars = max_chars

    def __call__(self, candidate: Candidate) -> Verdict:
        length = len(candidate.text.strip())
        if length < self.min_chars:
            return Verdict(self.name, False, f"{length} characters, fewer than {self.min_chars}", score=0.0)
        if self.max_chars is not None and length > self.max_chars:
            return Verdict(self.name, False, f"{length} characters, more than {self.max_chars}", score=0.0)
        return Verdict(self.name, True, f"{length} characters", score=1.0)

    def check_partial(self, text: str) -> Verdict | None:
        if self.max_chars is not None and len(text.strip()) > self.max_chars:
            return Verdict(self.name, False, f"already more than {self.max_chars} characters", score=0.0)
        return None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
