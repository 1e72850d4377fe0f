"""The event loop behind a cascade's sync methods: an anyio blocking portal in a daemon thread.

Each cascade owns one, started on its first sync call and stopped by `close()`. One
long-lived loop keeps the SDK clients' pooled connections valid across calls (a loop per
call would bind them to a loop that is then closed), and works even when the caller is
itself inside a running loop (a notebook). The thread is a daemon so that a cascade
nobody closed cannot keep the interpreter from exiting (anyio's `start_blocking_portal`
runs its loop in a non-daemon executor thread, which exit would wait for).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from anyio.from_thread import BlockingPortal

T = TypeVar("T")


class Portal:
    """Runs coroutines of one cascade on its own loop, from any thread but that loop's."""

    def __init__(self) -> None:
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, func: Callable[[], Awaitable[T]]) -> T:
        """`await func()` on the portal's loop, blocking until it is done."""
        return self._started().call(func)

    def stop(self) -> None:
        """Stop the loop and its thread (a later `call` starts them again)."""
        with self._lock:
            portal, thread = self._portal, self._thread
            self._portal = self._thread = None
        if portal is not None and thread is not None:
            portal.call(portal.stop)
            thread.join()

    def _started(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                ready: queue.Queue[BlockingPortal] = queue.Queue(maxsize=1)
                self._thread = threading.Thread(
                    target=anyio.run, args=(_serve, ready), name="cascade-portal", daemon=True
                )
                self._thread.start()
                self._portal = ready.get()
            return self._portal


async def _serve(ready: queue.Queue[BlockingPortal]) -> None:
    async with BlockingPortal() as portal:
        ready.put(portal)
        await portal.sleep_until_stopped()
