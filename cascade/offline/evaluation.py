"""`cascade eval`: a cascade replayed on recorded outcomes, beside what each tier alone, the
top tier alone and the oracle would have done on the same requests.

The cascade runs through the real engine, its verifiers and all: every model answers with
its recorded response (see `cascade.providers.replay`). Accuracy is the share of requests whose
returned answer was recorded `correct`; a request with no answer counts as wrong. The
oracle asks the tiers in order and stops at the first correct answer, paying for every
tier it tried: what a perfect verifier would cost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.config import CascadeConfig
from cascade.core.errors import ExhaustedError
from cascade.core.values import ZERO, Result
from cascade.engine import Cascade
from cascade.providers.replay import Recorded, RecordedSet, ReplayProvider
from cascade.runtime.call import try_once
from cascade.runtime.ladder import Tier, TierModel


@dataclass(frozen=True)
class Point:
    """A strategy's accuracy and cost over the data set."""

    name: str
    accuracy: float
    cost_usd: Decimal
    requests: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "accuracy": round(self.accuracy, 6), "cost_usd": float(self.cost_usd)}


@dataclass
class EvalReport:
    cascade: Point
    wasted_usd: Decimal
    verification_usd: Decimal
    accepted_by_tier: Counter[str]
    unverified: int
    escalated: int
    reached_top: int  # requests that called the top tier at least once
    tiers_alone: list[Point]
    oracle: Point
    worse: int = 0  # requests the top tier alone got right and the cascade wrong
    better: int = 0  # and the other way round
    problems: list[str] = field(default_factory=list)

    @property
    def loss(self) -> float:
        """The accuracy lost against the top tier alone on the same requests."""
        return (self.worse - self.better) / (self.cascade.requests or 1)

    @property
    def top(self) -> Point:
        return self.tiers_alone[-1]

    def to_dict(self) -> dict[str, Any]:
        n = self.cascade.requests or 1
        return {
            "requests": self.cascade.requests,
            "cascade": {
                **self.cascade.to_dict(),
                "wasted_usd": float(self.wasted_usd),
                "verification_usd": float(self.verification_usd),
                "accepted_by_tier": dict(self.accepted_by_tier),
                "unverified": self.unverified,
                "escalation_rate": round(self.escalated / n, 6),
                "top_tier_calls": self.reached_top,
                "loss_against_top": round(self.loss, 6),
                "worse_than_top": self.worse,
                "better_than_top": self.better,
            },
            "tiers_alone": [p.to_dict() for p in self.tiers_alone],
            "top_alone": self.top.to_dict(),
            "oracle": self.oracle.to_dict(),
            "problems": self.problems,
        }


def replaying(cascade: Cascade, recorded: RecordedSet) -> Cascade:
    """The same cascade with every model answering from `recorded` (prices kept)."""
    tiers = [
        replace(
            tier,
            models=tuple(TierModel(ReplayProvider(m.model, recorded), m.price, m.retry) for m in tier.models),
        )
        for tier in cascade.tiers
    ]
    return cascade.with_tiers(tiers)


async def evaluate(
    config: CascadeConfig, recorded: RecordedSet, *, base_dir: Path | None = None
) -> EvalReport:
    """Replay `config` on `recorded`, beside each tier alone and the oracle."""
    async with Cascade.from_config(config, base_dir=base_dir) as live:
        cascade = replaying(live, recorded)
        results = [await _result(cascade, record) for record in recorded]
        singles = [await _tier_alone(tier, recorded) for tier in cascade.tiers]
    return _report(cascade, list(recorded), results, singles, list(recorded.problems))


async def _result(cascade: Cascade, record: Recorded) -> Result:
    try:
        return await cascade.arun(record.request)
    except ExhaustedError as exc:  # every tier failed: a result all the same, wrong
        return exc.result


async def _tier_alone(tier: Tier, recorded: RecordedSet) -> list[tuple[bool, Decimal]]:
    """(correct, cost) of every request sent to this tier's model alone."""
    model = tier.primary
    outcomes = []
    for record in recorded:
        answer = await try_once(model, record.request)
        outcomes.append((answer.error is None and record.correct(model.model) is True, answer.cost_usd))
    return outcomes


def _report(
    cascade: Cascade,
    records: list[Recorded],
    results: list[Result],
    singles: list[list[tuple[bool, Decimal]]],
    problems: list[str],
) -> EvalReport:
    n = len(records)
    correct = [
        r.output is not None and rec.correct(r.model or "") is True
        for rec, r in zip(records, results, strict=True)
    ]
    costs = [r.cost for r in results]
    top_name = cascade.tiers[-1].name
    cascade_point = Point("cascade", _share(sum(correct), n), sum((c.total_usd for c in costs), ZERO), n)
    tiers_alone = [
        Point(
            f"{tier.name} alone ({tier.primary.model})",
            _share(sum(ok for ok, _ in s), n),
            sum((c for _, c in s), ZERO),
            n,
        )
        for tier, s in zip(cascade.tiers, singles, strict=True)
    ]
    oracle_cost, oracle_right = ZERO, 0
    for i in range(n):
        for outcomes in singles:
            ok, cost = outcomes[i]
            oracle_cost += cost
            if ok:
                oracle_right += 1
                break
    top_right = [ok for ok, _ in singles[-1]]
    return EvalReport(
        cascade=cascade_point,
        wasted_usd=sum((c.wasted_usd for c in costs), ZERO),
        verification_usd=sum((c.verification_usd for c in costs), ZERO),
        accepted_by_tier=Counter(r.tier for r in results if r.verified and r.tier),
        unverified=sum(not r.verified for r in results),
        escalated=sum(len({a.tier for a in r.attempts}) > 1 for r in results),
        reached_top=sum(any(a.tier == top_name for a in r.attempts) for r in results),
        tiers_alone=tiers_alone,
        oracle=Point("oracle (a perfect verifier)", _share(oracle_right, n), oracle_cost, n),
        worse=sum(t and not c for t, c in zip(top_right, correct, strict=True)),
        better=sum(c and not t for t, c in zip(top_right, correct, strict=True)),
        problems=problems,
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def run_evaluation(
    config: CascadeConfig, recorded: RecordedSet, *, base_dir: Path | None = None
) -> EvalReport:
    """Sync entry point for the command line."""
    return asyncio.run(evaluate(config, recorded, base_dir=base_dir))
