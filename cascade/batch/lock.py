"""One job at a time on an output: an exclusive lock beside its state file.

Two processes resuming one job would both take the same pending items: each item paid for
twice, and half the output lost when one of them rewrites it. The lock is `flock` on a
file beside the state, held for the whole run and let go by the kernel when the process
ends, however it ends (`kill -9` included). The file names the process holding it, so the
one refused can say who. It is a lock of this machine: two machines sharing a network
folder are not kept apart by it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO

from cascade.core.errors import ConfigError


class JobLock:
    """Holds the lock of the job whose state is at `state`; ConfigError if another has it."""

    def __init__(self, state: Path) -> None:
        self.path = state.with_name(state.name + ".lock")
        try:
            self._file: IO[str] | None = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(self._file)
            self._file.close()
            self._file = None
            raise ConfigError(
                f"{state}: another `cascade batch` is running on this job ({holder}); two at once "
                "would pay twice for the same items. Wait for it to finish or stop it, then run again"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        # who holds it, and no more: a command line may hold what is nobody else's business
        self._file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing lets go of the lock
            self._file = None


def _holder(file: IO[str]) -> str:
    """Who holds the lock, as its file says."""
    file.seek(0)
    try:
        info = json.loads(file.read() or "{}")
    except ValueError:
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process that has not said which"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("since", 0))))
    return f"pid {info['pid']} on {info.get('host', '?')}, since {since}"
