"""How results look on a terminal (rich) and as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console

from cascade.events import StreamRestart
from cascade.secrets import redact
from cascade.types import Attempt, Outcome, Result

_MARK = {
    Outcome.ACCEPTED: "[green]✓[/]",
    Outcome.REJECTED: "[yellow]✗[/]",
    Outcome.ERROR: "[red]![/]",
    Outcome.ABORTED: "[red]✗ (stopped early)[/]",
}


def to_json(data: dict[str, Any]) -> str:
    """`data` as one JSON line, with no key in it (a key holds no character JSON escapes, so
    redacting the line keeps it JSON)."""
    return redact(json.dumps(data, ensure_ascii=False))


def usd(amount: Decimal) -> str:
    return f"${amount:.6f}"


def path_of(attempts: Sequence[Attempt]) -> str:
    """`small ✗ hedging → large ✓`: which models were tried and why each was left."""
    steps = []
    for a in attempts:
        why = ""
        if a.outcome in (Outcome.REJECTED, Outcome.ABORTED):
            why = " " + next((v.verifier for v in a.verdicts if not v.passed), "")
        elif a.outcome is Outcome.ERROR:
            why = " " + (a.error or "error").split(":")[0]
        steps.append(f"{a.tier} {_MARK[a.outcome]}{why}")
    return " → ".join(steps)


def restart_notice(event: StreamRestart) -> str:
    """A restart as a person should see it: what was shown above is withdrawn, and why."""
    where = f"restarting on {event.to_tier}" if event.to_tier else "no tier left"
    void = f"the {event.void_chars} characters above are withdrawn; " if event.void_chars else ""
    return f"[yellow]⟲ {event.from_tier} failed ({event.reason}): {void}{where}[/]"


def print_result(console: Console, result: Result) -> None:
    """A short account of one result (the answer itself goes to stdout separately)."""
    cost = result.cost
    status = "[green]verified[/]" if result.verified else "[yellow]UNVERIFIED[/]"
    if result.degraded:
        status = "[red]DEGRADED (failed a check after it was shown)[/]"
    console.print(f"{status} answer from [bold]{result.tier}[/] ({result.model})")
    console.print(f"path: {path_of(result.attempts)}")
    for a in result.attempts:
        for v in a.verdicts:
            if not v.passed:
                console.print(f"  [dim]{a.tier}/{v.verifier}:[/] {v.reason}", highlight=False)
        if a.error:
            console.print(f"  [dim]{a.tier} ({a.model}) try {a.retry + 1}:[/] {a.error}", highlight=False)
    console.print(
        f"cost {usd(cost.total_usd)} (wasted {usd(cost.wasted_usd)}, verification "
        f"{usd(cost.verification_usd)}); top tier alone ≈ {usd(cost.baseline_usd)}, "
        f"saved {usd(cost.saved_usd)}"
    )
