"""The shadow audit: a sampled share of the answers accepted below the top tier, checked
in the background against the top tier's answer (or a judge's verdict), never changing
the answer and never keeping the caller waiting. Each audit is a row of the ledger (billed
as `audit_usd`), a labelled pair in the recorded-outcomes format (for `eval` and
`calibrate`), and one more observation of the tier's false-accept estimate, whose alarm
it may raise (`cascade.live.drift`)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from cascade.config.live import AuditConfig
from cascade.core.errors import ExhaustedError
from cascade.core.recorded import recorded_request, recorded_response
from cascade.core.redaction import redact
from cascade.core.values import Candidate, Completion, Request, Result, Usage
from cascade.live.agreement import agree
from cascade.live.answer import answer
from cascade.live.background import Background, DailyBudget, has_room
from cascade.live.drift import Change, DriftMonitor, Group, groups_of
from cascade.live.rows import Row, day_of, money, tags_json
from cascade.live.writer import LedgerWriter
from cascade.logs import get_logger
from cascade.protocols import Verifier
from cascade.runtime.plan import CascadePlan
from cascade.verification.chain import run_verifier

NO_REFERENCE = {
    "judge": "the judge gave no verdict",
    "top": "the top tier's answer did not pass its own checks",
}


class Auditor:
    """Samples accepted answers, audits them in the background, and keeps the estimates."""

    def __init__(
        self,
        config: AuditConfig,
        *,
        ledger: LedgerWriter,
        digest: str,  # the config's, as the ledger's rows name it
        monitor: DriftMonitor,
        budget: DailyBudget,
        judge: Verifier | None = None,
    ) -> None:
        self.config, self.ledger, self.digest, self.monitor, self.judge = (
            config,
            ledger,
            digest,
            monitor,
            judge,
        )
        self.background = Background("audit", max_in_flight=config.max_in_flight, budget=budget)
        self._random = random.Random(config.seed)
        # told of an answer the audit disagreed with (the cache takes it out)
        self.on_refuted: Callable[[str | None], None] = lambda key: None

    def eligible(self, plan: CascadePlan, result: Result) -> bool:
        """An answer accepted, freshly, below the top tier: the answers an audit can doubt."""
        return (
            result.verified
            and result.cache != "hit"
            and result.tier is not None
            and result.tier != plan.tiers[-1].name
        )

    def consider(self, plan: CascadePlan, request: Request, result: Result, key: str | None = None) -> bool:
        """Audit `result` in the background if it is sampled; whether an audit started.
        `key` is its cache entry's, taken out if the audit disagrees with it."""
        if not self.eligible(plan, result) or self._random.random() >= self.config.sample:
            return False
        if self.judge is None and not has_room(replace(plan, tiers=plan.tiers[-1:]), request):
            self.background.counts.skipped_busy += 1
            return False
        return self.background.start(self._audit(plan, request, result, key))

    def drifted(self, tier: str, tags: Mapping[str, str]) -> bool:
        """Is the alarm up for `tier`, as a whole or for one of `tags`' slices?"""
        return any(self.monitor.state(group) == "drift" for group in groups_of(tier, tags))

    async def _audit(self, plan: CascadePlan, request: Request, result: Result, key: str | None) -> None:
        assert result.tier is not None and result.returned_attempt is not None
        try:
            agreed, cost, reference = await self._check(plan, request, result)
            error = None if agreed is not None else NO_REFERENCE[self.config.against]
        except ExhaustedError as exc:  # the reference gave no answer at all: no verdict either way
            agreed, cost, reference, error = None, exc.result.cost.total_usd, None, redact(str(exc))
        self.background.budget.spend(cost)
        now = time.time()
        pair = None if agreed is None else self._pair(request, result, agreed, reference)
        self.ledger.put(
            [
                Row.of(
                    "audits",
                    request_id=result.request_id,
                    ts=now,
                    day=day_of(now),
                    config=self.digest,
                    tier=result.tier,
                    model=result.model,
                    against=self.config.against,
                    agreed=agreed,
                    audit_usd=money(cost),
                    tags=tags_json(result.tags),
                    pair=pair,
                    error=error,
                )
            ]
        )
        if agreed is False:
            self.on_refuted(key)
        if agreed is not None:
            for change in self.monitor.observe(groups_of(result.tier, result.tags), agreed):
                self._alarm(change, now)

    async def _check(
        self, plan: CascadePlan, request: Request, result: Result
    ) -> tuple[bool | None, Decimal, Result | None]:
        """(agreed, what the check cost, the top tier's result when it was asked). A judge's
        verdict without a score is its call failing (the judge verifier scores every verdict
        it reaches): no verdict either way, not a disagreement."""
        if self.judge is not None:
            answer_attempt = result.returned_attempt
            assert answer_attempt is not None
            completion = Completion(
                result.output or "", answer_attempt.model, Usage(), answer_attempt.finish_reason
            )
            candidate = Candidate(request, completion, answer_attempt.tier)
            verdict = await run_verifier(self.judge, candidate)
            return (None if verdict.score is None else verdict.passed), verdict.cost_usd, None
        # the top tier alone, through its own chain; its best answer stands even unverified
        top = replace(plan, tiers=plan.tiers[-1:], on_exhausted="return_best", max_cost_usd=None)
        reference = await answer(top, request)
        if not reference.verified:  # its own checks rejected it: no reference to judge by
            return None, reference.cost.total_usd, reference
        return agree(result, reference, self.config.match), reference.cost.total_usd, reference

    def _pair(self, request: Request, result: Result, agreed: bool, reference: Result | None) -> str:
        """The audited pair as a recorded line: the answer labelled by its agreement, the
        top tier's answer labelled correct (it is the reference)."""
        line = recorded_request(request, result.request_id or "")
        answered = result.returned_attempt
        assert answered is not None
        responses = {answered.model: recorded_response(answered.to_dict(), correct=agreed)}
        if (
            reference is not None
            and (top := reference.returned_attempt) is not None
            and top.model not in responses
        ):
            responses[top.model] = recorded_response(top.to_dict(), correct=True)
        line["responses"] = responses
        line["metadata"] = {
            "audit": {"tier": result.tier, "against": self.config.against},
            "tags": dict(result.tags),
        }
        return redact(json.dumps(line, ensure_ascii=False))

    def announce(self, groups: list[Group]) -> None:
        """Raise, again, the alarms of `groups` (in drift as the ledger's audits are replayed)."""
        now = time.time()
        for group in groups:
            self._alarm(Change(group, "warming", "drift", self.monitor.estimate(group)), now)

    def _alarm(self, change: Change, now: float) -> None:
        tier, group = change.group
        estimate = change.estimate
        fields = {
            "tier": tier,
            "group": group or "(all)",
            "audited": estimate.audited,
            "disagreements": estimate.disagreements,
            "upper_bound": round(estimate.upper, 4),
            "limit": self.config.max_false_accept,
            "action": self.config.on_drift,
        }
        if change.new == "drift":
            get_logger().warning("drift_alarm", **fields)
        else:
            get_logger().info("drift_cleared", **fields)
        self.ledger.put(
            [
                Row.of(
                    "alarms",
                    ts=now,
                    config=self.digest,
                    tier=tier,
                    grp=group,
                    kind="drift" if change.new == "drift" else "recovered",
                    bound=estimate.upper,
                    audited=estimate.audited,
                    disagreements=estimate.disagreements,
                )
            ]
        )


def restore(monitor: DriftMonitor, audits: list[dict[str, Any]], alarms: list[dict[str, Any]]) -> None:
    """Feed `monitor` the ledger's past audits (oldest first), each group's since its alarm
    was last cleared by hand (`cascade audit --clear`). An alarm belongs to a tier and a
    slice, whatever else of the config changed since: only a clear ends it."""
    cleared = cleared_at(alarms)
    for audit in audits:
        if audit["agreed"] is None:
            continue
        tags = audit["tags"] if isinstance(audit["tags"], dict) else {}
        ts = float(audit["ts"])
        groups = [
            g
            for g in groups_of(str(audit["tier"]), tags)
            if ts > max(cleared.get(g, 0.0), cleared.get((g[0], ""), 0.0))
        ]
        monitor.observe(groups, bool(audit["agreed"]))


def cleared_at(alarms: list[dict[str, Any]]) -> dict[Group, float]:
    """When each group's alarm was last cleared by hand."""
    cleared: dict[Group, float] = {}
    for alarm in alarms:
        if alarm["kind"] == "cleared":
            key = (str(alarm["tier"]), str(alarm["grp"] or ""))
            cleared[key] = max(cleared.get(key, 0.0), float(alarm["ts"]))
    return cleared


def unannounced(monitor: DriftMonitor, alarms: list[dict[str, Any]]) -> list[Group]:
    """The groups `monitor` holds in drift with no open alarm in the ledger (the audits that
    raise it again came after a clear): a restart must say so, as the running cascade would."""
    last: dict[Group, str] = {}
    for alarm in alarms:  # oldest first
        last[(str(alarm["tier"]), str(alarm["grp"] or ""))] = str(alarm["kind"])
    return [g for g in monitor.groups() if monitor.state(g) == "drift" and last.get(g) != "drift"]
