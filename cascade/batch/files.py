"""Two ways a batch job handles whole files: a cheap fingerprint of its input, to notice an
edit between runs, and writing its output so that no one ever sees half of it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from cascade.core.errors import ConfigError

EDGE_BYTES = 64 * 1024  # the input's fingerprint hashes this much of its start and its end


def fingerprint(path: Path) -> str:
    """A cheap fingerprint of a file: its size, its mtime, and a sha256 of its first and
    last 64 KiB (an edit in the middle of a large file that keeps size and mtime is missed)."""
    info = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as data:
        digest.update(data.read(EDGE_BYTES))
        if info.st_size > EDGE_BYTES:
            data.seek(max(EDGE_BYTES, info.st_size - EDGE_BYTES))
            digest.update(data.read(EDGE_BYTES))
    return json.dumps({"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": digest.hexdigest()})


def write_atomically(path: Path, lines: Iterator[str]) -> int:
    """Write `lines` to `path` through a temporary file, fsync'd, then renamed over `path`:
    a reader (or a crash) never sees half a file. Returns the number of lines. A file that
    cannot be written (a read-only folder, a full disk) is a ConfigError naming it."""
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(line)
                out.write("\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return count
