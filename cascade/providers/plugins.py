"""Providers from other packages: the `cascade.providers` entry-point group.

A package registers a factory under a name (`echo = mypkg:make_provider`); a tier with
`provider: echo` is built by calling it with the tier's `ModelConfig` (model, base_url,
params, ...). What it returns must be a `cascade.Provider`. The config schema already
refused names no package registers; this builds the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from cascade.config import ModelConfig
from cascade.config.schema import PROVIDER_GROUP, known_providers
from cascade.core.errors import ConfigError
from cascade.core.redaction import redact
from cascade.protocols import Provider


def plugin_provider(config: ModelConfig, *, where: str) -> Provider:
    """The provider a plug-in's factory builds for `config`; any failure is a ConfigError."""
    matches = entry_points(group=PROVIDER_GROUP, name=config.provider)
    if not matches:
        known = ", ".join(known_providers())
        raise ConfigError(f"{where}.provider: unknown provider {config.provider!r} (known: {known})")
    try:
        factory: Callable[[ModelConfig], object] = next(iter(matches)).load()
        provider = factory(config)
    except Exception as exc:  # a broken plug-in package: say which, don't crash
        problem = redact(f"{exc}")  # a plug-in's message may hold the key it was given
        raise ConfigError(
            f"{where}.provider: provider {config.provider!r} failed to load: {problem}"
        ) from None
    if not isinstance(provider, Provider):
        raise ConfigError(
            f"{where}.provider: {config.provider!r} built a {type(provider).__name__}, which is not a "
            "cascade.Provider (it needs `model`, `async complete(request)` and `async aclose()`)"
        )
    return provider
