"""gateway.web.memory: glibc's thresholds are fixed so that large freed buffers go back."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import pytest

from gateway.web.memory import KEEP_TOP, RELEASE_THRESHOLD, release_large_buffers

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _trim() -> None:
    """Give back the free memory the earlier tests left in the heap, so that what a test
    allocates shows in full in the RSS (instead of reusing resident free pages)."""
    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _heap_kib() -> int:
    """The size of the process's brk heap (glibc's main arena), from /proc/self/maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[heap]"):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                return (hi - lo) >> 10
    return 0


@glibc
def test_a_large_buffer_freed_leaves_no_resident_memory() -> None:
    assert release_large_buffers(RELEASE_THRESHOLD) is True
    # A freed mapping raises glibc's own threshold when it is adaptive; fixed, it stays put.
    for _ in range(3):
        before = _rss_kib()
        block = b"x" * (24 << 20)
        assert _rss_kib() - before > 20 << 10
        del block
        assert _rss_kib() - before < 4 << 10


@glibc
def test_mid_sized_buffers_come_from_the_heap_which_keeps_little_free() -> None:
    # Buffers under the threshold come from the heap (reused warm by the next request);
    # once they are all freed, the heap gives back everything beyond KEEP_TOP.
    assert release_large_buffers(RELEASE_THRESHOLD, KEEP_TOP) is True
    size = RELEASE_THRESHOLD // 2
    for _ in range(2):
        _trim()
        before = _rss_kib()
        heap = _heap_kib()
        blocks = [b"x" * size for _ in range(64)]  # 32 MiB
        assert _rss_kib() - before > 24 << 10
        assert _heap_kib() - heap > 24 << 10  # from the heap, not mapped one by one
        del blocks
        assert _rss_kib() - before < (KEEP_TOP >> 10) + (4 << 10)
