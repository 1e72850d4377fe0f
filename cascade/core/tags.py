"""Attribution tags: `user`, `feature` or any key, as strings, carried by a request to its
result, the ledger, the batch output and the report's group-by."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cascade.core.redaction import redact

MAX_TAGS = 32
MAX_TAG_CHARS = 200
MAX_TAG_NAME_CHARS = 64
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class TagError(ValueError):
    """Tags that cannot be recorded; the message names the tag."""


def read_tags(value: Any) -> dict[str, str]:
    """Tags as given (a mapping of names to strings, numbers or booleans), checked and as
    strings. A name is an identifier (letters, digits, `_`, `.`, `-`) of at most
    MAX_TAG_NAME_CHARS characters; a value is at most MAX_TAG_CHARS characters of text
    (tags are labels to group by, not a place for payloads). A key pasted in a value is
    redacted here, so that no result, row or drift slice holds it; a name that looks like
    a key is refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TagError(f"`tags` must be an object of names to strings, not {type(value).__name__}")
    if len(value) > MAX_TAGS:
        raise TagError(f"at most {MAX_TAGS} tags, not {len(value)}")
    tags: dict[str, str] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key) or len(key) > MAX_TAG_NAME_CHARS:
            shown = redact(key[:40]) if isinstance(key, str) else repr(key)
            rule = f"letters, digits, _ . -; at most {MAX_TAG_NAME_CHARS}"
            raise TagError(f"tag name {shown!r} is not an identifier ({rule})")
        if redact(key) != key:
            raise TagError("a tag name looks like an API key: tags are labels, never secrets")
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if not isinstance(raw, str | int | float):
            raise TagError(f"tag {key!r} must be a string, not {type(raw).__name__}")
        text = str(raw)
        if len(text) > MAX_TAG_CHARS:
            raise TagError(f"tag {key!r} is longer than {MAX_TAG_CHARS} characters")
        if not _is_text(text):
            raise TagError(f"tag {key!r} holds characters no ledger can store (a lone surrogate or NUL)")
        tags[key] = redact(text)
    return tags


def _is_text(text: str) -> bool:
    """Can UTF-8 (SQLite's, PostgreSQL's) hold it: no lone surrogate, no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def check_request_id(request_id: str | None) -> None:
    """A caller's request id: a short line of text (it names rows, events and logs)."""
    if request_id is None:
        return
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_TAG_CHARS:
        raise TagError(f"request_id must be a non-empty string of at most {MAX_TAG_CHARS} characters")
    if not _is_text(request_id) or redact(request_id) != request_id:
        raise TagError("request_id holds characters no ledger can store, or looks like an API key")


def parse_tag(flag: str) -> tuple[str, str]:
    """`--tag k=v` as (k, v)."""
    key, sep, value = flag.partition("=")
    if not sep:
        raise TagError(f"--tag {redact(flag)[:60]!r}: expected NAME=VALUE")
    (checked,) = read_tags({key.strip(): value}).items()
    return checked
