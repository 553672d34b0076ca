"""Awaiting the native core: each event loop watches one socket of the core's, which wakes it
when requests have finished; the loop's thread then resolves their futures."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Callable

from . import _native

_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _native.Completions]" = (
    weakref.WeakKeyDictionary()
)

Start = Callable[[_native.Completions, "asyncio.Future[Any]"], _native.Running]


def _completions(loop: asyncio.AbstractEventLoop) -> _native.Completions:
    done = _by_loop.get(loop)
    if done is None:
        done = _native.Completions()
        loop.add_reader(done.fileno(), done.drain)
        _by_loop[loop] = done
    return done


async def run(start: Start) -> Any:
    """Starts a native operation with ``start(completions, future)`` and awaits its result;
    cancelled, it aborts the operation."""
    loop = asyncio.get_running_loop()
    future: "asyncio.Future[Any]" = loop.create_future()
    running = start(_completions(loop), future)
    try:
        return await future
    except asyncio.CancelledError:
        running.abort()
        raise
