"""What a cascade tells its consumer while it works: text, restarts, and the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cascade.core.values import Attempt, Result


@dataclass(frozen=True)
class StreamDelta:
    """A piece of the answer, shown as it arrives (or, under `buffer`, once verified)."""

    text: str
    tier: str
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": "delta", "text": self.text, "tier": self.tier, "model": self.model}


@dataclass(frozen=True)
class StreamRestart:
    """The cascade left an attempt: what was shown of it (`void_chars`) is withdrawn."""

    from_tier: str
    to_tier: str | None  # None: no tier left to try
    reason: str
    void_chars: int
    void_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "restart",
            "from_tier": self.from_tier,
            "to_tier": self.to_tier,
            "reason": self.reason,
            "void_chars": self.void_chars,
            "void_tokens": self.void_tokens,
        }


@dataclass(frozen=True)
class StreamResult:
    """The last event: the result, as `Cascade.arun` would return it."""

    result: Result

    def to_dict(self) -> dict[str, Any]:
        return {"event": "result", **self.result.to_dict()}


CascadeEvent = StreamDelta | StreamRestart | StreamResult


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt ended: its ledger entry, the text shown of it, and whether it must
    stand, degraded."""

    attempt: Attempt
    shown: str = ""
    degraded: bool = False
