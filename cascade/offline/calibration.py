"""`cascade calibrate`: verifier thresholds fitted to a quality target on recorded outcomes.

Every verifier with a `threshold_for(score)` method (hedging, self_confidence, logprob,
judge, learned) is calibratable on every tier below the top: it passes an answer iff its
verdict's score reaches a cut-off, and `threshold_for` turns the cut-off into the
verifier's own threshold. Other verifiers (and `all`/`any` groups) are fixed gates.

1. Observe: every record is replayed ONCE on every tier, alone, through the real engine
   with every verifier run (nothing stops at the first failure). Kept per (record, tier):
   each verdict (pass/fail, score, cost), the call's cost, and whether the answer was
   `correct`.
2. Simulate: for any cut-offs the cascade is replayed in pure Python from those
   observations, as the engine runs it: the first tier whose gates pass and whose scores
   reach their cut-offs answers; a tier whose call failed is skipped; rejected answers are
   asked again `reask` times (a replay gives the same answer); when no tier accepts, the best
   rejected answer is returned as the engine picks it; the per-request budget stops it;
   the cost is everything tried, checks included.
3. Search, per tier below the top and per calibratable verifier, over cut-offs (observed
   scores, thinned to quantiles, and "off": the lowest score observed): every combination
   when there are few, else coordinate descent from the config's own thresholds. The
   cheapest setting that meets the target wins; the (cost, accuracy) Pareto frontier of
   all explored settings is kept.
4. The written threshold is a short decimal that takes exactly the same decisions on the
   data as the cut-off, so that the engine, run on the written config, agrees exactly
   with the simulation.

With a confidence level, the search runs on a fit split and the chosen setting is the
cheapest explored one whose one-sided Clopper-Pearson lower bound on a validation split
meets the target.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from cascade.config import CascadeConfig
from cascade.core.errors import ConfigError, ExhaustedError
from cascade.core.values import ZERO, Outcome, Result
from cascade.engine import Cascade
from cascade.offline.evaluation import replaying
from cascade.providers.replay import Recorded, RecordedSet
from cascade.verification.registry import COMBINATORS

MAX_CANDIDATES = 25  # cut-offs tried per verifier (quantiles of the observed scores)
MAX_GRID = 20_000  # settings tried exhaustively; beyond that, coordinate descent
MAX_ROUNDS = 20  # coordinate descent rounds
VALIDATION_SHARE = 0.3
TOLERANCE = 1e-9

TargetKind = Literal["accuracy", "match_top", "of_top"]


# -- the target --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the cascade must reach: an accuracy, the top tier's, or a share of it."""

    kind: TargetKind
    value: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value > 0):
            raise ConfigError(f"the target must be a positive number, not {self.value!r}")
        if self.kind == "accuracy" and self.value > 1:
            raise ConfigError(f"--target-accuracy is a fraction from 0 to 1, not {self.value:g}")

    def required(self, top_accuracy: float) -> float:
        """The accuracy the cascade must reach, given the top tier's on the same data."""
        return self.value if self.kind == "accuracy" else self.value * top_accuracy

    def describe(self) -> str:
        if self.kind == "accuracy":
            return f"accuracy >= {self.value:.1%}"
        if self.kind == "match_top":
            return "accuracy >= the top tier alone's"
        return f"accuracy >= {self.value:.1%} of the top tier alone's"


@functools.cache
def binomial_lower_bound(successes: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound of a success rate: the p at which `successes` or
    more out of `trials` has probability 1 - `confidence` (pure Python, in log space)."""
    if not 0 <= successes <= trials or trials < 1:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, not {successes}/{trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is a level between 0 and 1, not {confidence!r}")
    alpha = 1 - confidence
    if successes == 0:
        return 0.0
    if successes == trials:
        return float(alpha ** (1 / trials))
    log_comb = [math.log(math.comb(trials, i)) for i in range(successes, trials + 1)]

    def tail(p: float) -> float:  # P(X >= successes) for X ~ Binomial(trials, p)
        log_p, log_q = math.log(p), math.log1p(-p)
        terms = [c + i * log_p + (trials - i) * log_q for i, c in enumerate(log_comb, successes)]
        top = max(terms)
        return math.exp(top) * sum(math.exp(t - top) for t in terms)

    low, high = 0.0, successes / trials
    for _ in range(200):  # the tail grows with p: bisect
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if tail(middle) < alpha:
            low = middle
        else:
            high = middle
    return (low + high) / 2


# -- observations --------------------------------------------------------------------------


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


@dataclass
class Observations:
    """Every record replayed on every tier, with the cascade's rules for simulating it."""

    ids: list[str]
    tiers: list[str]
    models: list[str]
    slots: list[Slot]
    rows: list[list[TierOutcome]]  # rows[record][tier]
    stop_at_first_failure: bool
    reasks: list[int]
    budget: Decimal | None
    fixed: list[str] = field(default_factory=list)  # labels of the fixed gates

    def scores(self, slot: int, records: Sequence[int]) -> list[float]:
        """The positive scores `slot` gave on `records`."""
        k = self.slots[slot].tier_index
        return [
            c.score
            for r in records
            for c in self.rows[r][k].checks
            if c.slot == slot and c.score > 0 and self.rows[r][k].answered
        ]


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
            if kind not in COMBINATORS and callable(getattr(verifier, "threshold_for", None)):
                slots.append(Slot(tier.name, k, i, position, kind, verifier, label))
            else:
                fixed.append(label)
    return slots, fixed


async def observe(
    config: CascadeConfig, recorded: RecordedSet, *, base_dir: Path | None = None, source: str = "config"
) -> Observations:
    """Replay every record once on every tier alone, every verifier run (see the module doc)."""
    if len(config.tiers) < 2:
        raise ConfigError(f"{source}: one tier only: there is nothing to escalate, nothing to calibrate")
    records = list(recorded)
    if not records:
        raise ConfigError("the data holds no usable record")
    async with Cascade.from_config(config, base_dir=base_dir, source=source) as live:
        cascade = replaying(live, recorded)
        slots, fixed = calibratable_slots(config, cascade)
        if not slots:
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
                rows[r].append(_tier_outcome(result, record, k, at))
    slots, rows, unscored = _without_unscored(slots, rows)
    fixed += [f"{label} (no score observed)" for label in unscored]
    if not slots:
        raise ConfigError(
            f"nothing to calibrate: no calibratable verifier gave a score on the data ({', '.join(unscored)})"
        )
    return Observations(
        ids=[r.id for r in records],
        tiers=[t.name for t in config.tiers],
        models=[t.model for t in config.tiers],
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


def _tier_outcome(result: Result, record: Recorded, k: int, at: dict[tuple[int, int], int]) -> TierOutcome:
    attempts = result.attempts
    failed = tuple(a.cost_usd + a.verification_usd for a in attempts if a.outcome is Outcome.ERROR)
    first = attempts[0]
    alone_correct = first.outcome is not Outcome.ERROR and record.correct(first.model) is True
    answer = next((a for a in attempts if a.outcome in (Outcome.ACCEPTED, Outcome.REJECTED)), None)
    if answer is None:
        return TierOutcome(failed, False, ZERO, (), False, alone_correct, first.cost_usd)
    checks = []
    for position, verdict in enumerate(answer.verdicts):
        slot = at.get((k, position))
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
    )


# -- simulation ----------------------------------------------------------------------------

Setting = tuple[float, ...]  # a cut-off per slot


@dataclass(frozen=True)
class _TierView:
    """One tier under given cut-offs, per record (costs exact, and as floats for the search)."""

    accepted: list[bool]
    passes: list[int]  # verdicts passed, as the engine counts them to pick the best; -1: no answer
    attempt: list[Decimal]  # one attempt: the call and the checks run on its answer
    attempt_f: list[float]
    failed_f: list[tuple[float, ...]]
    paid: list[float]  # everything the tier costs when tried, reasks included (without a budget)


class Simulator:
    """The cascade replayed from observations under any cut-offs (see the module doc)."""

    def __init__(self, observations: Observations) -> None:
        self.obs = observations
        self.tier_slots = [
            [i for i, s in enumerate(observations.slots) if s.tier_index == k]
            for k in range(len(observations.tiers))
        ]
        self._views: dict[tuple[int, Setting], _TierView] = {}

    def view(self, k: int, setting: Setting) -> _TierView:
        cuts = tuple(setting[i] for i in self.tier_slots[k])
        key = (k, cuts)
        if key not in self._views:
            self._views[key] = self._build_view(k, setting)
        return self._views[key]

    def _build_view(self, k: int, setting: Setting) -> _TierView:
        obs = self.obs
        view = _TierView([], [], [], [], [], [])
        for row in obs.rows:
            outcome = row[k]
            tried = sum(outcome.failed, ZERO)
            ok, count, cost = outcome.answered, 0, ZERO
            for check in outcome.checks:
                passed = check.passed if check.slot is None else check.score >= setting[check.slot]
                if ok or not obs.stop_at_first_failure:
                    cost += check.cost
                    count += passed
                ok = ok and passed
            attempt = outcome.cost + cost
            attempts = 0 if not outcome.answered else 1 if ok else 1 + obs.reasks[k]
            view.accepted.append(ok)
            view.passes.append(count if outcome.answered else -1)
            view.attempt.append(attempt)
            view.attempt_f.append(float(attempt))
            view.failed_f.append(tuple(float(c) for c in outcome.failed))
            view.paid.append(float(tried + attempts * attempt))
        return view

    def run(self, setting: Setting, records: Sequence[int]) -> tuple[int, float]:
        """(requests answered correctly, cost in USD as a float) on `records`: for the search."""
        views = [self.view(k, setting) for k in range(len(self.obs.tiers))]
        rows = self.obs.rows
        correct, total = 0, 0.0
        if self.obs.budget is not None:
            for r in records:
                answered_by, spent = self._one(views, r, exact=False)
                total += spent
                correct += answered_by is not None and rows[r][answered_by].correct
            return correct, total
        for r in records:
            best, best_key = -1, (-1, -1)
            for k, view in enumerate(views):
                total += view.paid[r]
                if view.accepted[r]:
                    best = k
                    break
                if view.passes[r] >= 0 and (view.passes[r], k) > best_key:
                    best_key = (view.passes[r], k)
                    best = k
            if best >= 0 and rows[r][best].correct:
                correct += 1
        return correct, total

    def run_exact(self, setting: Setting, records: Sequence[int]) -> tuple[int, Decimal]:
        """(requests answered correctly, cost in USD, exact) on `records`."""
        views = [self.view(k, setting) for k in range(len(self.obs.tiers))]
        correct, total = 0, ZERO
        for r in records:
            answered_by, spent = self._one(views, r, exact=True)
            total += spent
            correct += answered_by is not None and self.obs.rows[r][answered_by].correct
        return correct, total

    def _one(self, views: list[_TierView], r: int, *, exact: bool) -> tuple[int | None, Any]:
        """Which tier's answer is returned for record `r`, and what the request cost (a
        Decimal when `exact`, else a float), attempt by attempt as the engine goes."""
        budget: Any = self.obs.budget if exact or self.obs.budget is None else float(self.obs.budget)
        spent: Any = ZERO if exact else 0.0
        best, best_key = None, (-1, -1)
        for k, view in enumerate(views):
            outcome = self.obs.rows[r][k]
            for cost in outcome.failed if exact else view.failed_f[r]:
                if budget is not None and spent >= budget:
                    return best, spent
                spent += cost
            if not outcome.answered:
                continue
            attempt = view.attempt[r] if exact else view.attempt_f[r]
            for _ in range(1 if view.accepted[r] else 1 + self.obs.reasks[k]):
                if budget is not None and spent >= budget:
                    return best, spent
                spent += attempt
                if view.accepted[r]:
                    return k, spent
                if (view.passes[r], k) > best_key:
                    best, best_key = k, (view.passes[r], k)
        return best, spent

    def alone(self, k: int, records: Sequence[int]) -> tuple[int, Decimal]:
        """(correct, cost) of tier `k`'s primary model alone on `records`."""
        rows = self.obs.rows
        return (
            sum(rows[r][k].alone_correct for r in records),
            sum((rows[r][k].alone_cost for r in records), ZERO),
        )


# -- search ------------------------------------------------------------------------------


def candidates(observations: Observations, slot: int, fit: Sequence[int], off: float) -> list[float]:
    """Cut-offs to try for `slot`: the scores observed on `fit`, thinned to quantiles, and `off`."""
    scores = sorted(observations.scores(slot, fit))
    distinct = sorted(set(scores))
    if len(distinct) > MAX_CANDIDATES:
        last = len(scores) - 1
        distinct = sorted({scores[round(last * i / (MAX_CANDIDATES - 1))] for i in range(MAX_CANDIDATES)})
    return sorted({off, *distinct})


def start_setting(observations: Observations, grid: list[list[float]], fit: Sequence[int]) -> Setting:
    """The cut-offs closest to the config's own thresholds: per slot, the lowest score that
    passed on `fit`, raised to the next candidate (the strictest when nothing passed)."""
    setting = []
    for i, slot in enumerate(observations.slots):
        passed = [
            c.score
            for r in fit
            for c in observations.rows[r][slot.tier_index].checks
            if c.slot == i and c.passed and c.score > 0
        ]
        lowest = min(passed, default=math.inf)
        setting.append(next((c for c in grid[i] if c >= lowest), grid[i][-1]))
    return tuple(setting)


@dataclass(frozen=True)
class Explored:
    setting: Setting
    correct: int
    cost: float


def search(
    simulator: Simulator,
    grid: list[list[float]],
    start: Setting,
    fit: Sequence[int],
    meets: Callable[[int], bool],
) -> tuple[dict[Setting, Explored], str, int]:
    """Every setting explored on `fit` (exhaustive or coordinate descent), the method, the grid size."""
    size = math.prod(len(g) for g in grid)
    explored: dict[Setting, Explored] = {}

    def evaluate(setting: Setting) -> Explored:
        if setting not in explored:
            correct, cost = simulator.run(setting, fit)
            explored[setting] = Explored(setting, correct, cost)
        return explored[setting]

    if size <= MAX_GRID:
        for setting in itertools.product(*grid):
            evaluate(setting)
        return explored, "exhaustive", size

    def key(point: Explored) -> tuple[int, float, float]:
        return (0, point.cost, -point.correct) if meets(point.correct) else (1, -point.correct, point.cost)

    for origin in (start, tuple(g[0] for g in grid)):  # the config's thresholds, then all off
        current = evaluate(origin)
        for _ in range(MAX_ROUNDS):
            before = current
            for i in range(len(grid)):
                for cut in grid[i]:
                    trial = evaluate((*current.setting[:i], cut, *current.setting[i + 1 :]))
                    if key(trial) < key(current):
                        current = trial
            if current is before:
                break
    return explored, "coordinate descent", size


def pareto(points: Sequence[Explored]) -> list[Explored]:
    """The points no other beats on both cost and accuracy, cheapest first."""
    frontier: list[Explored] = []
    for point in sorted(points, key=lambda p: (p.cost, -p.correct)):
        if not frontier or point.correct > frontier[-1].correct:
            frontier.append(point)
    return frontier


# -- thresholds to write ---------------------------------------------------------------------


def written_threshold(slot: Slot, cut: float, observed: Sequence[float]) -> float:
    """A short decimal threshold that decides exactly like cut-off `cut` on the `observed`
    scores (sorted): any threshold strictly past the next lower observed score's, up to
    `cut`'s own, does; the one nearest the middle, with the fewest digits, is taken."""
    lower = [s for s in observed if s < cut]
    exact = slot.threshold_for(cut)
    previous = slot.threshold_for(lower[-1] if lower else 0.0)
    return _short_between(previous, exact)


def _short_between(excluded: float, included: float) -> float:
    """The decimal with the fewest digits in the interval from `excluded` (open end) to
    `included` (closed end), nearest the middle; `included` when there is none."""
    if excluded == included or math.isnan(excluded):
        return included
    if math.isinf(excluded):  # "off": stay within a factor of two of the finite end
        excluded = included + math.copysign(max(1.0, abs(included)), excluded)
    low, high = sorted((excluded, included))
    middle = Decimal(repr((low + high) / 2))

    def inside(x: float) -> bool:
        return excluded < x <= included if excluded < included else included <= x < excluded

    for digits in range(0, 18):
        step = Decimal(1).scaleb(-digits)
        nearest = (middle / step).to_integral_value()
        for k in (nearest, nearest - 1, nearest + 1):
            value = float(k * step)
            if inside(value):
                return value
    return included


# -- the whole calibration -------------------------------------------------------------------


@dataclass
class Calibration:
    """What `calibrate` found; `chosen` is None when the target could not be met."""

    observations: Observations
    simulator: Simulator
    target: Target
    train: list[int]
    fit: list[int]
    validation: list[int]
    confidence: float | None
    grid: list[list[float]]
    method: str
    grid_size: int
    explored: dict[Setting, Explored]
    frontier: list[Explored]
    required_fit: float  # accuracy required on the fit split
    required_validation: float | None
    chosen: Explored | None
    best: Explored  # the most accurate explored setting (for an impossible target)
    lower_bounds: dict[Setting, tuple[int, float]] = field(default_factory=dict)  # validation
    _observed: dict[int, list[float]] = field(default_factory=dict, repr=False)

    @property
    def top(self) -> int:
        return len(self.observations.tiers) - 1

    def accuracy(self, point: Explored) -> float:
        return point.correct / len(self.fit)

    def observed(self, slot: int) -> list[float]:
        """Every positive score the slot gave on the whole training data, sorted."""
        if slot not in self._observed:
            self._observed[slot] = sorted(set(self.observations.scores(slot, self.train)))
        return self._observed[slot]

    def thresholds(self, setting: Setting) -> list[float]:
        """The thresholds written for `setting`, per slot."""
        return [
            written_threshold(slot, cut, self.observed(i))
            for i, (slot, cut) in enumerate(zip(self.observations.slots, setting, strict=True))
        ]

    def is_off(self, slot: int, cut: float) -> bool:
        return cut <= self.grid[slot][0]

    def on_train(self, setting: Setting) -> tuple[int, Decimal]:
        return self.simulator.run_exact(setting, self.train)

    def validation_bound(self, setting: Setting) -> tuple[int, float]:
        """(correct on the validation split, its lower bound at the confidence level)."""
        if setting not in self.lower_bounds:
            assert self.confidence is not None
            correct, _ = self.simulator.run(setting, self.validation)
            self.lower_bounds[setting] = (
                correct,
                binomial_lower_bound(correct, len(self.validation), self.confidence),
            )
        return self.lower_bounds[setting]


def calibrate(
    observations: Observations,
    target: Target,
    *,
    confidence: float | None = None,
    seed: int = 0,
    validation_share: float = VALIDATION_SHARE,
) -> Calibration:
    """Search the cut-offs for the cheapest cascade that meets `target` (see the module doc)."""
    simulator = Simulator(observations)
    train = list(range(len(observations.ids)))
    fit, validation = train, []
    if confidence is not None:
        if not 0 < confidence < 1:
            raise ConfigError(f"--confidence is a level between 0 and 1, not {confidence:g}")
        shuffled = train[:]
        random.Random(seed).shuffle(shuffled)
        cut = round(len(train) * validation_share)
        if cut < 1 or cut >= len(train):
            raise ConfigError(f"too few records ({len(train)}) for a validation split")
        validation, fit = sorted(shuffled[:cut]), sorted(shuffled[cut:])
    top = len(observations.tiers) - 1
    offs = [min(observations.scores(i, train), default=0.0) for i in range(len(observations.slots))]
    grid = [candidates(observations, i, fit, offs[i]) for i in range(len(observations.slots))]
    top_fit, _ = simulator.alone(top, fit)
    required_fit = target.required(top_fit / len(fit))

    def meets(correct: int) -> bool:
        return correct >= required_fit * len(fit) - TOLERANCE

    start = start_setting(observations, grid, fit)
    explored, method, size = search(simulator, grid, start, fit, meets)
    points = list(explored.values())
    best = max(points, key=lambda p: (p.correct, -p.cost))
    result = Calibration(
        observations,
        simulator,
        target,
        train,
        fit,
        validation,
        confidence,
        grid,
        method,
        size,
        explored,
        pareto(points),
        required_fit,
        None,
        None,
        best,
    )
    by_cost = sorted(points, key=lambda p: (p.cost, -p.correct))
    if confidence is None:
        result.chosen = next((p for p in by_cost if meets(p.correct)), None)
        return result
    top_validation, _ = simulator.alone(top, validation)
    result.required_validation = target.required(top_validation / len(validation))
    for point in by_cost:
        if result.validation_bound(point.setting)[1] >= result.required_validation - TOLERANCE:
            result.chosen = point
            break
    return result
