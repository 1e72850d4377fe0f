"""Recorded outcomes turned into observations: every record replayed once on every tier,
alone, through the real engine, with every verifier run (nothing stops at the first failure).

Kept per (record, tier): the calls that failed, the answer's verdicts (pass/fail, score,
cost), the call's cost, and whether the answer was `correct`. A verifier with a
`threshold_for(score)` method (hedging, self_confidence, logprob, judge, learned) is
calibratable on every tier below the top: it passes an answer iff its verdict's score
reaches a cut-off, and `threshold_for` turns the cut-off into the verifier's own threshold.
Other verifiers (and `all`/`any` groups) are fixed gates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.config import CascadeConfig
from cascade.core.errors import ConfigError, ExhaustedError
from cascade.core.policy import finished
from cascade.core.values import ZERO, Outcome, Result
from cascade.engine import Cascade
from cascade.offline.evaluation import replaying
from cascade.protocols import Calibratable, hook
from cascade.providers.replay import Recorded, RecordedSet
from cascade.runtime.ladder import Tier
from cascade.verification.registry import COMBINATORS


@dataclass(frozen=True)
class Slot:
    """A calibratable verifier on a tier below the top."""

    tier: str
    tier_index: int
    entry: int  # its index in the config's `verifiers`
    position: int  # its place in the tier's chain
    type: str
    verifier: Any  # has `threshold_for(score) -> threshold`
    label: str

    def threshold_for(self, score: float) -> float:
        value: float = self.verifier.threshold_for(score)
        return value


@dataclass(frozen=True)
class Check:
    """One verdict on an observed answer: `slot` is None for a fixed gate (or a verdict
    without a score: a failed judge call, missing logprobs), whose `passed` stands."""

    slot: int | None
    passed: bool
    score: float
    cost: Decimal


@dataclass(frozen=True)
class TierOutcome:
    """What one tier did with one request, every verifier run."""

    failed: tuple[Decimal, ...]  # calls that failed before an answer (or without one)
    answered: bool
    cost: Decimal  # the answered call
    checks: tuple[Check, ...]
    correct: bool
    alone_correct: bool  # the tier's primary model alone, as `cascade eval` counts it
    alone_cost: Decimal
    finished: bool = True  # the answer ended on its own (not cut off, withheld, a tool call)
    model: int = 0  # the answering model's place in the tier (0: the primary)


@dataclass
class Observations:
    """Every record replayed on every tier, with the cascade's settings for simulating it."""

    ids: list[str]
    tiers: list[str]
    models_per_tier: list[int]
    slots: list[Slot]
    rows: list[list[TierOutcome]]  # rows[record][tier]
    stop_at_first_failure: bool
    reasks: list[int]
    budget: Decimal | None
    fixed: list[str] = field(default_factory=list)  # labels of the fixed gates

    def scored(self, slot: int, records: Sequence[int]) -> tuple[list[float], list[bool]]:
        """The positive scores `slot` gave on `records`, and whether each answer was correct."""
        k = self.slots[slot].tier_index
        scores, correct = [], []
        for r in records:
            outcome = self.rows[r][k]
            if not outcome.answered:
                continue
            for check in outcome.checks:
                if check.slot == slot and check.score > 0:
                    scores.append(check.score)
                    correct.append(outcome.correct)
        return scores, correct

    def scores(self, slot: int, records: Sequence[int]) -> list[float]:
        """The positive scores `slot` gave on `records`."""
        return self.scored(slot, records)[0]


def calibratable_slots(config: CascadeConfig, cascade: Cascade) -> tuple[list[Slot], list[str]]:
    """The calibratable verifiers of every tier below the top, and the fixed gates."""
    slots: list[Slot] = []
    fixed: list[str] = []
    for k, tier in enumerate(config.tiers[:-1]):
        entries = [i for i, entry in enumerate(config.verifiers) if entry.applies_to(tier.name)]
        chain = cascade.plan.chain(tier.name)
        assert len(entries) == len(chain), "a tier's chain follows the config's entries"
        types = [config.verifiers[i].type for i in entries]
        for position, (i, verifier) in enumerate(zip(entries, chain, strict=True)):
            kind = config.verifiers[i].type
            label = f"{tier.name}/{kind}" + (f"#{i}" if types.count(kind) > 1 else "")
            if kind not in COMBINATORS and hook(verifier, Calibratable) is not None:
                slots.append(Slot(tier.name, k, i, position, kind, verifier, label))
            else:
                fixed.append(label)
    return slots, fixed


async def observe(
    config: CascadeConfig,
    recorded: RecordedSet,
    *,
    base_dir: Path | None = None,
    source: str = "config",
    held_out: bool = False,
    calibrating: bool = True,
) -> Observations:
    """Replay every record once on every tier alone, every verifier run (see the module doc).
    `held_out` data is only scored: a verifier that gives it no score stays a slot. Not
    `calibrating` (the learned router's labels need only what each tier did), a ladder without
    a calibratable verifier is observed all the same."""
    if len(config.tiers) < 2:
        raise ConfigError(f"{source}: one tier only: there is nothing to escalate, nothing to calibrate")
    records = list(recorded)
    if not records:
        raise ConfigError("the data holds no usable record")
    async with Cascade.from_config(config, base_dir=base_dir, source=source) as live:
        cascade = replaying(live, recorded)
        slots, fixed = calibratable_slots(config, cascade)
        if not slots and calibrating:
            below = ", ".join(t.name for t in config.tiers[:-1])
            gates = ", ".join(fixed) or "none"
            raise ConfigError(
                f"{source}: no calibratable verifier on the tiers below the top ({below}): only verifiers "
                "with a `threshold` setting are (hedging, self_confidence, logprob, judge, learned); "
                f"fixed gates here: {gates}"
            )
        at = {(s.tier_index, s.position): i for i, s in enumerate(slots)}
        rows: list[list[TierOutcome]] = [[] for _ in records]
        for k, tier in enumerate(cascade.tiers):
            alone = Cascade(
                [tier], chains={tier.name: cascade.plan.chain(tier.name)}, stop_at_first_failure=False
            )
            for r, record in enumerate(records):
                result = await _run(alone, record)
                rows[r].append(_tier_outcome(result, record, tier, k, at))
    slots, rows, unscored = (slots, rows, []) if held_out else _without_unscored(slots, rows)
    fixed += [f"{label} (no score observed)" for label in unscored]
    if not slots and calibrating:
        raise ConfigError(
            f"nothing to calibrate: no calibratable verifier gave a score on the data ({', '.join(unscored)})"
        )
    return Observations(
        ids=[r.id for r in records],
        tiers=[t.name for t in config.tiers],
        models_per_tier=[len(t.models) for t in cascade.tiers],
        slots=slots,
        rows=rows,
        stop_at_first_failure=not config.run_all_verifiers,
        reasks=[config.reask_for(t) for t in config.tiers],
        budget=config.max_cost_usd,
        fixed=fixed,
    )


async def _run(cascade: Cascade, record: Recorded) -> Result:
    try:
        return await cascade.arun(record.request)
    except ExhaustedError as exc:
        return exc.result


def _without_unscored(
    slots: list[Slot], rows: list[list[TierOutcome]]
) -> tuple[list[Slot], list[list[TierOutcome]], list[str]]:
    """Slots that never gave a positive score cannot be calibrated: they become fixed gates."""
    scored = {c.slot for row in rows for o in row for c in o.checks if c.slot is not None and c.score > 0}
    if len(scored) == len(slots):
        return slots, rows, []
    kept = [i for i in range(len(slots)) if i in scored]
    renumber = {old: new for new, old in enumerate(kept)}

    def renumbered(o: TierOutcome) -> TierOutcome:
        checks = tuple(
            c if c.slot is None else Check(renumber.get(c.slot), c.passed, c.score, c.cost) for c in o.checks
        )
        return replace(o, checks=checks)

    return (
        [slots[i] for i in kept],
        [[renumbered(o) for o in row] for row in rows],
        [s.label for i, s in enumerate(slots) if i not in scored],
    )


def _tier_outcome(
    result: Result, record: Recorded, tier: Tier, k: int, at: dict[tuple[int, int], int]
) -> TierOutcome:
    attempts = result.attempts
    failed = tuple(a.cost_usd + a.verification_usd for a in attempts if a.outcome is Outcome.ERROR)
    first = attempts[0]
    alone_correct = first.outcome is not Outcome.ERROR and record.correct(first.model) is True
    answer = next((a for a in attempts if a.outcome in (Outcome.ACCEPTED, Outcome.REJECTED)), None)
    if answer is None:
        return TierOutcome(failed, False, ZERO, (), False, alone_correct, first.cost_usd)
    # an unfinished answer's one verdict says so: it is no verifier's, whatever its place
    complete = finished(answer.verdicts)
    checks = []
    for position, verdict in enumerate(answer.verdicts):
        slot = at.get((k, position)) if complete else None
        score = verdict.score
        if score is None or not math.isfinite(score):
            slot, score = None, 0.0
        checks.append(Check(slot, verdict.passed, float(score), verdict.cost_usd))
    return TierOutcome(
        failed,
        True,
        answer.cost_usd,
        tuple(checks),
        record.correct(answer.model) is True,
        alone_correct,
        first.cost_usd,
        complete,
        [m.model for m in tier.models].index(answer.model),
    )
