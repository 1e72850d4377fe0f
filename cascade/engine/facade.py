"""The Cascade facade: run/arun/stream/astream/close/aclose; itself a Provider."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel

from cascade.config import DEFAULT_REASK_PROMPT, CascadeConfig, load_config
from cascade.core.errors import ExhaustedError, PermanentProviderError
from cascade.core.events import CascadeEvent, StreamResult
from cascade.core.messages import Prompt
from cascade.core.policy import StreamMode, StreamPolicy
from cascade.core.values import Completion, Request, Result
from cascade.engine.calls import Ask, Calls, completion_of
from cascade.live.loop import LiveLoop
from cascade.protocols import Closable, Router, Verifier, hook
from cascade.routing.start import close_router
from cascade.runtime import portal
from cascade.runtime.attempt import call_attempt
from cascade.runtime.ladder import Tier
from cascade.runtime.plan import CascadePlan, OnExhausted
from cascade.runtime.request_checks import ModelT
from cascade.runtime.stream import stream_attempt

if TYPE_CHECKING:
    from cascade.integrations.openai_client import CascadeOpenAIClient


class Cascade:
    """Sends a request up a ladder of tiers until an answer passes every verifier.

    `verifiers` is the chain every tier runs; `chains` replaces it for the tiers it names.
    `reask` is how many times a rejected answer is asked again on the same tier, with the
    failed verdicts' reasons as feedback, before escalating (an int for every tier, or a
    mapping of tier name to count). `router` picks the tier each request starts at
    (`cascade.routing`). `arun` is the async core; `run` is its sync twin;
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
        router: Router | None = None,
    ) -> None:
        self._start(
            CascadePlan(
                tiers=tuple(tiers),
                verifiers=tuple(verifiers),
                chains={name: tuple(chain) for name, chain in (chains or {}).items()},
                on_exhausted=on_exhausted,
                max_cost_usd=max_cost_usd,
                stop_at_first_failure=stop_at_first_failure,
                reask=reask,
                reask_prompt=reask_prompt,
                stream_policy=stream_policy or StreamPolicy(),
                router=router,
            )
        )

    def _start(self, plan: CascadePlan, live: LiveLoop | None = None) -> None:
        self.plan = plan
        self.live = live  # the config's ledger, cache, audit and shadow, when it has them
        self._calls = Calls(plan, live)
        self.model = "cascade:" + "+".join(t.name for t in plan.tiers)  # its name as a Provider

    @classmethod
    def from_config(
        cls, config: CascadeConfig | str | Path, *, source: str | None = None, base_dir: Path | None = None
    ) -> Cascade:
        """Build from a config object or a YAML file; errors name `source` (default: the file).

        Relative `*_file` paths in verifier settings are relative to `base_dir` (default:
        the file's folder).
        """
        from cascade.config.build import build_plan  # genai-prices and the SDKs load with it
        from cascade.config.build_live import build_live

        if not isinstance(config, CascadeConfig):
            source, base_dir, config = str(config), base_dir or Path(config).parent, load_config(config)
        plan = build_plan(config, source=source, base_dir=base_dir)
        return cls.from_plan(plan, live=build_live(config, source=source, base_dir=base_dir))

    @classmethod
    def from_plan(cls, plan: CascadePlan, *, live: LiveLoop | None = None) -> Cascade:
        """A cascade running `plan` (a batch job or an evaluation varies a cascade's plan),
        with `live` around each request."""
        cascade = cls.__new__(cls)
        cascade._start(plan, live)
        return cascade

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The ladder, cheapest first."""
        return self.plan.tiers

    def with_tiers(self, tiers: Sequence[Tier]) -> Cascade:
        """The same cascade on other tiers (the same names; a batch job wraps each model in
        its rate limiter this way)."""
        return Cascade.from_plan(replace(self.plan, tiers=tuple(tiers)), live=self.live)

    # -- running -------------------------------------------------------------------------

    @overload
    async def arun(
        self,
        prompt: Prompt,
        *,
        response_model: type[ModelT],
        response_format: None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Result[ModelT]: ...

    @overload
    async def arun(
        self,
        prompt: Prompt,
        *,
        response_model: None = None,
        response_format: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Result: ...

    async def arun(
        self,
        prompt: Prompt,
        *,
        response_model: type[BaseModel] | None = None,
        response_format: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Result:
        """The cascade's answer to `prompt`: a string, a `Request`, or an OpenAI-style
        messages list. `params` (temperature, max_tokens, stop, seed, ...) go to every tier
        over its own. With `response_model`, every tier must give a valid instance of it
        (`result.parsed`; the schema is sent, a failure is reasked and escalated), and no
        valid instance raises ExhaustedError; `response_format` (OpenAI's json_schema or
        json_object) checks the answer against its schema the same way, untyped. `tools`
        (OpenAI-style) let the answer be tool calls (`result.tool_calls`), checked against
        the tools' schemas. `min_tier` starts the ladder at that tier or above (the config's
        router may pick higher: an agent's step after a failed one); `start_tier` starts it
        there, the router not asked.
        Raises ExhaustedError per `on_exhausted`; a malformed input is a ValueError."""
        return await self._answer(
            Ask(
                prompt,
                response_model,
                response_format,
                system,
                tools,
                tool_choice,
                min_tier,
                params,
                tags,
                request_id,
                cache,
                start_tier,
            )
        )

    async def _answer(self, ask: Ask) -> Result:
        async with contextlib.aclosing(self._calls.events(ask, call_attempt)) as events:
            async for event in events:
                if isinstance(event, StreamResult):
                    return event.result
        raise AssertionError("unreachable: the drive always ends with a result")  # pragma: no cover

    def astream(
        self,
        prompt: Prompt,
        *,
        policy: StreamPolicy | StreamMode | None = None,
        response_model: type[BaseModel] | None = None,
        response_format: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> AsyncGenerator[CascadeEvent, None]:
        """The answer as it is generated: `StreamDelta`s, a `StreamRestart` when the cascade
        leaves an attempt, and a `StreamResult` last. `policy` overrides the cascade's; the
        other arguments are `arun`'s. Tool calls come whole, in the result, once verified."""
        ask = Ask(
            prompt,
            response_model,
            response_format,
            system,
            tools,
            tool_choice,
            min_tier,
            params,
            tags,
            request_id,
            cache,
            start_tier,
        )
        return self._calls.events(ask, stream_attempt, policy)

    def stream(
        self,
        prompt: Prompt,
        *,
        policy: StreamPolicy | StreamMode | None = None,
        response_model: type[BaseModel] | None = None,
        response_format: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Iterator[CascadeEvent]:
        """Sync twin of `astream`."""
        ask = Ask(
            prompt,
            response_model,
            response_format,
            system,
            tools,
            tool_choice,
            min_tier,
            params,
            tags,
            request_id,
            cache,
            start_tier,
        )
        events = self._calls.events(ask, stream_attempt, policy)
        try:
            while True:
                try:
                    yield portal.call(lambda: anext(events))
                except StopAsyncIteration:
                    return
        finally:
            if portal.usable():  # a stream left open at exit is not closed: nothing could run it
                portal.call(events.aclose)

    @overload
    def run(
        self,
        prompt: Prompt,
        *,
        response_model: type[ModelT],
        response_format: None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Result[ModelT]: ...

    @overload
    def run(
        self,
        prompt: Prompt,
        *,
        response_model: None = None,
        response_format: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Result: ...

    def run(
        self,
        prompt: Prompt,
        *,
        response_model: type[BaseModel] | None = None,
        response_format: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        min_tier: str | None = None,
        start_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Result:
        """Sync twin of `arun`."""
        ask = Ask(
            prompt,
            response_model,
            response_format,
            system,
            tools,
            tool_choice,
            min_tier,
            params,
            tags,
            request_id,
            cache,
            start_tier,
        )
        return portal.call(lambda: self._answer(ask))

    async def complete(self, request: Request) -> Completion:
        """The cascade as a `Provider` (a tier of another cascade): the returned answer,
        priced at what all its attempts cost. No answer at all is a failed call."""
        try:
            result = await self.arun(request)
        except ExhaustedError as exc:  # a failed call, billed what its attempts cost
            raise PermanentProviderError(str(exc), spent_usd=exc.result.cost.total_usd) from None
        return completion_of(result)

    def openai_client(self) -> CascadeOpenAIClient:
        """This cascade in the shape of `openai.AsyncOpenAI` (`chat.completions.create`), for
        code written for the SDK; closing the client closes the cascade."""
        from cascade.integrations.openai_client import CascadeOpenAIClient  # loads the openai SDK

        return CascadeOpenAIClient(self)

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Let background audits finish and commit the ledger; then close every provider's
        connections, and those of verifiers that hold their own."""
        if self.live is not None:
            await self.live.aclose()
        for tier in self.plan.tiers:
            for model in tier.models:
                await model.provider.aclose()
        for verifier in self.plan.all_verifiers():
            if (closable := hook(verifier, Closable)) is not None:
                await closable.aclose()
        await close_router(self.plan.router)

    def close(self) -> None:
        """Sync twin of `aclose`."""
        portal.call(self.aclose)

    async def __aenter__(self) -> Cascade:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Cascade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
