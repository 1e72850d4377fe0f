"""What a calibration must reach: a quality target, absolute or against the top tier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from cascade.core.errors import ConfigError

TargetKind = Literal["accuracy", "match_top", "of_top", "max_loss"]


@dataclass(frozen=True)
class Target:
    """What the cascade must reach: an accuracy, the top tier's, a share of it, or at most a
    paired loss against the top tier alone on the same requests."""

    kind: TargetKind
    value: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ConfigError(f"the target must be a number, not {self.value!r}")
        if self.kind == "max_loss":
            if not 0 <= self.value <= 1:
                raise ConfigError(f"--max-loss is a fraction from 0 to 1, not {self.value:g}")
        elif self.value <= 0:
            raise ConfigError(f"the target must be a positive number, not {self.value!r}")
        if self.kind == "accuracy" and self.value > 1:
            raise ConfigError(f"--target-accuracy is a fraction from 0 to 1, not {self.value:g}")

    @property
    def max_loss(self) -> float | None:
        """The paired loss allowed against the top tier, for the targets that are one."""
        if self.kind == "match_top":
            return 0.0
        return self.value if self.kind == "max_loss" else None

    def required(self, top_accuracy: float) -> float:
        """The accuracy the cascade must reach, given the top tier's on the same data."""
        if self.kind == "accuracy":
            return self.value
        if self.kind == "max_loss":
            return top_accuracy - self.value
        return self.value * top_accuracy

    def describe(self) -> str:
        if self.kind == "accuracy":
            return f"accuracy >= {self.value:.1%}"
        if self.kind == "match_top":
            return "accuracy >= the top tier alone's on the same requests"
        if self.kind == "max_loss":
            return f"at most {self.value:.1%} accuracy lost against the top tier alone on the same requests"
        return f"accuracy >= {self.value:.1%} of the top tier alone's"
