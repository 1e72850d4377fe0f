"""API keys: read from the environment, and kept out of every log, result, error and file.

`redact` removes, from any text:
- every key read (`read_key`), and any piece of 8 or more of its characters (a server
  that echoes "...Q8zR2mKp1xYw" has echoed a key);
- the masked forms providers print (`sk-proj-****wxyz`, `abcd...wxyz`, `abcd…wxyz`);
- anything shaped like a key (`sk-...`, `sk-ant-...`), even a key never read here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

_known: set[str] = set()
_MIN_SECRET_LEN = 6  # shorter values would redact ordinary words
FRAGMENT_CHARS = 8  # a piece of a key this long is the key
REDACTED = "***"

# Key-shaped tokens a server might echo back (`sk-...`, `sk-ant-...`), even ones we never read.
_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,})")


def read_key(env_var: str | None) -> str | None:
    """The key in `env_var`, remembered so that `redact` can hide it later."""
    if not env_var:
        return None
    value = os.environ.get(env_var)
    if value and len(value) >= _MIN_SECRET_LEN:
        _known.add(value)
    return value


def _either(pieces: list[str]) -> str:
    return "|".join(re.escape(p) for p in sorted(set(pieces), key=len, reverse=True))


# A mask providers print in place of a key's middle: possessive, and never begun inside
# another mask, so a run of dots that belongs to no key is passed over once.
_MASK = re.compile(r"(?<![*.\u2022\u2026])(?:\*{2,}|\.{2,}|\u2022{2,}|\u2026)++")
_MASKED_MIN = 4  # a masked key shows at least this many of its first or last characters


@dataclass(frozen=True)
class _Finders:
    """How to find the known keys in a text, made once per set of keys. Every lookup is a
    set lookup, so the work is linear in the text however many keys are known."""

    keys: frozenset[str]
    pieces: frozenset[str]  # every FRAGMENT_CHARS-long piece of every key that long
    runs: re.Pattern[str] | None  # runs of the characters keys are made of, long enough to hold one
    whole: re.Pattern[str] | None  # keys too short to have pieces, whole
    starts: frozenset[str]  # the first 1..FRAGMENT_CHARS characters of each key, for masks
    ends: frozenset[str]  # the last 1..FRAGMENT_CHARS characters of each key
    before_mask: frozenset[str]  # the last _MASKED_MIN characters of each start long enough
    after_mask: frozenset[str]  # the first _MASKED_MIN characters of each end long enough


@cache
def _finders(keys: frozenset[str]) -> _Finders:
    long_keys = [k for k in keys if len(k) >= FRAGMENT_CHARS]
    short_keys = [k for k in keys if len(k) < FRAGMENT_CHARS]
    alphabet = "".join(sorted(set("".join(long_keys))))
    return _Finders(
        keys,
        frozenset(k[i : i + FRAGMENT_CHARS] for k in long_keys for i in range(len(k) - FRAGMENT_CHARS + 1)),
        re.compile(f"[{re.escape(alphabet)}]{{{FRAGMENT_CHARS},}}") if long_keys else None,
        re.compile(_either(short_keys)) if short_keys else None,
        frozenset(k[:n] for k in long_keys for n in range(1, FRAGMENT_CHARS + 1)),
        frozenset(k[-n:] for k in long_keys for n in range(1, FRAGMENT_CHARS + 1)),
        frozenset(k[n - _MASKED_MIN : n] for k in long_keys for n in range(_MASKED_MIN, FRAGMENT_CHARS + 1)),
        frozenset(k[-n:][:_MASKED_MIN] for k in long_keys for n in range(_MASKED_MIN, FRAGMENT_CHARS + 1)),
    )


def _masked(text: str, found: _Finders) -> list[tuple[int, int]]:
    """Where a mask stands between the start of a key and (or) its end, one of them at
    least `_MASKED_MIN` characters long (`sk-proj-****wxyz`, `abcd...wxyz`)."""
    if not found.starts:
        return []
    spans = []
    starts, ends = found.starts, found.ends
    for mask in _MASK.finditer(text):
        start, end = mask.span()
        if text[max(0, start - _MASKED_MIN) : start] not in found.before_mask and (
            text[end : end + _MASKED_MIN] not in found.after_mask
        ):
            continue  # most masks in prose are an ellipsis: neither side is part of a key
        shown_start = shown_end = 0
        for n in range(min(start, FRAGMENT_CHARS), 0, -1):
            if text[start - n : start] in starts:
                shown_start = n
                break
        for n in range(min(len(text) - end, FRAGMENT_CHARS), 0, -1):
            if text[end : end + n] in ends:
                shown_end = n
                break
        if shown_start >= _MASKED_MIN or shown_end >= _MASKED_MIN:
            spans.append((start - shown_start, end + shown_end))
    return spans


def _spans(text: str, found: _Finders) -> list[tuple[int, int]]:
    """Where keys, pieces of keys and masked keys are in `text`, in order, not overlapping."""
    spans = _masked(text, found)
    if found.whole is not None:
        spans += [m.span() for m in found.whole.finditer(text)]
    for run in found.runs.finditer(text) if found.runs is not None else ():
        position, stop = run.start(), run.end() - FRAGMENT_CHARS
        while position <= stop:
            if text[position : position + FRAGMENT_CHARS] in found.pieces:
                end = _extended(text, position, position + FRAGMENT_CHARS, found.keys)
                spans.append((position, end))
                position = end
            else:
                position += 1
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _extended(text: str, start: int, end: int, keys: frozenset[str]) -> int:
    """Where a piece of a key at `start:end` ends once grown to the right for as long as
    the text goes on as some key does."""
    piece = text[start:end]
    furthest = end
    for key in keys:
        offset = key.find(piece)
        while offset != -1:
            stop = end
            while (
                stop < len(text)
                and offset + stop - start < len(key)
                and text[stop] == key[offset + stop - start]
            ):
                stop += 1
            furthest = max(furthest, stop)
            offset = key.find(piece, offset + 1)
    return furthest


def redact(text: str) -> str:
    """`text` without any key read, piece of one, masked form of one, or key-shaped token.
    Linear in the text: it is called on every answer, event and line written."""
    # key-shaped tokens first, whole: a known key that is only the start of one must not
    # leave the rest of it behind (`sk-test` read, `sk-test-SECRET` echoed)
    text = _KEY_PATTERN.sub("sk-" + REDACTED, text)
    if not _known:
        return text
    spans = _spans(text, _finders(frozenset(_known)))
    if not spans:
        return text
    pieces, kept_from = [], 0
    for start, end in spans:
        pieces += [text[kept_from:start], REDACTED]
        kept_from = end
    pieces.append(text[kept_from:])
    return "".join(pieces)


def redact_value(value: Any) -> Any:
    """`value` (JSON-like: strings, lists, mappings) with every string in it redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    return value


MAX_HELD_CHARS = 1024  # a word longer than this is shown but for its last this-many characters
_WORD = re.compile(r"\S*")


class StreamRedactor:
    """Redacts a text that is shown while it arrives, piece by piece.

    A key never holds a blank, so the text is shown up to its last blank, redacted, and the
    word being written is held back until a blank ends it: its start may be the start of a
    key, which only the rest of it can tell. (With `whole_lines`, the text is shown up to
    its last line break, which itself shows with the next line.) Each piece is looked at
    once: linear work however long the stream."""

    def __init__(self) -> None:
        self._held: list[str] = []
        self._held_chars = 0

    def feed(self, piece: str, *, whole_lines: bool = False) -> str:
        """The text that may be shown now that `piece` has come, redacted (often "")."""
        if whole_lines:
            cut = piece.rfind("\n")  # shown up to it; the break itself waits for the next line
        else:
            word = _WORD.match(piece[::-1]).end()  # type: ignore[union-attr]  # `\S*` always matches
            cut = len(piece) - word if word < len(piece) else -1  # just after the last blank
        if cut == -1:
            self._held.append(piece)
            self._held_chars += len(piece)
            if whole_lines or self._held_chars <= MAX_HELD_CHARS:
                return ""
            held = "".join(self._held)
            self._held, self._held_chars = [held[-MAX_HELD_CHARS:]], MAX_HELD_CHARS
            return redact(held[:-MAX_HELD_CHARS])
        shown = "".join(self._held) + piece[:cut]
        self._held, self._held_chars = [piece[cut:]], len(piece) - cut
        return redact(shown)
