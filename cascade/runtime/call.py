"""One call to one model, priced: the unit both the engine and model-calling verifiers use."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from decimal import Decimal

from cascade.core.errors import ProviderError, ProviderTimeout
from cascade.core.redaction import redact
from cascade.core.tokens import count_tokens
from cascade.core.values import ZERO, Completion, ModelCall, Request, Usage
from cascade.logs import get_logger
from cascade.runtime.ladder import TierModel
from cascade.runtime.retry import call_with_retries


@dataclass(frozen=True)
class Try:
    """The outcome of a single call: an answer or an error, with what it cost."""

    completion: Completion | None
    error: ProviderError | None
    usage: Usage
    cost_usd: Decimal
    latency_s: float  # the provider's, without `queued_s`: the wait for a rate limit
    queued_s: float = 0.0


async def try_once(model: TierModel, request: Request) -> Try:
    """Call `model` once. Never raises a provider's failure: it comes back as `error`.

    A timed-out request may still be processed and billed by the provider, so its input
    tokens are counted (estimated). Anything else that fails was not billed.
    """
    started = time.perf_counter()
    try:
        completion = await model.provider.complete(request)
    except Exception as exc:
        error = exc if isinstance(exc, ProviderError) else unexpected_error(exc)
        usage = (
            Usage(count_tokens(request.text(), model.model), 0, estimated=True)
            if isinstance(error, ProviderTimeout)
            else Usage()
        )
        cost = model.price.cost(usage) if error.spent_usd is None else error.spent_usd
        waited = error.queued_s
        return Try(None, error, usage, cost, time.perf_counter() - started - waited, waited)
    usage = completion.usage
    cost = model.price.cost(usage) if completion.cost_usd is None else completion.cost_usd
    waited = completion.queued_s
    latency = time.perf_counter() - started - waited if completion.latency_s is None else completion.latency_s
    return Try(completion, None, usage, cost, latency, waited)


async def call_model(model: TierModel, request: Request) -> ModelCall:
    """Call `model` with its retry policy; the cost covers every try, failed ones included."""
    tries: list[Try] = []

    async def once(_: int) -> Completion:
        result = await try_once(model, request)
        tries.append(result)
        if result.error is not None:
            raise result.error
        assert result.completion is not None
        return result.completion

    try:
        completion = await call_with_retries(model.retry_strategy, once)
    except ProviderError as exc:
        return ModelCall(None, sum((t.cost_usd for t in tries), ZERO), str(exc))
    return ModelCall(completion, sum((t.cost_usd for t in tries), ZERO))


def unexpected_error(exc: Exception) -> ProviderError:
    """A non-provider exception from a provider (a bug, an SDK surprise): fail the call, move on."""
    # No traceback unless asked for: frames hold request headers, and so the API key.
    get_logger().error(
        "provider_raised_unexpectedly",
        error=redact(repr(exc)),
        exc_info=exc if os.environ.get("CASCADE_DEBUG") else None,
    )
    return ProviderError(redact(f"unexpected {type(exc).__name__}: {exc}"))
