"""The chain that runs verifiers on a candidate, their optional hooks, and the combinators.

A verifier is any callable taking a `Candidate` and returning a `Verdict` (or a bool),
synchronously or as an awaitable (`cascade.protocols.Verifier`). Like a structlog
processor chain, the chain is a plain list run in order; by default it stops at the
first failure, since later (costlier) checks cannot change the outcome.

The optional hooks (`PreparesRequest`, `CleansOutput`, `ChecksPartial`, `CostsToCheck`,
`CallsModels` in `cascade.protocols`) are found with `protocols.hook`. A hook that raises or
returns the wrong type is skipped: a broken plug-in must not crash the cascade. Every
verifier's `clean_output` runs on every answer, before the chain, whatever the verdicts:
a rejected answer may still be returned as the best one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from cascade.core.policy import keep_checking
from cascade.core.redaction import redact
from cascade.core.values import ZERO, Candidate, Request, Verdict
from cascade.logs import get_logger
from cascade.protocols import (
    CallsModels,
    ChecksPartial,
    CleansOutput,
    CostsToCheck,
    PreparesRequest,
    Verifier,
    hook,
)

if TYPE_CHECKING:
    from cascade.runtime.ladder import TierModel

T = TypeVar("T")


def verifier_name(verifier: Verifier) -> str:
    """`verifier.name` if set, else the function's or class's name."""
    name = getattr(verifier, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(verifier, "__name__", None) or type(verifier).__name__


def prepare_request(verifiers: Sequence[Verifier], request: Request) -> Request:
    """`request` as every verifier of the chain wants it sent (a hook that fails is skipped)."""
    for verifier in verifiers:
        if (preparer := hook(verifier, PreparesRequest)) is not None:
            request = _apply_hook(verifier, "prepare_request", preparer.prepare_request, request, Request)
    return request


def clean_output(verifiers: Sequence[Verifier], text: str) -> str:
    """The answer as it will be returned, after every verifier's `clean_output` (a hook that
    fails is skipped)."""
    for verifier in verifiers:
        if (cleaner := hook(verifier, CleansOutput)) is not None:
            text = _apply_hook(verifier, "clean_output", cleaner.clean_output, text, str)
    return text


def _apply_hook(
    verifier: Verifier, hook_name: str, hook: Callable[[T], object], value: T, kind: type[T]
) -> T:
    """`hook(value)`, or `value` unchanged when it raises or returns the wrong type."""
    try:
        changed = hook(value)
    except Exception as exc:
        get_logger().warning(
            "verifier_hook_failed", verifier=verifier_name(verifier), hook=hook_name, error=redact(repr(exc))
        )
        return value
    if not isinstance(changed, kind):
        get_logger().warning(
            "verifier_hook_failed",
            verifier=verifier_name(verifier),
            hook=hook_name,
            error=f"returned {type(changed).__name__}, not {kind.__name__}",
        )
        return value
    return changed


def check_partial(verifiers: Sequence[Verifier], text: str) -> Verdict | None:
    """The first failed verdict of a verifier that can already judge this prefix of an
    answer (hedging, JSON that can no longer become valid, length limits), or None.
    A check that raises on a prefix is ignored: the whole answer is checked anyway."""
    for verifier in verifiers:
        checker = hook(verifier, ChecksPartial)
        if checker is None:
            continue
        try:
            verdict = checker.check_partial(text)
        except Exception:
            continue
        if isinstance(verdict, Verdict) and not verdict.passed:
            return verdict
    return None


def worst_cost_usd(
    verifiers: Sequence[Verifier], input_tokens: int, output_tokens: int, price: Any
) -> Decimal:
    """The most the chain's own model calls can cost on one answer (their `worst_cost_usd`)."""
    total = ZERO
    for verifier in verifiers:
        if (costly := hook(verifier, CostsToCheck)) is not None:
            total += Decimal(costly.worst_cost_usd(input_tokens, output_tokens, price))
    return total


def wrap_models(verifiers: Sequence[Verifier], wrap: Callable[[TierModel], TierModel]) -> None:
    """Let every verifier of the chain that calls models of its own put them behind `wrap`."""
    for verifier in verifiers:
        if (caller := hook(verifier, CallsModels)) is not None:
            caller.wrap_models(wrap)


async def run_verifier(verifier: Verifier, candidate: Candidate) -> Verdict:
    """Run one verifier; a verifier that raises or returns junk fails with that as its reason."""
    name = verifier_name(verifier)
    try:
        outcome = verifier(candidate)
        if inspect.isawaitable(outcome):
            outcome = await outcome
    except Exception as exc:  # a broken plug-in must not crash the cascade: it fails the check
        return Verdict(name, False, redact(f"verifier raised {type(exc).__name__}: {exc}"))
    if isinstance(outcome, Verdict):
        return outcome
    if isinstance(outcome, bool):
        return Verdict(name, outcome, "passed" if outcome else "failed")
    return Verdict(name, False, f"verifier returned {type(outcome).__name__}, not a Verdict or bool")


async def run_chain(
    verifiers: Sequence[Verifier], candidate: Candidate, *, stop_at_first_failure: bool = True
) -> tuple[Verdict, ...]:
    """Verdicts of the chain on `candidate`, in order."""
    verdicts: list[Verdict] = []
    for verifier in verifiers:
        verdict = await run_verifier(verifier, candidate)
        verdicts.append(verdict)
        if not keep_checking(verdict.passed, stop_at_first_failure=stop_at_first_failure):
            break
    return tuple(verdicts)


class _Group:
    """Shared by the combinators: children's hooks pass through, their costs add up."""

    name: str

    def __init__(self, verifiers: Sequence[Verifier], name: str | None = None) -> None:
        if not verifiers:
            raise ValueError(f"`{type(self).__name__}` needs at least one verifier")
        self.verifiers = tuple(verifiers)
        if name:
            self.name = name

    def prepare_request(self, request: Request) -> Request:
        return prepare_request(self.verifiers, request)

    def clean_output(self, text: str) -> str:
        return clean_output(self.verifiers, text)

    def worst_cost_usd(self, input_tokens: int, output_tokens: int, price: Any) -> Decimal:
        return worst_cost_usd(self.verifiers, input_tokens, output_tokens, price)

    def wrap_models(self, wrap: Callable[[TierModel], TierModel]) -> None:
        wrap_models(self.verifiers, wrap)

    def check_partial(self, text: str) -> Verdict | None:
        failures = [check_partial([v], text) for v in self.verifiers]
        failed = [f for f in failures if f is not None]
        # all: one doomed child dooms the group; any: only when every child is doomed
        if failed and (isinstance(self, AllOf) or len(failed) == len(self.verifiers)):
            return self._combine(False, failed)
        return None

    def _combine(self, passed: bool, verdicts: Sequence[Verdict]) -> Verdict:
        reasons = "; ".join(f"{v.verifier}: {'pass' if v.passed else 'fail'} ({v.reason})" for v in verdicts)
        scores = [v.score for v in verdicts if v.score is not None]
        return Verdict(
            self.name,
            passed,
            reasons,
            score=(min(scores) if isinstance(self, AllOf) else max(scores)) if scores else None,
            cost_usd=sum((v.cost_usd for v in verdicts), ZERO),
            parsed=next((v.parsed for v in verdicts if v.parsed is not None), None),
        )


class AllOf(_Group):
    """Passes when every child passes; stops at the first failure."""

    name = "all"

    async def __call__(self, candidate: Candidate) -> Verdict:
        verdicts = await run_chain(self.verifiers, candidate)
        return self._combine(all(v.passed for v in verdicts), verdicts)


class AnyOf(_Group):
    """Passes when one child passes; stops at the first pass."""

    name = "any"

    async def __call__(self, candidate: Candidate) -> Verdict:
        verdicts: list[Verdict] = []
        for verifier in self.verifiers:
            verdicts.append(await run_verifier(verifier, candidate))
            if verdicts[-1].passed:
                break
        return self._combine(any(v.passed for v in verdicts), verdicts)
