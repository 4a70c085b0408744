"""Giving the memory the worker freed back to the operating system (issue #23 item 12).

Freed Python objects go back to CPython's allocator and C's malloc, which keep the pages for reuse:
after a burst of tenants whose windows have all closed and been dropped, RSS stays at the burst's
peak although the memory is free (a second such burst reuses it; it does not grow). glibc's
`malloc_trim(0)` hands the free pages of its heap back (madvise), so RSS comes down to what is
held. The worker calls `release` on a timer (app.py); it costs a few ms, ~40 ms after a burst of
hundreds of MB, and runs in a thread (the call releases the GIL). Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("learnstream.memory")

#: how often the worker gives freed memory back (seconds)
RELEASE_INTERVAL_S = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release() -> bool:
    """Return the C heap's free pages to the operating system; False where that is not available."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
