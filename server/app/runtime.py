"""Process tuning for a calculation server.

The engine works on numpy arrays of a few hundred kilobytes (a MAX_BENEFIT group's batch of
candidate states). glibc serves blocks that large with mmap and returns them to the system on
free, so every such temporary costs fresh page faults: measured here, a width-12 MAX_BENEFIT
calculation took 10 ms with the defaults and 5 ms with the heap kept (bench/, docs/engine.md).
`tune_allocator` keeps those blocks on the heap. It is a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["tune_allocator"]

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
    """Keep large numpy temporaries on the heap (idempotent). True when applied."""
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
