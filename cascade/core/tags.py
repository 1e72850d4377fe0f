"""Attribution tags: `user`, `feature` or any key, as strings, carried by a request to its
result, the ledger, the batch output and the report's group-by."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_TAGS = 32
MAX_TAG_CHARS = 200
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class TagError(ValueError):
    """Tags that cannot be recorded; the message names the tag."""


def read_tags(value: Any) -> dict[str, str]:
    """Tags as given (a mapping of names to strings, numbers or booleans), checked and as
    strings. A name is an identifier (letters, digits, `_`, `.`, `-`); a value is at most
    MAX_TAG_CHARS characters: tags are labels to group by, not a place for payloads."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TagError(f"`tags` must be an object of names to strings, not {type(value).__name__}")
    if len(value) > MAX_TAGS:
        raise TagError(f"at most {MAX_TAGS} tags, not {len(value)}")
    tags: dict[str, str] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise TagError(f"tag name {key!r} is not an identifier (letters, digits, _ . -)")
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if not isinstance(raw, str | int | float):
            raise TagError(f"tag {key!r} must be a string, not {type(raw).__name__}")
        text = str(raw)
        if len(text) > MAX_TAG_CHARS:
            raise TagError(f"tag {key!r} is longer than {MAX_TAG_CHARS} characters")
        tags[key] = text
    return tags


def parse_tag(flag: str) -> tuple[str, str]:
    """`--tag k=v` as (k, v)."""
    key, sep, value = flag.partition("=")
    if not sep:
        raise TagError(f"--tag {flag!r}: expected NAME=VALUE")
    (checked,) = read_tags({key.strip(): value}).items()
    return checked
