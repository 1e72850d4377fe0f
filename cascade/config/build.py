"""Builds the runnable plan of a config: provider adapters, tiers, verifier chains.

An SDK is imported only when a tier (or a judge) uses it; a plan built to be checked
(`connect=False`, what `cascade validate` builds) imports none at all when no tier has
`params`, which are checked against the SDK method's signature read from its source.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from cascade.config import CascadeConfig, ModelConfig, TierConfig
from cascade.config.build_router import build_router
from cascade.core.errors import ConfigError
from cascade.core.money import Price, Pricing
from cascade.core.policy import StreamPolicy
from cascade.core.redaction import read_key
from cascade.core.values import Completion, Request
from cascade.protocols import Provider
from cascade.providers.plugins import plugin_provider
from cascade.providers.pricing import CatalogPrice
from cascade.providers.rate_limited import ConfiguredLimit
from cascade.providers.replay import RecordedCosts, ReplayProvider, recorded_file
from cascade.providers.signatures import sdk_parameters
from cascade.runtime.ladder import Tier, TierModel
from cascade.runtime.plan import CascadePlan
from cascade.verification.registry import build_chains

T = TypeVar("T")
# A server of one's own (vLLM, Ollama, a local proxy) usually ignores the key, but the SDKs
# insist on one: with an endpoint other than the provider's and no key set, this stands in.
_LOCAL_PLACEHOLDER_KEY = "not-needed"

# The SDK providers: the environment variable each SDK reads its endpoint from when it is
# given none, and the endpoint it uses when that is not set either (openai/_client.py,
# anthropic/_client.py).
SDK_ENDPOINTS: dict[str, tuple[str, str]] = {
    "openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "anthropic": ("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
}


@dataclass(frozen=True)
class Endpoint:
    """Where a model's calls go, and what said so: "base_url", an environment variable's name,
    or "default" (the provider's own API)."""

    url: str
    source: str

    @property
    def own(self) -> bool:
        """A server other than the provider's (a local one, a proxy): it may need no key."""
        return self.source != "default"


def endpoint_of(config: ModelConfig) -> Endpoint | None:
    """The tier's `base_url`; else, for an SDK provider, its environment variable
    (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`) or its default; None for a provider with no
    endpoint of its own here (simulated, replay, a plug-in without base_url)."""
    if config.base_url:
        return Endpoint(config.base_url, "base_url")
    if config.provider not in SDK_ENDPOINTS:
        return None
    env_var, default = SDK_ENDPOINTS[config.provider]
    url = os.environ.get(env_var)
    return Endpoint(url, env_var) if url else Endpoint(default, "default")


def api_key_of(config: ModelConfig) -> str | None:
    """The key a model's calls send: its environment variable's; for an SDK provider on an
    endpoint of its own, the placeholder when that is not set; None when it is missing."""
    key = read_key(config.key_env) or None
    if key is None and config.provider in SDK_ENDPOINTS:
        endpoint = endpoint_of(config)
        if endpoint is not None and endpoint.own:
            return _LOCAL_PLACEHOLDER_KEY
    return key


def missing_key(config: ModelConfig) -> str | None:
    """The environment variable a model's key should be in, when its calls need one and it is
    not set (they would fail with "no API key")."""
    return config.key_env if config.key_env and api_key_of(config) is None else None


# Set by the cascade itself, never through `params`.
_RESERVED_PARAMS = frozenset({"model", "messages", "stream", "system", "self"})


def check_params(params: dict[str, object], accepted: frozenset[str], where: str) -> None:
    """ConfigError for a `params` key the SDK method does not take (`accepted`), or one
    cascade sets itself: better a clear message at load time than a TypeError on the first call."""
    known = accepted - _RESERVED_PARAMS
    for key in params:
        if key in _RESERVED_PARAMS:
            raise ConfigError(f"{where}.params.{key}: set by cascade itself, not through params")
        if key not in known:
            raise ConfigError(
                f"{where}.params.{key}: not a parameter of this API "
                f"(use extra_body for provider-specific options; known: {', '.join(sorted(known))})"
            )


# SDK clients of one plan, by (provider, base URL, key): tiers on one server share a
# connection pool instead of each opening its own.
SdkClients = dict[tuple[str, str | None, str | None], Any]


def _client(clients: SdkClients | None, key: tuple[str, str | None, str | None], make: Callable[[], T]) -> T:
    if clients is None:
        return make()
    if key not in clients:
        clients[key] = make()
    shared: T = clients[key]
    return shared


class Unconnected:
    """An SDK model in a plan built only to be checked: its name, params and settings, no SDK
    client (nor the SDK itself) behind it. It is never called; a call is a bug."""

    def __init__(self, config: ModelConfig) -> None:
        self.model = config.model
        self.params = dict(config.params)
        self.structured_output = config.structured_output

    async def complete(self, request: Request) -> Completion:
        raise RuntimeError(f"{self.model}: a plan built with connect=False cannot be called")

    async def aclose(self) -> None:
        return None


# False while a plan is built with connect=False: SDK models then come out Unconnected,
# a judge's among them (verifiers build their models through `build_model`).
_CONNECT: ContextVar[bool] = ContextVar("cascade_connect", default=True)


@contextmanager
def _connecting(connect: bool) -> Iterator[None]:
    token = _CONNECT.set(connect)
    try:
        yield
    finally:
        _CONNECT.reset(token)


def build_provider(
    config: ModelConfig, *, where: str = "model", clients: SdkClients | None = None
) -> Provider:
    """The adapter for one configured model. The SDK clients' own retries are off: every
    try is ours to count and bill. Models given the same `clients` share an SDK client
    (and its connection pool) per server and key; each keeps its own timeout."""
    if config.provider == "simulated":
        from cascade.providers.simulated import SimulatedProvider

        try:
            return SimulatedProvider(config.model, examples=config.examples or "builtin")
        except ConfigError as exc:
            raise ConfigError(f"{where}.examples: {exc}") from None
    if config.provider == "replay":
        if not config.records:
            raise ConfigError(f"{where}.records: a replay tier needs a recorded-outcomes file")
        return ReplayProvider(config.model, recorded_file(config.records))
    read_key(config.key_env)  # remembered, so that `redact` hides it whoever sends it (a plug-in too)
    if config.provider not in SDK_ENDPOINTS:
        return plugin_provider(config, where=where)
    connect = _CONNECT.get()
    # checked before the SDK loads: from its source when the plan will not call it
    check_params(config.params, sdk_parameters(config.provider, load=connect), where)
    if not connect:
        return Unconnected(config)
    if config.provider == "openai":
        import openai

        from cascade.providers.openai import OpenAIAdapter

        return _sdk_adapter(config, clients, openai.AsyncOpenAI, OpenAIAdapter)
    import anthropic

    from cascade.providers.anthropic import AnthropicAdapter

    return _sdk_adapter(config, clients, anthropic.AsyncAnthropic, AnthropicAdapter)


def _sdk_adapter(
    config: ModelConfig,
    clients: SdkClients | None,
    make_client: Callable[..., Any],
    adapter: Callable[..., Provider],
) -> Provider:
    """An SDK adapter on a client shared per (provider, endpoint, key), with the model's own
    timeout (`with_options` copies the client but keeps its connection pool). The endpoint is
    passed as the SDK itself would find it (`endpoint_of`), so what `cascade validate` shows is
    where the calls go."""
    key = api_key_of(config)
    endpoint = endpoint_of(config)
    url = endpoint.url if endpoint is not None else None
    client = (
        _client(
            clients,
            (config.provider, url, key),
            lambda: make_client(api_key=key, base_url=url, max_retries=0),
        ).with_options(timeout=config.timeout_s)
        if key
        else None
    )
    return adapter(
        client,
        config.model,
        config.params,
        structured_output=config.structured_output,
        missing_key_env=config.key_env,
    )


def price_of(config: ModelConfig, provider: Provider | None = None) -> Pricing:
    """The tier's own `price:` if set; else, for a replay model whose every recorded answer
    carries its cost, those costs; else the model's list price from genai-prices."""
    if config.price is not None:
        return Price(config.price.input_per_mtok, config.price.output_per_mtok)
    if isinstance(provider, ReplayProvider) and provider.costs_recorded():
        return RecordedCosts()
    try:
        return CatalogPrice(config.model, config.provider)
    except ConfigError as exc:
        if isinstance(provider, ReplayProvider):  # the other way out: record every answer's cost
            raise ConfigError(f"{exc}, or record `cost_usd` with every answer of {config.model}") from None
        raise


def build_model(
    config: ModelConfig | Mapping[str, Any], *, where: str = "model", clients: SdkClients | None = None
) -> TierModel:
    """A callable, priced model from a tier-shaped `model:` mapping (provider, model, base_url,
    price, params, retry, ...; validated here) or a validated ModelConfig. A bad setting, or a
    model without a known price, is a ConfigError naming `where`."""
    if not isinstance(config, ModelConfig):
        config = _model_config(config, where)
    provider = build_provider(config, where=where, clients=clients)  # an unknown provider first
    try:
        price = price_of(config, provider)
    except ConfigError as exc:
        raise ConfigError(f"{where}.price: {exc}") from None
    limits = config.rate_limit
    model = TierModel(provider, price, config.retry, config.idle_timeout_s, limits)
    offline = config.provider in ("replay", "simulated")  # a replay of recorded answers waits for no one
    if (limits.requests_per_minute or limits.tokens_per_minute) and not offline:  # in every mode
        limited = ConfiguredLimit(
            provider,
            requests_per_minute=limits.requests_per_minute,
            tokens_per_minute=limits.tokens_per_minute,
            output_guess=model.max_tokens,
        )
        model = replace(model, provider=limited)
    return model


def _model_config(settings: Mapping[str, Any], where: str) -> ModelConfig:
    try:
        return ModelConfig.model_validate(settings)
    except ValidationError as exc:
        raise ConfigError(
            "; ".join(f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from None


def build_tier(config: TierConfig, *, where: str = "tiers", clients: SdkClients | None = None) -> Tier:
    """A runtime tier: its primary model, then its alternates."""
    models = [build_model(config, where=where, clients=clients)]
    models += [
        build_model(alt, where=f"{where}.alternates.{i}", clients=clients)
        for i, alt in enumerate(config.alternates)
    ]
    return Tier(config.name, tuple(models), config.on_truncated)


def build_plan(
    config: CascadeConfig, *, source: str | None = None, base_dir: Path | None = None, connect: bool = True
) -> CascadePlan:
    """The runnable plan of `config`; errors name `source`. Relative `*_file` paths in
    verifier settings are relative to `base_dir`. With `connect=False` the plan is only to be
    checked: its SDK models (a judge's too) are `Unconnected`, and no SDK is loaded for them."""
    try:
        clients: SdkClients = {}
        with _connecting(connect):
            tiers = tuple(
                build_tier(t, where=f"tiers.{i}", clients=clients) for i, t in enumerate(config.tiers)
            )
            chains = build_chains(config, base_dir=base_dir)
            router = None
            if config.router is not None:
                router = build_router(
                    config.router,
                    tiers,
                    base_dir=base_dir,
                    model=lambda c: build_model(c, where="router.classifier", clients=clients),
                )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
    return CascadePlan(
        tiers=tiers,
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
        router=router,
    )
