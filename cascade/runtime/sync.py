"""One private event loop in a daemon thread, shared by the sync API of every cascade.

`asyncio.run` per call would bind each SDK client's connection pool to a loop that is
then closed; one long-lived loop keeps pooled connections valid across calls, and works
even when the caller is itself inside a running loop (a notebook).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def run_sync(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` on the shared private loop and wait for its result."""

    async def wrapper() -> T:
        return await awaitable

    return asyncio.run_coroutine_threadsafe(wrapper(), _shared_loop()).result()


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="cascade-sync", daemon=True).start()
        return _loop
