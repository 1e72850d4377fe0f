"""A config's fingerprint: batch jobs resume only under the config they ran with, ledger
rows say which config answered, and the cache of verified answers is keyed by it."""

from __future__ import annotations

import hashlib
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
