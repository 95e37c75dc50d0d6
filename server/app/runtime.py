"""Process tuning for a calculation server: the allocator and the event loop.

glibc serves blocks of a few hundred kilobytes and more with mmap and returns them to the
system on free, so every such temporary costs fresh page faults: measured here, when the engine
still batched MAX_BENEFIT candidates in numpy arrays, a width-12 calculation took 10 ms with the
defaults and 5 ms with the heap kept (docs/engine.md). The core's buffers and a large request's
messages are such blocks still. `tune_allocator` keeps them on the heap. It is a no-op where the
C library is not glibc.

`run` runs the server on uvloop where it is installed (a dependency on Linux and macOS). Every
ledger call is a PostgreSQL round trip through asyncpg, and on the default loop each one costs
the server about twice the CPU: measured here, a `SELECT 1` through the pool took 216 µs of the
client's CPU on asyncio's loop and 95 µs on uvloop, and a ConfirmOrder 2.63M user-space
instructions in the server against 2.29M (docs/ledger.md, bench/bench_confirm.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["EVENT_LOOPS", "event_loop_factory", "run", "tune_allocator"]

T = TypeVar("T")

# `auto`: uvloop when it is installed, else asyncio's own loop.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")

_log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_MMAP_THRESHOLD = 256 << 20  # blocks below this come from the heap
_TRIM_THRESHOLD = 512 << 20  # free heap kept before memory is returned to the system
_TOP_PAD = 64 << 20

_done = False


def tune_allocator() -> bool:
    """Keep large temporaries on the heap (idempotent). True when applied."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
            (_M_TOP_PAD, _TOP_PAD),
        )
    )
    if not ok:
        _log.debug("mallopt refused a setting; the allocator keeps its defaults")
    _done = ok
    return ok


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for an EVENT_LOOPS name (None: asyncio's default loop).

    Raises ValueError for an unknown name, or for `uvloop` when uvloop is not installed.
    """
    if name not in EVENT_LOOPS:
        raise ValueError(f"unknown event loop {name!r}: choose one of {', '.join(EVENT_LOOPS)}")
    if name == "asyncio":
        return None
    if importlib.util.find_spec("uvloop") is None:
        if name == "uvloop":
            raise ValueError("event loop 'uvloop' asked for, but uvloop is not installed")
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], event_loop: str = "auto") -> T:
    """`asyncio.run(main)` on the named event loop."""
    with asyncio.Runner(loop_factory=event_loop_factory(event_loop)) as runner:
        return runner.run(main)
