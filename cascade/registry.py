"""Turns `type:` names in config into verifier objects.

Built-in and third-party verifiers alike are found through the entry-point group
`cascade.verifiers`; a `module:attr` reference is imported directly. A class is
instantiated with the config's other keys as keyword arguments; any other callable is
the verifier itself and takes no settings.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from cascade.config import VerifierConfig
from cascade.errors import ConfigError
from cascade.verification import Verifier

VERIFIER_GROUP = "cascade.verifiers"


def available_verifiers() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=VERIFIER_GROUP))


def resolve(type_name: str) -> Any:
    """The object a verifier `type` names."""
    if ":" in type_name:
        module_name, _, attr = type_name.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import verifier {type_name!r}: {exc}") from None
        return obj
    matches = entry_points(group=VERIFIER_GROUP, name=type_name)
    if not matches:
        known = ", ".join(available_verifiers()) or "none installed"
        raise ConfigError(f"unknown verifier type {type_name!r} (known: {known})")
    try:
        return next(iter(matches)).load()
    except Exception as exc:  # a broken plug-in package: say which, don't crash
        raise ConfigError(f"verifier {type_name!r} failed to load: {exc}") from None


def build_verifier(config: VerifierConfig, *, where: str = "verifiers") -> Verifier:
    """A ready verifier from one `verifiers:` entry."""
    target = resolve(config.type)
    settings = config.settings
    if isinstance(target, type):
        try:
            built: Verifier = target(**settings)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} ({config.type}): {exc}") from None
        return built
    if not callable(target):
        raise ConfigError(f"{where}: {config.type!r} is not callable")
    if settings:
        raise ConfigError(
            f"{where}: {config.type!r} is a plain function and takes no settings "
            f"(got {', '.join(sorted(settings))})"
        )
    plain: Verifier = target
    return plain
