"""The cascade: cheapest model first, verify, escalate only on failure, bill every attempt."""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from cascade._sync import run_sync
from cascade.accounting import baseline_cost
from cascade.config import CascadeConfig, load_config
from cascade.errors import ExhaustedError, ProviderError, ProviderTimeout
from cascade.logging import get_logger
from cascade.policy import START, Position, budget_exhausted, next_position, pick_best
from cascade.retry import call_with_retries
from cascade.secrets import redact
from cascade.tiers import Tier, TierModel
from cascade.tokens import estimate_tokens
from cascade.types import ZERO, Attempt, Candidate, Completion, Outcome, Request, Result, Usage
from cascade.verification import Verifier, run_chain

OnExhausted = Literal["return_best", "raise"]


class Cascade:
    """Sends a request up a ladder of tiers until an answer passes every verifier.

    `arun` is the async core; `run` is its sync twin. Use as a context manager (sync or
    async) or call `close`/`aclose` to release the providers' connections.
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        verifiers: Sequence[Verifier] = (),
        *,
        on_exhausted: OnExhausted = "return_best",
        max_cost_usd: Decimal | None = None,
    ) -> None:
        if not tiers:
            raise ValueError("a cascade needs at least one tier")
        self.tiers = tuple(tiers)
        self.verifiers = tuple(verifiers)
        self.on_exhausted = on_exhausted
        self.max_cost_usd = max_cost_usd
        self._models_per_tier = [len(t.models) for t in self.tiers]
        self._tier_rank = {t.name: i for i, t in enumerate(self.tiers)}
        self._log = get_logger()

    @classmethod
    def from_config(cls, config: CascadeConfig | str | Path) -> Cascade:
        """Build from a config object or a YAML file."""
        from cascade.providers.factory import build_tier
        from cascade.registry import build_verifier

        if not isinstance(config, CascadeConfig):
            config = load_config(config)
        tiers = [build_tier(t, where=f"tiers.{i}") for i, t in enumerate(config.tiers)]
        verifiers = [build_verifier(v, where=f"verifiers.{i}") for i, v in enumerate(config.verifiers)]
        return cls(tiers, verifiers, on_exhausted=config.on_exhausted, max_cost_usd=config.max_cost_usd)

    # -- running -------------------------------------------------------------------------

    async def arun(self, prompt: str | Request, *, system: str | None = None) -> Result:
        """The cascade's answer to `prompt`; raises ExhaustedError per `on_exhausted`."""
        request = prompt if isinstance(prompt, Request) else Request.from_prompt(prompt, system=system)
        ledger: list[Attempt] = []
        position: Position | None = START
        stop_reason = "exhausted"
        while position is not None:
            if budget_exhausted(_spent(ledger), self.max_cost_usd):
                stop_reason = "budget"
                break
            attempt = await self._attempt(request, position, ledger)
            if attempt.outcome is Outcome.ACCEPTED:
                return self._result(request, ledger, len(ledger) - 1, verified=True)
            position = next_position(self._models_per_tier, position, attempt.outcome)
        return self._exhausted(request, ledger, stop_reason)

    def run(self, prompt: str | Request, *, system: str | None = None) -> Result:
        """Sync twin of `arun`."""
        return run_sync(self.arun(prompt, system=system))

    async def _attempt(self, request: Request, at: Position, ledger: list[Attempt]) -> Attempt:
        """Call one model (with retries), verify its answer, and put every try in the ledger."""
        tier = self.tiers[at.tier]
        model = tier.models[at.model]
        try:
            completion, latency, retry = await call_with_retries(
                model.retry, lambda retry: self._call(request, tier, model, retry, ledger)
            )
        except ProviderError:
            return ledger[-1]  # _call recorded the failure
        candidate = Candidate(request, completion, tier.name, at.tier, at.tier == len(self.tiers) - 1)
        verdicts = await run_chain(self.verifiers, candidate)
        accepted = all(v.passed for v in verdicts)
        return self._record(
            ledger,
            Attempt(
                tier=tier.name,
                model=completion.model,
                outcome=Outcome.ACCEPTED if accepted else Outcome.REJECTED,
                usage=completion.usage,
                cost_usd=model.price.cost(completion.usage),
                latency_s=latency,
                verdicts=verdicts,
                output=completion.text,
                retry=retry,
            ),
        )

    async def _call(
        self, request: Request, tier: Tier, model: TierModel, retry: int, ledger: list[Attempt]
    ) -> tuple[Completion, float, int]:
        started = time.perf_counter()
        try:
            completion = await model.provider.complete(request)
        except Exception as exc:
            error = exc if isinstance(exc, ProviderError) else _unexpected(exc)
            # A timed-out request may still be processed and billed: count its input.
            usage = (
                Usage(estimate_tokens(request.text()), 0, estimated=True)
                if isinstance(error, ProviderTimeout)
                else Usage()
            )
            self._record(
                ledger,
                Attempt(
                    tier=tier.name,
                    model=model.model,
                    outcome=Outcome.ERROR,
                    usage=usage,
                    cost_usd=model.price.cost(usage),
                    latency_s=time.perf_counter() - started,
                    error=str(error),
                    retry=retry,
                ),
            )
            raise error from None
        return completion, time.perf_counter() - started, retry

    def _record(self, ledger: list[Attempt], attempt: Attempt) -> Attempt:
        ledger.append(attempt)
        self._log.info(
            "attempt_finished",
            tier=attempt.tier,
            model=attempt.model,
            outcome=str(attempt.outcome),
            retry=attempt.retry,
            input_tokens=attempt.usage.input_tokens,
            output_tokens=attempt.usage.output_tokens,
            usage_estimated=attempt.usage.estimated,
            cost_usd=str(attempt.cost_usd),
            latency_s=round(attempt.latency_s, 4),
            verdicts=[f"{v.verifier}:{'pass' if v.passed else 'fail'}" for v in attempt.verdicts],
            reason=next((v.reason for v in attempt.verdicts if not v.passed), attempt.error),
        )
        return attempt

    # -- results -------------------------------------------------------------------------

    def _result(
        self,
        request: Request,
        ledger: list[Attempt],
        returned: int | None,
        *,
        verified: bool,
        stop_reason: str = "accepted",
    ) -> Result:
        top = self.tiers[-1]
        baseline = baseline_cost(
            ledger,
            returned,
            top.name,
            top.primary.model,
            top.primary.price,
            estimate_tokens(request.text()),
        )
        output = ledger[returned].output if returned is not None else None
        return Result(output, verified, tuple(ledger), returned, baseline, stop_reason)

    def _exhausted(self, request: Request, ledger: list[Attempt], stop_reason: str) -> Result:
        best = pick_best(ledger, self._tier_rank)
        result = self._result(request, ledger, best, verified=False, stop_reason=stop_reason)
        if self.on_exhausted == "return_best" and best is not None:
            self._log.warning("returning_unverified", tier=result.tier, stop_reason=stop_reason)
            return result
        raise ExhaustedError(_exhaustion_message(ledger, stop_reason, self.max_cost_usd), result)

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        for tier in self.tiers:
            for model in tier.models:
                await model.provider.aclose()

    def close(self) -> None:
        run_sync(self.aclose())

    async def __aenter__(self) -> Cascade:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Cascade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spent(ledger: Sequence[Attempt]) -> Decimal:
    return sum((a.cost_usd + a.verification_usd for a in ledger), ZERO)


def _unexpected(exc: Exception) -> ProviderError:
    """A non-provider exception from a provider (a bug, an SDK surprise): fail the call, move on."""
    get_logger().error("provider_raised_unexpectedly", error=repr(exc), exc_info=exc)
    return ProviderError(redact(f"unexpected {type(exc).__name__}: {exc}"))


def _exhaustion_message(ledger: Sequence[Attempt], stop_reason: str, budget: Any) -> str:
    if stop_reason == "budget":
        head = f"the request's budget of ${budget} was spent before an answer was verified"
    elif all(a.outcome is Outcome.ERROR for a in ledger):
        head = "every tier failed"
    else:
        head = "no tier gave an answer that passed the verifiers"
    last_by_model: dict[tuple[str, str], str] = {}
    for a in ledger:
        problem = a.error or next((v.reason for v in a.verdicts if not v.passed), str(a.outcome))
        last_by_model[(a.tier, a.model)] = problem
    details = "; ".join(f"{t} ({m}): {p}" for (t, m), p in last_by_model.items())
    return f"{head}: {details}" if details else head
