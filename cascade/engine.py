"""The cascade: cheapest model first, verify, escalate only on failure, bill every attempt."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from cascade.config import DEFAULT_REASK_PROMPT, CascadeConfig, load_config
from cascade.core.errors import ConfigError, ExhaustedError, ProviderError
from cascade.core.events import AttemptEnd, CascadeEvent, StreamResult
from cascade.core.money import baseline_cost
from cascade.core.policy import (
    STREAM_MODES,
    UNFINISHED,
    Position,
    StreamMode,
    StreamPolicy,
    budget_exhausted,
    pick_best,
    unfinished,
)
from cascade.core.redaction import redact, redact_value
from cascade.core.values import (
    Attempt,
    Candidate,
    Completion,
    Message,
    Outcome,
    Request,
    Result,
    Verdict,
    total_usd,
)
from cascade.logs import get_logger
from cascade.runtime.call import Try, call_model, try_once
from cascade.runtime.drive import BudgetSpent, drive
from cascade.runtime.ladder import Tier
from cascade.runtime.retry import call_with_retries
from cascade.runtime.stream import stream_attempt
from cascade.runtime.sync import run_sync
from cascade.verification.chain import Verifier, clean_output, prepare_request, run_chain

OnExhausted = Literal["return_best", "raise"]


class Cascade:
    """Sends a request up a ladder of tiers until an answer passes every verifier.

    `verifiers` is the chain every tier runs; `chains` replaces it for the tiers it names.
    `reask` is how many times a rejected answer is asked again on the same tier, with the
    failed verdicts' reasons as feedback, before escalating (an int for every tier, or a
    mapping of tier name to count). `arun` is the async core; `run` is its sync twin;
    `astream`/`stream` give the answer as it is generated, under `stream_policy`. Use as a
    context manager (sync or async), or call `close`/`aclose`, to release connections.
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        verifiers: Sequence[Verifier] = (),
        *,
        chains: Mapping[str, Sequence[Verifier]] | None = None,
        on_exhausted: OnExhausted = "return_best",
        max_cost_usd: Decimal | None = None,
        stop_at_first_failure: bool = True,
        reask: int | Mapping[str, int] = 0,
        reask_prompt: str = DEFAULT_REASK_PROMPT,
        stream_policy: StreamPolicy | None = None,
    ) -> None:
        if not tiers:
            raise ValueError("a cascade needs at least one tier")
        self.tiers = tuple(tiers)
        self.verifiers = tuple(verifiers)
        self.chains = {name: tuple(chain) for name, chain in (chains or {}).items()}
        self.on_exhausted = on_exhausted
        self.max_cost_usd = max_cost_usd
        self.stop_at_first_failure = stop_at_first_failure
        self.reask = reask
        self.reask_prompt = reask_prompt
        self.stream_policy = stream_policy or StreamPolicy()
        self.models_per_tier = [len(t.models) for t in self.tiers]
        self._tier_rank = {t.name: i for i, t in enumerate(self.tiers)}
        self._log = get_logger()

    @classmethod
    def from_config(
        cls, config: CascadeConfig | str | Path, *, source: str | None = None, base_dir: Path | None = None
    ) -> Cascade:
        """Build from a config object or a YAML file; errors name `source` (default: the file).

        Relative `*_file` paths in verifier settings are relative to `base_dir` (default:
        the file's folder).
        """
        from cascade.config.build import build_tier
        from cascade.verification.registry import build_chains

        if not isinstance(config, CascadeConfig):
            source, base_dir, config = str(config), base_dir or Path(config).parent, load_config(config)
        try:
            tiers = [build_tier(t, where=f"tiers.{i}") for i, t in enumerate(config.tiers)]
            chains = build_chains(config, base_dir=base_dir)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
        return cls(
            tiers,
            chains=chains,
            on_exhausted=config.on_exhausted,
            max_cost_usd=config.max_cost_usd,
            stop_at_first_failure=not config.run_all_verifiers,
            reask={t.name: config.reask_for(t) for t in config.tiers},
            reask_prompt=config.reask_prompt,
            stream_policy=StreamPolicy(
                config.stream.policy,
                config.stream.restart_threshold_tokens,
                config.stream.restart_threshold_fraction,
            ),
        )

    def with_tiers(self, tiers: Sequence[Tier]) -> Cascade:
        """The same cascade on other tiers (the same names; a batch job wraps each model in
        its rate limiter this way)."""
        return Cascade(
            tiers,
            self.verifiers,
            chains=self.chains,
            on_exhausted=self.on_exhausted,
            max_cost_usd=self.max_cost_usd,
            stop_at_first_failure=self.stop_at_first_failure,
            reask=self.reask,
            reask_prompt=self.reask_prompt,
            stream_policy=self.stream_policy,
        )

    def chain(self, tier: str) -> tuple[Verifier, ...]:
        """The verifiers that judge answers of `tier`."""
        return self.chains.get(tier, self.verifiers)

    def max_reasks(self, tier: str) -> int:
        return self.reask if isinstance(self.reask, int) else self.reask.get(tier, 0)

    # -- running -------------------------------------------------------------------------

    async def arun(self, prompt: str | Request, *, system: str | None = None) -> Result:
        """The cascade's answer to `prompt`; raises ExhaustedError per `on_exhausted`."""
        request = prompt if isinstance(prompt, Request) else Request.from_prompt(prompt, system=system)
        async for event in drive(self, request, self._attempt):
            if isinstance(event, StreamResult):
                return event.result
        raise AssertionError("unreachable: the drive always ends with a result")  # pragma: no cover

    async def astream(
        self,
        prompt: str | Request,
        *,
        system: str | None = None,
        policy: StreamPolicy | StreamMode | None = None,
    ) -> AsyncGenerator[CascadeEvent, None]:
        """The answer as it is generated: `StreamDelta`s, a `StreamRestart` when the cascade
        leaves an attempt, and a `StreamResult` last. `policy` overrides the cascade's."""
        request = prompt if isinstance(prompt, Request) else Request.from_prompt(prompt, system=system)
        if policy is None:
            policy = self.stream_policy
        elif isinstance(policy, str):
            if policy not in STREAM_MODES:
                raise ValueError(f"unknown stream policy {policy!r} (known: {', '.join(STREAM_MODES)})")
            policy = replace(self.stream_policy, mode=policy)
        runner = functools.partial(stream_attempt, self, policy)
        async with contextlib.aclosing(drive(self, request, runner)) as events:
            async for event in events:
                yield event

    def stream(
        self,
        prompt: str | Request,
        *,
        system: str | None = None,
        policy: StreamPolicy | StreamMode | None = None,
    ) -> Iterator[CascadeEvent]:
        """Sync twin of `astream`."""
        events = self.astream(prompt, system=system, policy=policy)
        try:
            while True:
                try:
                    yield run_sync(anext(events))
                except StopAsyncIteration:
                    return
        finally:
            run_sync(events.aclose())

    def run(self, prompt: str | Request, *, system: str | None = None) -> Result:
        """Sync twin of `arun`."""
        return run_sync(self.arun(prompt, system=system))

    def with_feedback(self, asked: Request, rejected: Attempt) -> Request:
        """`asked`, followed by the rejected answer and what was wrong with it."""
        reasons = "; ".join(f"{v.verifier}: {v.reason}" for v in rejected.verdicts if not v.passed)
        return asked.followed_by(
            Message("assistant", rejected.output or ""),
            Message("user", self.reask_prompt.replace("{reasons}", reasons)),  # other braces are text
        )

    async def _attempt(
        self, original: Request, request: Request, at: Position, ledger: list[Attempt], reask: int
    ) -> AsyncGenerator[AttemptEnd, None]:
        """Call one model (with retries), verify its answer, and put every try in the ledger."""
        tier = self.tiers[at.tier]
        model = tier.models[at.model]
        chain = self.chain(tier.name)
        sent = prepare_request(chain, request)

        async def once(retry: int) -> tuple[Try, int]:
            if retry and budget_exhausted(self.spent(ledger), self.max_cost_usd):
                raise BudgetSpent()
            outcome = await try_once(model, sent)
            if outcome.error is not None:
                self.record(
                    ledger,
                    Attempt(
                        tier=tier.name,
                        model=model.model,
                        outcome=Outcome.ERROR,
                        usage=outcome.usage,
                        cost_usd=outcome.cost_usd,
                        latency_s=outcome.latency_s,
                        error=str(outcome.error),
                        error_code=outcome.error.code,
                        retry=retry,
                        reask=reask,
                    ),
                )
                raise outcome.error
            return outcome, retry

        try:
            answered, retry = await call_with_retries(model.retry, once)
        except BudgetSpent:
            yield AttemptEnd(None)
            return
        except ProviderError:
            yield AttemptEnd(ledger[-1])  # `once` recorded the failure
            return
        assert answered.completion is not None  # a try without an error has its answer
        attempt = await self.judge(
            original,
            sent,
            at,
            ledger,
            answered.completion,
            cost_usd=answered.cost_usd,
            latency_s=answered.latency_s,
            retry=retry,
            reask=reask,
        )
        yield AttemptEnd(attempt)

    # -- shared with the loop and the streaming driver ------------------------------------

    async def judge(
        self,
        original: Request,
        sent: Request,
        at: Position,
        ledger: list[Attempt],
        completion: Completion,
        *,
        cost_usd: Decimal,
        latency_s: float,
        retry: int,
        reask: int,
        earlier: tuple[Verdict, ...] = (),
    ) -> Attempt:
        """Run the tier's chain on an answer and record the attempt, accepted or rejected.
        `earlier` are verdicts already reached on the streamed text (a doomed prefix).

        An answer that did not finish (cut off, filtered, a tool call nobody offered) is
        rejected without running the chain: no verifier can make it whole."""
        tier = self.tiers[at.tier]
        model = tier.models[at.model]
        chain = self.chain(tier.name)
        problem = unfinished(
            completion, accept_truncated=tier.on_truncated == "accept" and not model.structured_output
        )
        candidate = Candidate(
            request=original,
            sent=sent,
            completion=completion,
            tier=tier.name,
            tier_index=at.tier,
            is_last_tier=at.tier == len(self.tiers) - 1,
            # the answer as returned, and as a judge is shown it: never with a key in it
            cleaned=redact(clean_output(chain, completion.text)),
            ask=lambda follow_up: call_model(model, follow_up),
        )
        if problem is not None:
            verdicts = (*earlier, Verdict(UNFINISHED, False, problem, score=0.0))
        else:
            verdicts = earlier + await run_chain(
                chain, candidate, stop_at_first_failure=self.stop_at_first_failure
            )
        return self.record(
            ledger,
            Attempt(
                tier=tier.name,
                model=model.model,  # the configured name: servers answer with dated aliases
                outcome=Outcome.ACCEPTED if all(v.passed for v in verdicts) else Outcome.REJECTED,
                usage=completion.usage,
                cost_usd=cost_usd,
                latency_s=latency_s,
                verdicts=verdicts,
                output=candidate.text,
                retry=retry,
                reask=reask,
                finish_reason=completion.finish_reason,
                tool_calls=completion.tool_calls,
                refusal=completion.refusal,
            ),
        )

    @staticmethod
    def spent(ledger: Sequence[Attempt]) -> Decimal:
        """What a request's attempts have cost so far, verification included."""
        return total_usd(ledger)

    def record(self, ledger: list[Attempt], attempt: Attempt) -> Attempt:
        """Put `attempt` in the ledger, with no key left in its answer, reasons or parsed data
        (a model may echo one), and log it."""
        attempt = replace(
            attempt,
            output=None if attempt.output is None else redact(attempt.output),
            verdicts=tuple(
                replace(v, reason=redact(v.reason), parsed=redact_value(v.parsed)) for v in attempt.verdicts
            ),
            error=None if attempt.error is None else redact(attempt.error),
            tool_calls=tuple(replace(c, arguments=redact(c.arguments)) for c in attempt.tool_calls),
            refusal=None if attempt.refusal is None else redact(attempt.refusal),
        )
        ledger.append(attempt)
        self._log.info(
            "attempt_finished",
            tier=attempt.tier,
            model=attempt.model,
            outcome=str(attempt.outcome),
            retry=attempt.retry,
            reask=attempt.reask,
            input_tokens=attempt.usage.input_tokens,
            output_tokens=attempt.usage.output_tokens,
            usage_estimated=attempt.usage.estimated,
            cost_usd=str(attempt.cost_usd),
            verification_usd=str(attempt.verification_usd),
            latency_s=round(attempt.latency_s, 4),
            verdicts=[f"{v.verifier}:{'pass' if v.passed else 'fail'}" for v in attempt.verdicts],
            reason=next((v.reason for v in attempt.verdicts if not v.passed), attempt.error),
        )
        return attempt

    # -- results -------------------------------------------------------------------------

    def result_of(
        self,
        request: Request,
        ledger: list[Attempt],
        returned: int | None,
        *,
        verified: bool,
        stop_reason: str = "accepted",
        degraded: bool = False,
    ) -> Result:
        top = self.tiers[-1]
        baseline = baseline_cost(
            ledger,
            returned,
            top.name,
            top.primary.model,
            top.primary.price,
            request.text(),
        )
        output = ledger[returned].output if returned is not None else None
        return Result(output, verified, tuple(ledger), returned, baseline, stop_reason, degraded)

    def exhausted(self, request: Request, ledger: list[Attempt], stop_reason: str) -> Result:
        best = pick_best(ledger, self._tier_rank)
        result = self.result_of(request, ledger, best, verified=False, stop_reason=stop_reason)
        if self.on_exhausted == "return_best" and best is not None:
            self._log.info("returning_unverified", tier=result.tier, stop_reason=stop_reason)
            return result
        raise ExhaustedError(_exhaustion_message(ledger, stop_reason, self.max_cost_usd), result)

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every provider's connections, and those of verifiers that hold their own."""
        for tier in self.tiers:
            for model in tier.models:
                await model.provider.aclose()
        seen: set[int] = set()
        for verifier in [*self.verifiers, *(v for chain in self.chains.values() for v in chain)]:
            closer = getattr(verifier, "aclose", None)
            if callable(closer) and id(verifier) not in seen:
                seen.add(id(verifier))
                await closer()

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
