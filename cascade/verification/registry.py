"""Turns `type:` names in config into verifier objects, and entries into per-tier chains.

Built-in and third-party verifiers alike are found through the entry-point group
`cascade.verifiers` (the built-ins come with the `cascade-verifiers` distribution); a
`module:attr` reference is imported directly. A class is instantiated with the config's
other keys as keyword arguments; any other callable is the verifier itself and takes no
settings. `all` and `any` group nested entries.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from cascade.config import CascadeConfig, VerifierConfig
from cascade.core.errors import ConfigError
from cascade.protocols import Verifier
from cascade.verification.chain import AllOf, AnyOf

VERIFIER_GROUP = "cascade.verifiers"
# the types the cascade-verifiers distribution registers: one of them unknown means it is
# not installed, which the error says
BUILTIN_TYPES = frozenset(
    {
        "non_empty",
        "length",
        "hedging",
        "json_schema",
        "self_confidence",
        "logprob",
        "judge",
        "learned",
        "tool_call",
    }
)
BUILTIN_DISTRIBUTION = "cascade-verifiers"
COMBINATORS: dict[str, type[AllOf] | type[AnyOf]] = {"all": AllOf, "any": AnyOf}


def available_verifiers() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=VERIFIER_GROUP))


def resolve(type_name: str, *, where: str = "verifiers", base_dir: Path | None = None) -> Any:
    """The object a verifier `type` names. A `module:attr` module is looked for on the
    import path, then in the config's folder (`base_dir`) and the current directory, as a
    file beside the config is where a reader of the README puts it."""
    if ":" in type_name:
        module_name, _, attr = type_name.partition(":")
        try:
            obj: Any = _import_beside(module_name, [base_dir, Path.cwd()])
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # ImportError, AttributeError, or the module itself failing
            raise ConfigError(
                f"{where}.type: cannot import verifier {type_name!r}: {type(exc).__name__}: {exc}"
            ) from None
        return obj
    matches = entry_points(group=VERIFIER_GROUP, name=type_name)
    if not matches:
        if type_name in BUILTIN_TYPES:
            raise ConfigError(
                f"{where}.type: {type_name!r} is a built-in verifier of the {BUILTIN_DISTRIBUTION} "
                f"package, which is not installed: pip install {BUILTIN_DISTRIBUTION} "
                "(from a checkout of cascade: pip install -e ./verifiers)"
            )
        known = ", ".join(available_verifiers()) or "none installed"
        raise ConfigError(f"{where}.type: unknown verifier type {type_name!r} (known: {known})")
    try:
        return next(iter(matches)).load()
    except Exception as exc:  # a broken plug-in package: say which, don't crash
        raise ConfigError(f"{where}.type: verifier {type_name!r} failed to load: {exc}") from None


def _import_beside(module_name: str, folders: list[Path | None]) -> Any:
    """`module_name` imported from the import path, else from the first of `folders` that
    holds it (added to the path for this import only; the module stays imported)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0]:
            raise  # the module was found, and what it imports was not
        top = module_name.split(".")[0]
        for folder in folders:
            if folder is not None and ((folder / f"{top}.py").is_file() or (folder / top).is_dir()):
                sys.path.insert(0, str(folder))
                try:
                    return importlib.import_module(module_name)
                finally:
                    sys.path.remove(str(folder))
        raise


def build_verifier(
    config: VerifierConfig,
    *,
    tier: str | None = None,
    where: str = "verifiers",
    base_dir: Path | None = None,
) -> Verifier:
    """A ready verifier from one `verifiers:` entry, with `tier`'s overrides applied.

    Settings named `*_file` that hold a relative path are taken relative to `base_dir`
    (the config file's folder), so a config works from any working directory.
    """
    if config.type in COMBINATORS:
        if config.settings or config.overrides:
            raise ConfigError(
                f"{where}: `{config.type}` takes only `verifiers` (and `tiers`/`skip_tiers`); "
                "put settings and overrides on its children"
            )
        children = [
            build_verifier(child, tier=tier, where=f"{where}.verifiers.{i}", base_dir=base_dir)
            for i, child in enumerate(config.verifiers or ())
            if tier is None or child.applies_to(tier)
        ]
        if not config.verifiers:
            raise ConfigError(f"{where}: `{config.type}` needs a non-empty `verifiers` list")
        if not children:
            raise ConfigError(f"{where}: none of `{config.type}`'s verifiers applies on tier {tier!r}")
        return COMBINATORS[config.type](children)
    if config.verifiers is not None:
        raise ConfigError(f"{where}: only `all` and `any` take nested `verifiers`")
    target = resolve(config.type, where=where, base_dir=base_dir)
    settings = {**config.settings, **(config.overrides.get(tier, {}) if tier else {})}
    if base_dir is not None:
        settings = {
            k: str(base_dir / v)
            if k.endswith("_file") and isinstance(v, str) and not Path(v).is_absolute()
            else v
            for k, v in settings.items()
        }
    if isinstance(target, type):
        try:
            built: Verifier = target(**settings)
        except Exception as exc:  # any failure to build from settings is a config problem
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


def build_chains(config: CascadeConfig, *, base_dir: Path | None = None) -> dict[str, tuple[Verifier, ...]]:
    """Each tier's chain: the entries that apply to it, in order, with its overrides.

    An entry without overrides for a tier is built once and shared between tiers, so a
    judge, say, keeps one connection pool.
    """
    shared: dict[int, Verifier] = {}
    chains: dict[str, tuple[Verifier, ...]] = {}
    for tier in config.tiers:
        chain = []
        for i, entry in enumerate(config.verifiers):
            if not entry.applies_to(tier.name):
                continue
            if _tier_specific(entry, tier.name):
                chain.append(build_verifier(entry, tier=tier.name, where=f"verifiers.{i}", base_dir=base_dir))
            else:
                if i not in shared:
                    shared[i] = build_verifier(
                        entry, tier=tier.name, where=f"verifiers.{i}", base_dir=base_dir
                    )
                chain.append(shared[i])
        chains[tier.name] = tuple(chain)
    return chains


def _tier_specific(entry: VerifierConfig, tier: str) -> bool:
    """Does this entry (or a child) build differently on `tier`?"""
    if tier in entry.overrides:
        return True
    return any(
        _tier_specific(child, tier) or child.tiers is not None or child.skip_tiers
        for child in entry.verifiers or ()
    )
