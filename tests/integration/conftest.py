"""Fixtures for the integration tests (names are per protocol: other suites add theirs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest
import trio

from drivers.aio import AioHost, open_aio_host
from drivers.modbus.link import LinkRegistry


@pytest.fixture
async def modbus_aio() -> AsyncIterator[AioHost]:
    """The asyncio host thread, for one test."""
    async with open_aio_host(default_timeout=20.0) as aio:
        yield aio


@pytest.fixture
def modbus_links() -> LinkRegistry:
    """A link registry with short timeouts and backoff, so failure tests stay fast."""
    return LinkRegistry(connect_timeout=1.0, backoff_base=1.0, backoff_max=2.0)


@pytest.fixture
async def modbus_serial_pair() -> AsyncIterator[tuple[str, str]]:
    """Two connected pseudo-terminals made by socat (a virtual RS-485 line)."""
    socat = shutil.which("socat", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin"]))
    if socat is None:
        pytest.skip("socat is not installed: cannot make a virtual serial pair")
    proc = await trio.lowlevel.open_process(
        [socat, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    try:
        text = b""
        with trio.fail_after(5):
            while text.count(b"PTY is") < 2:
                chunk = await proc.stderr.receive_some(4096)
                if not chunk:
                    pytest.fail(f"socat exited before making the pair: {text!r}")
                text += chunk
        first, second = re.findall(rb"PTY is (\S+)", text)
        yield first.decode(), second.decode()
    finally:
        proc.terminate()
        with trio.move_on_after(5):
            await proc.wait()
        await proc.stderr.aclose()
