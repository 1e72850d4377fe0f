"""The verifier protocol and the chain that runs verifiers on a candidate answer.

A verifier is any callable taking a `Candidate` and returning a `Verdict` (or a bool),
synchronously or as an awaitable. Like a structlog processor chain, the chain is a plain
list run in order; by default it stops at the first failure, since later (costlier)
checks cannot change the outcome.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from cascade.secrets import redact
from cascade.types import Candidate, Verdict

VerifierResult = Verdict | bool
Verifier = Callable[[Candidate], VerifierResult | Awaitable[VerifierResult]]


def verifier_name(verifier: Verifier) -> str:
    """`verifier.name` if set, else the function's or class's name."""
    name = getattr(verifier, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(verifier, "__name__", None) or type(verifier).__name__


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
        if stop_at_first_failure and not verdict.passed:
            break
    return tuple(verdicts)
