"""API keys: read from the environment, and kept out of every log, result and error."""

from __future__ import annotations

import os
import re

_known: set[str] = set()
_MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


def read_key(env_var: str | None) -> str | None:
    """The key in `env_var`, remembered so that `redact` can hide it later."""
    if not env_var:
        return None
    value = os.environ.get(env_var)
    if value and len(value) >= _MIN_SECRET_LEN:
        _known.add(value)
    return value


# Key-shaped tokens a server might echo back (`sk-...`, `sk-ant-...`), even ones we never read.
_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,})")


def redact(text: str) -> str:
    """`text` with every known key, and anything shaped like a key, replaced by `***`."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, "***")
    return _KEY_PATTERN.sub("sk-***", text)
