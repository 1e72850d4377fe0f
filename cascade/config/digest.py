"""A config's fingerprint: batch jobs resume only under the config they ran with, ledger
rows say which config answered, and the cache of verified answers is keyed by it."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from cascade.config.schema import CascadeConfig

# where results are recorded and audited, not how they are made: no part of the fingerprint
LIVE_SECTIONS = {"ledger", "cache", "audit", "shadow"}


def config_digest(config: CascadeConfig, base_dir: Path | None) -> str:
    """The config's fingerprint: its settings, and the contents of the files they name (a
    schema file, a learned verifier's weights, examples, records): editing one of them
    changes the rules as much as editing the config."""
    settings = config.model_dump(exclude=LIVE_SECTIONS)
    digest = hashlib.sha256(config.model_dump_json(exclude=LIVE_SECTIONS).encode())
    for module in sorted(_verifier_modules(settings.get("verifiers") or [])):
        source = module_file(module, base_dir)  # a `module:attr` verifier's code is its rules
        if source is not None:
            digest.update(module.encode())
            digest.update(hashlib.sha256(source.read_bytes()).digest())
    for name in sorted(_files_named(settings)):
        path = Path(name) if Path(name).is_absolute() or base_dir is None else base_dir / name
        digest.update(name.encode())
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"(unreadable)")  # building the cascade will say why
    return digest.hexdigest()


def _files_named(value: Any, key: str = "") -> set[str]:
    """The file names among a config's settings: `*_file` settings, `examples`, `records`."""
    if isinstance(value, dict):
        return set().union(*(_files_named(v, str(k)) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(_files_named(v, key) for v in value))
    named = key.endswith("_file") or key in ("examples", "records")
    return {value} if named and isinstance(value, str) and value != "builtin" else set()


def _verifier_modules(entries: list[Any]) -> set[str]:
    """The modules of `module:attr` verifier types, nested `all`/`any` ones too."""
    found: set[str] = set()
    for entry in entries:
        if isinstance(entry, dict):
            kind = entry.get("type")
            if isinstance(kind, str) and ":" in kind:
                found.add(kind.partition(":")[0])
            found |= _verifier_modules(entry.get("verifiers") or [])
    return found


def module_file(module: str, base_dir: Path | None) -> Path | None:
    """The source file of `module`, as the registry finds it: on the import path, else beside
    the config or in the current directory (None when it is nowhere: building says why)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin and Path(spec.origin).is_file():
        return Path(spec.origin)
    relative = Path(*module.split("."))
    for folder in (base_dir, Path.cwd()):
        if folder is None:
            continue
        for candidate in (folder / relative.with_suffix(".py"), folder / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None
