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
from functools import cache
from typing import Any

_known: set[str] = set()
_MIN_SECRET_LEN = 6  # shorter values would redact ordinary words
FRAGMENT_CHARS = 8  # a piece of a key this long is the key
# "****", "...", "•••", "…" (the ellipsis character), and runs of them ("****...")
_MASK = r"(?:\*{2,}|\.{2,}|\u2022{2,}|\u2026)+"
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


@cache
def _finder(keys: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern for every key: each whole, each piece of FRAGMENT_CHARS characters, and
    each masked form (a start or an end of the key, at least 4 characters of it, around a
    mask)."""
    alternatives = []
    for key in keys:
        if len(key) < FRAGMENT_CHARS:
            alternatives.append(re.escape(key))
            continue
        pieces = [key[i : i + FRAGMENT_CHARS] for i in range(len(key) - FRAGMENT_CHARS + 1)]
        starts = [key[:n] for n in range(1, FRAGMENT_CHARS + 1)]
        ends = [key[-n:] for n in range(1, FRAGMENT_CHARS + 1)]
        long_starts, long_ends = _either(starts[3:]), _either(ends[3:])
        alternatives += [
            f"(?:{long_starts}){_MASK}(?:{_either(ends)})?",
            f"(?:{_either(starts)})?{_MASK}(?:{long_ends})",
            _either(pieces),
        ]
    return re.compile("|".join(f"(?:{a})" for a in alternatives)) if alternatives else None


def _extended(text: str, start: int, end: int, keys: frozenset[str]) -> int:
    """Where a match of a piece of a key at `start:end` ends once grown to the right for as
    long as the text goes on as some key does."""
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
    """`text` without any key read, piece of one, masked form of one, or key-shaped token."""
    # key-shaped tokens first, whole: a known key that is only the start of one must not
    # leave the rest of it behind (`sk-test` read, `sk-test-SECRET` echoed)
    text = _KEY_PATTERN.sub("sk-" + REDACTED, text)
    keys = frozenset(_known)
    finder = _finder(keys)
    if finder is not None and finder.search(text) is not None:
        pieces, kept_from, position = [], 0, 0
        while (match := finder.search(text, position)) is not None:
            end = _extended(text, match.start(), match.end(), keys)
            pieces += [text[kept_from : match.start()], REDACTED]
            kept_from = position = end
        pieces.append(text[kept_from:])
        text = "".join(pieces)
    return text


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

    def rest(self) -> str:
        """What is still held back, redacted: the end of a text that has ended."""
        held, self._held, self._held_chars = "".join(self._held), [], 0
        return redact(held)
