"""One call of a cascade, from its arguments to its recorded result: the request and the
plan it needs, the route (where its ladder starts), the cache asked first, and the result
stamped with its id, tags and route and handed to the live loop (ledger, cache, audit,
shadow)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from cascade.core.errors import ExhaustedError
from cascade.core.events import CascadeEvent, StreamDelta, StreamResult
from cascade.core.messages import Prompt, to_request
from cascade.core.policy import STREAM_MODES, StreamMode, StreamPolicy
from cascade.core.routes import Route, out_of_service
from cascade.core.tags import TagError, check_request_id, read_tags
from cascade.core.values import Completion, Request, Result, Usage
from cascade.live.cache import answer_schema, cache_key
from cascade.live.loop import LiveLoop
from cascade.routing.start import check_starts, start_route
from cascade.runtime.attempt import AttemptRunner
from cascade.runtime.drive import drive, result_of
from cascade.runtime.ledger import Ledger
from cascade.runtime.plan import CascadePlan
from cascade.runtime.request_checks import RequestChecks


@dataclass(frozen=True)
class Ask:
    """One call's arguments, as `arun` takes them."""

    prompt: Prompt
    response_model: type[BaseModel] | None = None
    response_format: Mapping[str, Any] | None = None
    system: str | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = None
    min_tier: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, Any] | None = None
    request_id: str | None = None
    cache: bool = True
    start_tier: str | None = None


@dataclass(frozen=True)
class Prepared:
    """One call, ready to run: the request, the plan for it, and how it is recorded."""

    request: Request
    plan: CascadePlan
    request_id: str
    tags: Mapping[str, str]
    cache_key: str | None  # None: the cache is not asked (none configured, or `cache=False`)
    ask: Ask
    route: Route | None = None


class Calls:
    """Prepares and records the calls of one cascade (its plan, and its live loop if any)."""

    def __init__(self, plan: CascadePlan, live: LiveLoop | None) -> None:
        self.plan, self.live = plan, live
        self.checks = RequestChecks()

    async def events(
        self, ask: Ask, run_attempt: AttemptRunner, policy: StreamPolicy | StreamMode | None = None
    ) -> AsyncGenerator[CascadeEvent, None]:
        """The call's events, as `drive` gives them with `run_attempt` (plain calls and
        streams alike), its result recorded; a cached answer comes whole, at once."""
        started = time.perf_counter()
        call = await self.routed(self.prepare(ask))  # a generator: bad input raises on the first event
        plan = with_policy(call.plan, policy)
        hit = self.cached(call)
        if hit is not None:
            yield StreamDelta(hit.output or "", hit.tier or "", hit.model or "")
            yield StreamResult(hit)
            return
        result, ledger = None, Ledger()
        if call.route is not None:  # routing was paid for first: it counts against the budget
            ledger.spent += call.route.cost_usd
        try:
            async with contextlib.aclosing(drive(plan, call.request, run_attempt, ledger)) as events:
                async for event in events:
                    if isinstance(event, StreamResult):
                        result = self.finished(call, event.result, started)
                        event = StreamResult(self.typed(result, ask))  # may raise: recorded already
                    yield event
        except ExhaustedError as exc:  # recorded too: every attempt of it was paid for
            if result is None:
                exc.result = self.finished(call, exc.result, started)
            raise
        except (GeneratorExit, asyncio.CancelledError):  # the caller left: what it paid for stands
            if result is None and (len(ledger) or ledger.spent):  # an attempt, or the routing alone
                self.finished(call, result_of(plan, call.request, ledger, None, False, "abandoned"), started)
            raise

    def typed(self, result: Result, ask: Ask) -> Result:
        """`result` with its `response_model` instance, for a call that asked for one."""
        model = ask.response_model
        return result if model is None else self.checks.typed(result, model)

    def prepare(self, ask: Ask) -> Prepared:
        """The request `ask` means, the plan with the checks it calls for, and its record
        (its route and cache key come with `routed`)."""
        request = to_request(
            ask.prompt, system=ask.system, tools=ask.tools, tool_choice=ask.tool_choice, params=ask.params
        )
        try:
            tags = read_tags(ask.tags)
            check_request_id(ask.request_id)
        except TagError as exc:
            raise ValueError(str(exc)) from None
        names = list(self.plan.tier_rank)
        check_starts(ask.min_tier, ask.start_tier, names)
        plan = self.checked(self.plan, ask, request)
        return Prepared(request, plan, ask.request_id or uuid.uuid4().hex, tags, None, ask)

    async def routed(self, call: Prepared) -> Prepared:
        """`call` from where its route starts it, without the tiers whose alarm is up, and
        with its cache key (which holds the starting tier: a request routed higher is not
        answered from a lower start's cache entry)."""
        ask, plan = call.ask, call.plan
        route = await start_route(
            plan.router,
            call.request,
            call.tags,
            list(plan.tier_rank),
            min_tier=ask.min_tier,
            start_tier=ask.start_tier,
        )
        if route is not None:
            plan = plan.starting_at(route.tier)
        live, key = self.live, None
        if live is not None:
            plan = live.plan_for(plan, call.tags)
            if route is not None and plan.tiers[0].name != route.tier:
                route = out_of_service(route, plan.tiers[0].name)
            if ask.cache and live.cache is not None:
                schema = answer_schema(ask.response_model, ask.response_format)
                start = None if route is None else route.tier
                key = cache_key(call.request, schema=schema, min_tier=start, config=live.digest)
        return replace(call, plan=plan, cache_key=key, route=route)

    def checked(self, plan: CascadePlan, ask: Ask, request: Request) -> CascadePlan:
        """`plan` with the checks `ask` calls for."""
        return self.checks.plan_for(
            plan,
            response_model=ask.response_model,
            response_format=ask.response_format,
            tools=bool(request.tools),
            tool_choice=request.tool_choice,
        )

    def shadowed(self, candidate: CascadePlan, call: Prepared) -> CascadePlan:
        """A shadow cascade's plan for `call`: its checks, from the live call's starting tier
        when the shadow has that tier (it may have other tiers)."""
        plan = self.checked(candidate, call.ask, call.request)
        start = call.route.tier if call.route is not None else None
        return plan.starting_at(start) if start is not None and start in plan.tier_rank else plan

    def cached(self, call: Prepared) -> Result | None:
        """A verified answer from the cache, recorded as the request's (it costs nothing but
        its routing)."""
        if self.live is None:
            return None
        hit = self.live.cached(call.cache_key, call.plan, request_id=call.request_id, tags=call.tags)
        if hit is None:
            return None
        try:
            hit = self.typed(hit, call.ask)
        except ExhaustedError:  # the response model no longer takes it (a validator changed): a miss
            self.live.refuted(call.cache_key)
            return None
        hit = replace(hit, route=call.route)  # the route was taken (and any classifier paid) first
        self.live.finished(
            call.plan, call.request, hit, latency_s=0.0, ts=time.time(), key=None, prepare=lambda p: p
        )
        return hit

    def finished(self, call: Prepared, result: Result, started: float) -> Result:
        """`result` with its id and tags, handed to the live loop (ledger, cache, audit)."""
        result = replace(
            result,
            request_id=call.request_id,
            tags=call.tags,
            cache="miss" if call.cache_key is not None else None,
            route=call.route,
        )
        if self.live is not None:
            self.live.finished(
                call.plan,
                call.request,
                result,
                latency_s=time.perf_counter() - started,
                ts=time.time(),
                key=call.cache_key,
                prepare=lambda candidate: self.shadowed(candidate, call),
            )
        return result


def with_policy(plan: CascadePlan, policy: StreamPolicy | StreamMode | None) -> CascadePlan:
    """`plan` under a stream policy given for one call (a mode's name, or a whole policy)."""
    if isinstance(policy, str):
        if policy not in STREAM_MODES:
            raise ValueError(f"unknown stream policy {policy!r} (known: {', '.join(STREAM_MODES)})")
        return replace(plan, stream_policy=replace(plan.stream_policy, mode=policy))
    return plan if policy is None else replace(plan, stream_policy=policy)


def completion_of(result: Result) -> Completion:
    """A result as a provider's completion (a cascade as a tier of another): the returned
    answer, with the usage and the cost of every attempt (and of routing)."""
    answer = result.returned_attempt
    assert answer is not None  # `arun` returns a result only with an answer in it
    usage = Usage(
        sum(a.usage.input_tokens for a in result.attempts),
        sum(a.usage.output_tokens for a in result.attempts),
        estimated=any(a.usage.estimated for a in result.attempts),
    )
    return Completion(
        text=result.output or "",
        model=answer.model,
        usage=usage,
        finish_reason=answer.finish_reason,
        tool_calls=answer.tool_calls,
        refusal=answer.refusal,
        cost_usd=result.cost.total_usd,
        latency_s=sum(a.latency_s for a in result.attempts),
        queued_s=sum(a.queued_s for a in result.attempts),
    )
