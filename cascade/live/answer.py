"""Answering a request once more, beside the live one: the plain drive of a plan to its
result (an audit's reference, a shadow cascade's answer)."""

from __future__ import annotations

import contextlib

from cascade.core.events import StreamResult
from cascade.core.values import Request, Result
from cascade.runtime.attempt import call_attempt
from cascade.runtime.drive import drive
from cascade.runtime.plan import CascadePlan


async def answer(plan: CascadePlan, request: Request) -> Result:
    """`plan`'s result for `request` (ExhaustedError as the plan says)."""
    async with contextlib.aclosing(drive(plan, request, call_attempt)) as events:
        async for event in events:
            if isinstance(event, StreamResult):
                return event.result
    raise AssertionError("unreachable: the drive always ends with a result")  # pragma: no cover
