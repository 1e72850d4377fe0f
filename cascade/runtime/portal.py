"""The event loop behind the sync API: one anyio blocking portal in a daemon thread.

`Cascade.run`, `.stream` and `.close` await the async API there. One long-lived loop
keeps the SDK clients' pooled connections valid across calls (a loop per call would bind
them to a loop that is then closed), and works even when the caller is itself inside a
running loop (a notebook). It is shared by every cascade of the process, because cascades
share providers (`with_tiers`, `from_plan`: a batch job wraps the same clients in rate
limiters) and a connection pool opened on one loop breaks when used from another. The
thread is a daemon, so that nothing left unclosed can keep the interpreter from exiting
(anyio's `start_blocking_portal` runs its loop in a non-daemon executor thread).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from anyio.from_thread import BlockingPortal

T = TypeVar("T")

_portal: BlockingPortal | None = None
_lock = threading.Lock()


def call(func: Callable[[], Awaitable[T]]) -> T:
    """`await func()` on the shared loop, blocking until it is done."""
    return _started().call(func)


def usable() -> bool:
    """Can `call` still run anything? Not once the interpreter is shutting down: the loop's
    daemon thread no longer runs, and a call would wait for ever."""
    return not sys.is_finalizing()


def _started() -> BlockingPortal:
    global _portal
    with _lock:
        if _portal is None:
            ready: queue.Queue[BlockingPortal] = queue.Queue(maxsize=1)
            threading.Thread(
                target=anyio.run, args=(_serve, ready), name="cascade-portal", daemon=True
            ).start()
            _portal = ready.get()
        return _portal


async def _serve(ready: queue.Queue[BlockingPortal]) -> None:
    async with BlockingPortal() as portal:
        ready.put(portal)
        await portal.sleep_until_stopped()
