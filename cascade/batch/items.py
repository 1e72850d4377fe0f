"""Batch input: JSON lines read one at a time, each turned into an item or an error record.

A line is `{"id": ..., "prompt": "..."}` or `{"id": ..., "messages": [...]}` (OpenAI-style,
as `Cascade.run` takes them), with optional `system`, `tools`, `tool_choice`, `tags`
(attribution: `{"user": ..., "feature": ...}`, in the output and the ledger), `min_tier` /
`start_tier` (where its ladder starts: a floor under the router's pick, or the tier itself)
and `metadata` (carried through to the output untouched). An id is a string or
an integer. Anything else about a line is an error naming its line number; the job goes on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.core.messages import MessagesError, read_request
from cascade.core.tags import TagError, read_tags
from cascade.core.values import Request
from cascade.routing.start import check_starts

# A longer line is refused, and never held whole: it is read in chunks of at most this
# size and the rest of it skipped, so memory stays bounded whatever the input holds.
MAX_LINE_CHARS = 10_000_000
SKIP_CHUNK_CHARS = 1 << 20
LINE_ENDS = ("\n", "\r")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8


@dataclass(frozen=True)
class Item:
    """One request of the job."""

    line: int
    id: str | int
    request: Request
    metadata: Any = None
    tags: dict[str, str] = field(default_factory=dict)
    min_tier: str | None = None
    start_tier: str | None = None

    @property
    def key(self) -> str:
        """The id as stored: JSON, so that 1 and "1" stay different ids."""
        return id_key(self.id)


@dataclass(frozen=True)
class LineError:
    """A line that cannot be run, as the error record the output will hold."""

    line: int
    message: str
    id: str | int | None = None

    def record(self) -> dict[str, Any]:
        return {"id": None, "line": self.line, "error": self.message, "input_id": self.id}


def id_key(item_id: str | int) -> str:
    return json.dumps(item_id)


def read_items(path: Path) -> Iterator[Item | LineError]:
    """Every line of `path` in order, as an Item or a LineError (blank lines are skipped)."""
    limit = MAX_LINE_CHARS
    # utf-8-sig: a BOM at the start is no part of the first line; surrogateescape: bytes that
    # are not UTF-8 come through as markers, so that their line, and only it, is an error
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as lines:
        number = 0
        while line := lines.readline(limit + 1):
            number += 1
            if len(line) > limit and not line.endswith(LINE_ENDS):
                del line  # over-long: let go of what was read, skip the rest of the line
                while (rest := lines.readline(SKIP_CHUNK_CHARS)) and not rest.endswith(LINE_ENDS):
                    pass
                yield LineError(number, f"line {number}: longer than {limit} characters")
                continue
            if not line.strip():
                continue
            yield parse_line(line, number)


def parse_line(line: str, number: int) -> Item | LineError:
    if len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
        return LineError(number, f"line {number}: longer than {MAX_LINE_CHARS} characters")
    undecoded = _NOT_UTF8.search(line)
    if undecoded is not None:
        byte = ord(undecoded.group(0)) - 0xDC00
        return LineError(
            number, f"line {number}: not valid UTF-8 (byte 0x{byte:02x} at character {undecoded.start()})"
        )
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:  # a line nested deeper than the decoder can go
        return LineError(number, f"line {number}: not valid JSON: {exc}")
    if not isinstance(data, dict):
        return LineError(number, f"line {number}: a JSON object is required, not {type(data).__name__}")
    item_id = data.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, str | int) or item_id == "":
        return LineError(number, f"line {number}: missing or invalid `id` (a non-empty string or an integer)")
    try:
        request = read_request(data)
    except MessagesError as exc:
        return LineError(number, f"line {number}: {exc}", item_id)
    try:
        tags = read_tags(data.get("tags"))
    except TagError as exc:
        return LineError(number, f"line {number}: {exc}", item_id)
    starts = {}
    for name in ("min_tier", "start_tier"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            return LineError(number, f"line {number}: `{name}` must be a tier's name", item_id)
        starts[name] = value
    return Item(number, item_id, request, data.get("metadata"), tags, **starts)


@dataclass(frozen=True)
class Starts:
    """Where every item's ladder starts (`--min-tier`, `--start-tier`); a line's own win."""

    min_tier: str | None = None
    start_tier: str | None = None

    def of(self, item: Item) -> tuple[str | None, str | None]:
        """The item's (min_tier, start_tier)."""
        return item.min_tier or self.min_tier, item.start_tier or self.start_tier

    def checked(self, item: Item, tiers: list[str]) -> Item | LineError:
        """`item`, or an error naming its line when it starts at a tier the cascade lacks, or
        its `start_tier` is below its `min_tier` (the job's `--min-tier` is a floor for it too)."""
        try:
            check_starts(*self.of(item), tiers)
        except ValueError as exc:
            return LineError(item.line, f"line {item.line}: {exc}", item.id)
        return item


EVERY_TIER = Starts()  # no start given: the router (or the cheapest tier) decides; frozen, so shared
