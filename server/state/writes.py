"""A ledger write and the cached state it outdates: forget it once the write has ended, even
when the caller is cancelled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["after_write"]

T = TypeVar("T")


def _retrieve(task: asyncio.Task[Any]) -> None:
    # The caller is gone: the outcome has no reader, but must not be reported as lost.
    if not task.cancelled():
        task.exception()


async def after_write(
    write: Coroutine[Any, Any, T], forget: Callable[[], Awaitable[None]]
) -> T:
    """Await `write`, then `forget` (whether the write succeeded or raised); return its result.

    Why not a plain `try/finally` in the servicer: an RPC cancelled (deadline, client gone) while
    PostgreSQL commits would run the `finally` at once, and the commit could land after it; a
    quote loading in between would cache the state from before the commit. Here the write and
    the forgetting run in a task of their own that the caller's cancellation does not stop, so
    the caches are always cleared after the last moment the write could commit, and always
    before the caller learns its outcome.
    """

    async def run() -> T:
        try:
            return await write
        finally:
            await forget()

    task = asyncio.ensure_future(run())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_retrieve)
        raise
