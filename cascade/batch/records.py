"""The output records of a batch job's finished items, in an append-only file beside its state.

Each finished item is one line, `HEADER<tab>RECORD`: the header is what the state needs to
know about the item (as JSON: a JSON text never holds a raw tab), the record its output line.
A line is written with one `write` before the state hears of it, so a process killed at any
moment leaves every line it wrote in the file, and at most the end of one line half-written;
the state, which commits in groups, points at each record by offset and size, and notes up
to where the file is known to it. The lines past that point are read back when the job is
opened again (`tail`), and half a line at the end is cut off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cascade.core.errors import ConfigError


def records_path(state: Path) -> Path:
    return state.with_name(state.name.removesuffix(".sqlite") + ".records")


class RecordFile:
    """Appends records and reads them back by (offset, size)."""

    def __init__(self, path: Path, state: Path) -> None:
        self.path = path
        self.state = state  # named in errors: the two files are the job's state together
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            self.end = os.fstat(self.fd).st_size
        except OSError as exc:
            raise self._error(exc) from None
        self.unsynced = False

    def append(self, header: dict[str, Any], record: str) -> tuple[int, int]:
        """Write one line; the (offset, size) of its record."""
        head = json.dumps(header).encode() + b"\t"
        body = record.encode()
        line = head + body + b"\n"
        try:
            written = os.write(self.fd, line)
            while written < len(line):  # a short write: only when the disk is (nearly) full
                written += os.write(self.fd, line[written:])
        except OSError as exc:
            raise self._error(exc) from None
        offset = self.end + len(head)
        self.end += len(line)
        self.unsynced = True
        return offset, len(body)

    def read(self, offset: int, size: int) -> str:
        return os.pread(self.fd, size, offset).decode()

    def sync(self) -> None:
        """On disk before the state commits a pointer into it (against power loss too)."""
        if self.unsynced:
            try:
                os.fdatasync(self.fd)
            except OSError as exc:
                raise self._error(exc) from None
            self.unsynced = False

    def tail(self, known: int) -> Iterator[tuple[dict[str, Any], int, int]]:
        """The lines past `known` bytes, as (header, offset, size) of their record, then the
        file cut after its last whole line. A file shorter than `known` lost records the
        state points at: a ConfigError."""
        if self.end < known:
            raise ConfigError(
                f"{self.path} is shorter than the job state {self.state} says ({self.end} bytes, "
                f"not {known}): the records of finished items are missing; delete both files to start over"
            )
        start = known
        with open(self.path, "rb") as data:
            data.seek(known)
            for line in data:
                if not line.endswith(b"\n"):
                    break  # half-written when the process died
                head, _, body = line.partition(b"\t")
                yield json.loads(head), start + len(head) + 1, len(body) - 1
                start += len(line)
        if start < self.end:
            self.cut(start)

    def cut(self, size: int) -> None:
        """Drop what is past `size` bytes."""
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise self._error(exc) from None
        self.end = size

    def close(self) -> None:
        os.close(self.fd)

    def _error(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot write the job state {self.state} (records in {self.path}): {exc.strerror or exc}"
        )
