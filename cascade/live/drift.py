"""The running false-accept estimate of each tier and tag group, and its alarm (pure).

Each audit says whether an answer accepted below the top tier agreed with the reference
(the top tier's answer, or a judge). Over the latest `window` audits of a group, the
disagreement rate has a one-sided Clopper-Pearson upper bound at `confidence`. A group is

- `warming` until the bound first comes under `limit` (it needs `min_audits` audits at
  least, all of them in agreement);
- `ok` while the bound is at or under `limit`: the false-accept rate is certified;
- `drift`, the alarm, when the bound crosses back over `limit` after the group was
  certified, or when even the lower bound is over it (a group bad from its first audits),
  never on fewer than `min_audits` audits.

A group still warming does not alarm on the upper bound alone: with few audits it is over
any limit after one disagreement, which says nothing yet. The window lets old agreement
age out, so a change shows within the audits the bound needs to cross (`audits_to_alarm`
says how many), however long the run before it. Pick a window in which a healthy tier's
bound sits well under the limit (`cascade audit` shows it), or the alarm is a hair trigger.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from cascade.core.binomial import binomial_lower_bound, binomial_upper_bound

State = Literal["warming", "ok", "drift"]
Group = tuple[str, str]  # (tier, "" for the whole tier or "name=value" for a tag's slice)
# slices tracked at most (a tag like `user` may take millions of values); a tier's whole
# group is always tracked, slices past this are not, and `untracked` counts their audits
MAX_GROUPS = 10_000


def groups_of(tier: str, tags: Mapping[str, str]) -> list[Group]:
    """The groups an audit of `tier` with `tags` counts in: the tier, and each tag's slice."""
    return [(tier, ""), *((tier, f"{k}={v}") for k, v in sorted(tags.items()))]


def min_audits(limit: float, confidence: float) -> int:
    """The fewest audits whose bound can be under `limit`: all of them in agreement."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - limit))


@dataclass(frozen=True)
class Estimate:
    """A group's figures over its window."""

    audited: int
    disagreements: int
    upper: float  # Clopper-Pearson upper bound of the disagreement rate
    lower: float
    state: State

    @property
    def rate(self) -> float:
        return self.disagreements / self.audited if self.audited else 0.0


@dataclass(frozen=True)
class Change:
    """A group entering or leaving `drift`."""

    group: Group
    old: State
    new: State
    estimate: Estimate


class DriftMonitor:
    """Audits in, estimates and alarms out."""

    def __init__(self, *, limit: float, confidence: float, window: int) -> None:
        self.limit, self.confidence, self.window = limit, confidence, window
        self.needed = min_audits(limit, confidence)
        self._audits: dict[Group, deque[bool]] = {}  # True: a disagreement
        self._states: dict[Group, State] = {}
        self.untracked = 0  # audits of slices past MAX_GROUPS

    def observe(self, groups: Iterable[Group], agreed: bool) -> list[Change]:
        """Count one audit in each of `groups`; the groups whose alarm state changed."""
        changes = []
        for group in groups:
            audits = self._audits.get(group)
            if audits is None:
                if group[1] and len(self._audits) >= MAX_GROUPS:
                    self.untracked += 1
                    continue
                audits = self._audits[group] = deque(maxlen=self.window)
            audits.append(not agreed)
            old = self._states.get(group, "warming")
            estimate = self.estimate(group)
            self._states[group] = estimate.state
            if (old == "drift") != (estimate.state == "drift"):
                changes.append(Change(group, old, estimate.state, estimate))
        return changes

    def estimate(self, group: Group) -> Estimate:
        """The group's figures now, its state following on from the one it was in."""
        audits = self._audits.get(group, ())
        return self._estimate(len(audits), sum(audits), self._states.get(group, "warming"))

    def _estimate(self, n: int, k: int, before: State) -> Estimate:
        if n == 0:
            return Estimate(0, 0, 1.0, 0.0, "warming")
        upper = binomial_upper_bound(k, n, self.confidence)
        lower = binomial_lower_bound(k, n, self.confidence)
        if lower > self.limit and n >= self.needed:  # no alarm on fewer audits than certifying takes
            state: State = "drift"
        elif upper <= self.limit:
            state = "ok"
        else:
            state = "warming" if before == "warming" else "drift"
        return Estimate(n, k, upper, lower, state)

    def state(self, group: Group) -> State:
        return self._states.get(group, "warming")

    def groups(self) -> list[Group]:
        return sorted(self._audits)

    def audits_to_alarm(self, group: Group) -> int | None:
        """How many more audits, every one a disagreement, raise the alarm on `group` from
        where it stands (0: it is raised; None: never, as with a window too short)."""
        audits = deque(self._audits.get(group, ()), maxlen=self.window)
        state = self.state(group)
        for more in range(self.window + 1):
            state = self._estimate(len(audits), sum(audits), state).state
            if state == "drift":
                return more
            audits.append(True)
        return None
