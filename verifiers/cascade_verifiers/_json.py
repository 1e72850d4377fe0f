"""Finding JSON documents in model answers, shared by the schema and hedging verifiers.

An answer may be bare JSON, JSON in a fenced block (```json ... ``` or ``` ... ```), or JSON
embedded in prose. `find_json` yields every document it finds, best guess first and never
overlapping; the work is bounded so a megabyte of brackets cannot stall a check.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_FAILED_STARTS = 64  # `{` / `[` positions tried in prose that did not start a document
MAX_FAILED_CHARS = 2_000_000  # characters the decoder may read in attempts that failed
MAX_DECODED_CHARS = 4_000_000  # characters decoded in all: documents found and attempts that failed
# each document found costs at least this much of MAX_DECODED_CHARS, for the work done on it
# (validating it, searching its strings), so a text of ten thousand `[1]` citations stays cheap too
DOCUMENT_COST = 256

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[ \t]*\n?(.*?)```", re.DOTALL)
# the `{` and `[` worth decoding: an object's next non-blank character opens a key or closes it,
# an array's starts a value or closes it (LaTeX `\frac{a}{b}`, `[citation needed]` are skipped)
_OPENERS = re.compile(r'\{(?=[ \t\n\r]*+["}])|\[(?=[ \t\n\r]*+[-"{\[\]0-9tfn])')
# a JSON string literal; inside a valid document, scanning with it finds exactly its strings
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_KEY_FOLLOWS = re.compile(r"\s*:")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Decoder:
    """A JSON decoder that rejects NaN / Infinity (Python's extension, not JSON) and documents
    holding a number too large for a float (`1e400` would read as infinity)."""

    def __init__(self) -> None:
        self._non_finite = False
        self._json = json.JSONDecoder(parse_constant=_reject_constant, parse_float=self._float)

    def _float(self, literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            self._non_finite = True
        return value

    def decode_at(self, text: str, index: int, end: int | None = None) -> tuple[Any, int] | int:
        """The document starting at `index` (and ending by `end`) and where it ends, or, when
        there is none, how many characters the decoder read to find out (all the rest when
        it does not say)."""
        self._non_finite = False
        try:
            value, stop = decode_prefix(self._json, text, index, len(text) if end is None else end)
        except NotJson as exc:
            return max(1, exc.pos - index)
        except (ValueError, RecursionError):  # NaN / Infinity; deep nesting recurses
            return (len(text) if end is None else end) - index
        return stop - index if self._non_finite else (value, stop)


FIRST_WINDOW = 4096


class NotJson(ValueError):
    """No JSON document where one was looked for; `pos` is where the decoder gave up."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} at character {pos}")
        self.pos = pos


def decode_prefix(
    decoder: json.JSONDecoder, text: str, index: int, end: int, *, window: int = FIRST_WINDOW
) -> tuple[Any, int]:
    """`decoder.raw_decode(text[:end], index)`, in time linear in what it reads; raises
    NotJson (or the decoder's ValueError, RecursionError) where there is no document.

    The decoder's error counts the lines before the error's position in the whole text
    (`JSONDecodeError.lineno`): a text with many failed starts would cost quadratic time.
    So the text is decoded in windows from `index`, doubled while the window's end may be
    what stopped it; positions are those of `text`."""
    size = window
    while True:
        stop = min(end, index + size)
        piece = text[index:stop]
        cut = stop < end  # the window ends before the text does
        try:
            value, used = decoder.raw_decode(piece)
        except json.JSONDecodeError as exc:
            # an error this close to the window's end may be the window's doing (`\u12|34`)
            ran_out = exc.pos >= len(piece) - 8 or exc.msg.startswith("Unterminated string")
            if cut and ran_out:
                size *= 2
                continue
            raise NotJson(exc.msg, index + exc.pos) from None
        if cut and used > len(piece) - 8:  # a number may go on past the window: `12|3`, `0|E5`
            size *= 2
            continue
        return value, index + used


@dataclass(frozen=True)
class FoundJson:
    """One JSON document in a text: its value, where it is (`text[start:end]` is its source),
    and how it was found: "bare" (the whole answer), "fenced" or "embedded"."""

    value: Any
    start: int
    end: int
    how: str


def _decode_whole(decoder: _Decoder, text: str, start: int, end: int, how: str) -> FoundJson | None:
    """`text[start:end]` as one document (surrounding whitespace allowed), or None."""
    chunk = text[start:end]
    stripped = chunk.strip()
    if not stripped:
        return None
    first = start + chunk.index(stripped[0])
    decoded = decoder.decode_at(text, first, end)
    if isinstance(decoded, int):
        return None
    value, stop = decoded
    if text[stop:end].strip():
        return None
    return FoundJson(value, first, stop, how)


def find_json(text: str, *, limit: int | None = None) -> Iterator[FoundJson]:
    """The JSON documents in `text`, non-overlapping, in order of preference.

    The whole text when it is one document (any JSON value, then nothing else is looked
    for); else the contents of fenced blocks that are one document each; else objects and
    arrays that decode from a `{` or `[` in the prose, left to right. At most `limit`
    documents when given; the work is bounded by the characters decoded in any case.
    """
    decoder = _Decoder()
    whole = _decode_whole(decoder, text, 0, len(text), "bare")
    if whole is not None:
        yield whole
        return
    found = spent = 0
    taken: list[tuple[int, int]] = []  # spans of fenced documents, skipped by the prose scan
    for fence in _FENCE.finditer(text):
        if spent >= MAX_DECODED_CHARS or (limit is not None and found >= limit):
            return
        doc = _decode_whole(decoder, text, fence.start(2), fence.end(2), "fenced")
        spent += max(DOCUMENT_COST, fence.end(2) - fence.start(2))
        if doc is not None:
            yield doc
            taken.append((doc.start, doc.end))
            found += 1
    failed = failed_chars = 0
    position = 0
    while failed < MAX_FAILED_STARTS and failed_chars < MAX_FAILED_CHARS and spent < MAX_DECODED_CHARS:
        if limit is not None and found >= limit:
            return
        opener = _OPENERS.search(text, position)
        if opener is None:
            return
        index = opener.start()
        inside = next((end for start, end in taken if start <= index < end), None)
        if inside is not None:
            position = inside
            continue
        decoded = decoder.decode_at(text, index)
        if isinstance(decoded, int):
            failed += 1
            failed_chars += decoded
            spent += decoded
            position = index + 1
            continue
        value, end = decoded
        yield FoundJson(value, index, end, "embedded")
        found += 1
        spent += max(DOCUMENT_COST, end - index)
        position = end


def string_value_spans(source: str) -> Iterator[tuple[int, int]]:
    """Spans of the string values (not the keys) in `source`, one valid JSON document."""
    for match in _STRING.finditer(source):
        if not _KEY_FOLLOWS.match(source, match.end()):
            yield match.start(), match.end()


# the tail of a prefix that ran out inside a literal or a number (`tr`, `nul`, `-1.`, `2e+`)
_UNFINISHED_TOKEN = re.compile(
    r"t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?|n(?:u(?:ll?)?)?|-?(?:0|[1-9]\d*)?(?:\.\d*)?(?:[eE][+-]?\d*)?"
)
_UNFINISHED_ESCAPE = re.compile(r"\\?u[0-9a-fA-F]{0,4}")  # `\u12` cut short (the error may point past `\`)
_FENCE_START = re.compile(r"\s*```[ \t]*[\w+.-]*[ \t]*\n?")


def json_prefix_error(prefix: str) -> str | None:
    """Why a streamed answer that began as JSON can never become valid JSON, or None while
    some continuation could still make it valid (conservative: None when unsure)."""
    fence = _FENCE_START.match(prefix)
    text = prefix[fence.end() :] if fence else prefix.lstrip()
    if not text.startswith(("{", "[")):
        return None  # not (yet) a bare JSON document: nothing to judge
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        rest = text[exc.pos :]
        if exc.msg.startswith(("Extra data", "Unterminated string")):
            return None  # a whole document and then more, or a string still being written
        if not rest.strip():
            return None  # it ran out where more was expected
        ran_out_in_token = exc.msg.startswith(("Expecting value", "Expecting ',' delimiter"))
        if ran_out_in_token and _UNFINISHED_TOKEN.fullmatch(rest):
            return None
        if exc.msg.startswith("Invalid \\uXXXX escape") and _UNFINISHED_ESCAPE.fullmatch(rest):
            return None
        return f"{exc.msg} at character {exc.pos}: {text[max(0, exc.pos - 20) : exc.pos + 20]!r}"
    except (RecursionError, ValueError):
        return None
    return None
