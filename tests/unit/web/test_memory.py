"""gateway.web.memory: glibc's thresholds are fixed so that large freed buffers go back."""

from __future__ import annotations

import platform

import pytest

from gateway.web.memory import RELEASE_THRESHOLD, release_large_buffers

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


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
