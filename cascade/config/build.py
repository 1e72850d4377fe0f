"""Builds the runnable plan of a config: provider adapters, tiers, verifier chains."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from cascade.config import CascadeConfig, ModelConfig, TierConfig
from cascade.core.errors import ConfigError
from cascade.core.money import Price, Pricing
from cascade.core.policy import StreamPolicy
from cascade.core.redaction import read_key
from cascade.protocols import Provider
from cascade.providers.plugins import plugin_provider
from cascade.providers.pricing import CatalogPrice
from cascade.providers.replay import RecordedCosts, ReplayProvider, recorded_file
from cascade.runtime.ladder import Tier, TierModel
from cascade.runtime.plan import CascadePlan
from cascade.verification.registry import build_chains

T = TypeVar("T")
# An OpenAI-compatible server of one's own (vLLM, Ollama) usually ignores the key, but the
# SDK insists on one: with a base_url and no key set, this stands in.
_LOCAL_PLACEHOLDER_KEY = "not-needed"


# Set by the cascade itself, never through `params`.
_RESERVED_PARAMS = frozenset({"model", "messages", "stream", "system", "self"})


def check_params(params: dict[str, object], method: Callable[..., object], where: str) -> None:
    """ConfigError for a `params` key the SDK method does not take, or one cascade sets itself:
    better a clear message at load time than a TypeError on the first call."""
    accepted = set(inspect.signature(method).parameters) - _RESERVED_PARAMS
    for key in params:
        if key in _RESERVED_PARAMS:
            raise ConfigError(f"{where}.params.{key}: set by cascade itself, not through params")
        if key not in accepted:
            raise ConfigError(
                f"{where}.params.{key}: not a parameter of this API "
                f"(use extra_body for provider-specific options; known: {', '.join(sorted(accepted))})"
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
    key = read_key(config.key_env)
    if config.provider == "openai":
        import openai
        from openai.resources.chat.completions import AsyncCompletions

        from cascade.providers.openai import OpenAIAdapter

        check_params(config.params, AsyncCompletions.create, where)
        if key is None and config.base_url:
            key = _LOCAL_PLACEHOLDER_KEY
        return _sdk_adapter(config, key, clients, openai.AsyncOpenAI, OpenAIAdapter)
    if config.provider == "anthropic":
        import anthropic
        from anthropic.resources.messages import AsyncMessages

        from cascade.providers.anthropic import AnthropicAdapter

        check_params(config.params, AsyncMessages.create, where)
        return _sdk_adapter(config, key, clients, anthropic.AsyncAnthropic, AnthropicAdapter)
    return plugin_provider(config, where=where)


def _sdk_adapter(
    config: ModelConfig,
    key: str | None,
    clients: SdkClients | None,
    make_client: Callable[..., Any],
    adapter: Callable[..., Provider],
) -> Provider:
    """An SDK adapter on a client shared per (provider, base URL, key), with the model's own
    timeout (`with_options` copies the client but keeps its connection pool)."""
    client = (
        _client(
            clients,
            (config.provider, config.base_url, key),
            lambda: make_client(api_key=key, base_url=config.base_url, max_retries=0),
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
    return TierModel(provider, price, config.retry, config.idle_timeout_s, config.rate_limit)


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
    config: CascadeConfig, *, source: str | None = None, base_dir: Path | None = None
) -> CascadePlan:
    """The runnable plan of `config`; errors name `source`. Relative `*_file` paths in
    verifier settings are relative to `base_dir`."""
    try:
        clients: SdkClients = {}
        tiers = tuple(build_tier(t, where=f"tiers.{i}", clients=clients) for i, t in enumerate(config.tiers))
        chains = build_chains(config, base_dir=base_dir)
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
    )
