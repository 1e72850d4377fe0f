"""The plug-in contracts: what a provider and a verifier are, and each optional hook.

All are `runtime_checkable` Protocols: the engine asks `isinstance(verifier, ChecksPartial)`
instead of looking for attributes by name, and a plug-in author gets a type to check
against. Only `Provider.model/complete/aclose` and a verifier's `__call__` are required;
everything else is optional and found by `isinstance`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from cascade.core.routes import Route
from cascade.core.stream_events import StreamEvent
from cascade.core.values import Candidate, Completion, Request, Verdict

ModelT = TypeVar("ModelT")


@runtime_checkable
class Provider(Protocol):
    """One model behind one API. Raises `ProviderError` (transient or permanent) on failure;
    `complete` may also put `cost_usd`/`latency_s` on the completion to override the tier's
    price (a nested cascade does: it knows what its own attempts cost)."""

    model: str

    async def complete(self, request: Request) -> Completion: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StreamingProvider(Provider, Protocol):
    """A provider that can stream: `TextDelta`s (and `StreamStarted`, `InputReported`), then
    `StreamDone` last. A stream that ends without its terminal event raises `StreamCutOff`;
    closing the iterator closes the connection. Providers without it stream their whole
    answer as one piece."""

    def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]: ...


@runtime_checkable
class ConfiguredProvider(Provider, Protocol):
    """A provider that says what it sends with every call: the tier's `params` (whose
    `max_tokens` sets the streaming restart threshold) and whether it asks for structured
    output (then an answer cut off at its token limit is always rejected)."""

    params: Mapping[str, Any]
    structured_output: bool


VerifierResult = Verdict | bool
# A verifier is any callable: a function or an object with `__call__`, sync or async.
Verifier = Callable[[Candidate], VerifierResult | Awaitable[VerifierResult]]


@runtime_checkable
class PreparesRequest(Protocol):
    """Changes what is sent: adds an instruction, attaches a response schema, asks for logprobs."""

    def prepare_request(self, request: Request) -> Request: ...


@runtime_checkable
class CleansOutput(Protocol):
    """Changes what is returned (strips a self-rating). Runs on every answer, before the
    chain and whatever the verdicts: a rejected answer may still be returned as the best."""

    def clean_output(self, text: str) -> str: ...


@runtime_checkable
class ChecksPartial(Protocol):
    """Judges a prefix of a streamed answer; a failed verdict stops the stream early."""

    def check_partial(self, text: str) -> Verdict | None: ...


@runtime_checkable
class CostsToCheck(Protocol):
    """The most checking one answer can cost (a judge's call), for a request of
    `input_tokens` answered in `output_tokens` by a model at `price`; a batch budget
    reserves it before an item starts."""

    def worst_cost_usd(self, input_tokens: int, output_tokens: int, price: Any) -> Decimal: ...


@runtime_checkable
class CallsModels(Protocol[ModelT]):
    """A verifier with models of its own hands each to `wrap` and uses what it returns (a
    batch job puts them behind its rate limits)."""

    def wrap_models(self, wrap: Callable[[ModelT], ModelT]) -> None: ...


@runtime_checkable
class Calibratable(Protocol):
    """A verifier with a `threshold` setting that `cascade calibrate` can fit: the value
    under which an answer passes if and only if its verdict's score reaches `score`."""

    def threshold_for(self, score: float) -> float: ...


@runtime_checkable
class Closable(Protocol):
    """A verifier holding connections of its own; the cascade closes it with its providers."""

    async def aclose(self) -> None: ...


P = TypeVar("P")

# Each optional hook's method. The engine looks a hook up by this name rather than with
# `isinstance`: on Python 3.11 an isinstance check against a Protocol costs ~17 µs (the
# chain makes several per request) and takes any attribute of that name for a method.
HOOK_METHODS: dict[type, str] = {
    PreparesRequest: "prepare_request",
    CleansOutput: "clean_output",
    ChecksPartial: "check_partial",
    CostsToCheck: "worst_cost_usd",
    CallsModels: "wrap_models",
    Calibratable: "threshold_for",
    Closable: "aclose",
}


def hook(obj: object, protocol: type[P]) -> P | None:
    """`obj` as a `protocol` (one of the optional hooks) if it has that hook as a callable,
    else None."""
    return cast(P, obj) if callable(getattr(obj, HOOK_METHODS[protocol], None)) else None


@runtime_checkable
class Router(Protocol):
    """Picks the tier a request's ladder starts at, before any tier is called. `tags` are the
    request's attribution tags (its metadata). It never raises for a model's failure: a
    classifier that cannot label falls back and says so in the route."""

    async def route(self, request: Request, tags: Mapping[str, str]) -> Route: ...
