"""Give large transient buffers back to the operating system (glibc's malloc).

A hisRead of 100,000 samples builds a 12 MiB JSON document and lists of 100,000 strings, all
freed once it is sent. glibc's malloc raises its mmap threshold after such a buffer is freed
(up to 32 MiB), so the next ones come from the heap, and heap memory only goes back when the
top of the heap is free: a server that answered one large request keeps tens of MiB it no longer
uses (measured here: 81 MiB after a few large reads instead of 71). Fixing the thresholds turns
that adaptation off: every allocation of ``RELEASE_THRESHOLD`` (1 MiB) or more is its own
mapping, returned when freed, and free space at the top of the heap beyond ``KEEP_TOP``
(4 MiB) is returned.

Why not lower: each mapping is new memory, zeroed by the kernel a page fault at a time. With
the thresholds at 128 KiB, the buffers of every mid-sized answer (a 450 KiB JSON read of 1,500
points, the 512 KiB pieces of a streamed history) were mapped and unmapped per request: ~0.5
ms of a 3 ms read and ~10 ms of a 100 ms hisRead went to page faults. Under 1 MiB they are
reused from the heap, which keeps at most ``KEEP_TOP`` of free space (the server's RSS after
the benchmark load: 68 MiB instead of 63-64). A ``KEEP_TOP`` of 2 MiB gave back most of the
gain: one JSON read's buffers are freed at the top of the heap and were trimmed each time.

Small objects are not affected (CPython's own allocator serves them from 256 KiB arenas).
Elsewhere than on glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Final

__all__ = ["KEEP_TOP", "RELEASE_THRESHOLD", "release_large_buffers"]

log = logging.getLogger(__name__)

#: Allocations of this size or more are mapped on their own (and unmapped when freed).
RELEASE_THRESHOLD: Final = 1024 * 1024
#: Free space at the top of the heap beyond this goes back to the operating system.
KEEP_TOP: Final = 4 * 1024 * 1024
# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3


def release_large_buffers(threshold: int = RELEASE_THRESHOLD, keep_top: int = KEEP_TOP) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes and its trim threshold at
    ``keep_top`` bytes; False where there is no glibc ``mallopt`` (nothing changed)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, keep_top)
    )
    if not done:
        log.debug("mallopt refused the thresholds; memory use is left as it is")
    return done
