"""``hs-gateway demo`` as a newcomer runs it: the banner's commands work, Ctrl-C cleans up."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys

import pytest
import trio

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


async def _read_until(stream: trio.abc.ReceiveStream, marker: bytes, within: float) -> bytes:
    seen = b""
    with trio.fail_after(within):
        while marker not in seen:
            chunk = await stream.receive_some()
            if not chunk:
                break
            seen += chunk
    return seen


def _commands(banner: str) -> list[str]:
    """The shell commands the banner prints (curl lines, with their continuation lines)."""
    lines = banner.splitlines()
    commands: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith(("curl ", "printf ")):
            text = line
            while text.endswith("\\"):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            commands.append(text)
        i += 1
    return commands


async def test_demo_banner_commands_work_and_ctrl_c_cleans_up() -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "gateway.runtime.cli", "demo", "--port", "0", "--devices", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        out = await _read_until(proc.stdout, b"(1 ok)", within=60)
        text = out.decode()
        assert "status: 1 connector (1 ok)" in text, text
        folder = re.search(r"removes (/\S+)", text)
        assert folder is not None and await trio.Path(folder.group(1)).is_dir()
        read, write = _commands(text)
        assert read.startswith("curl") and write.startswith("printf")
        got = await trio.run_process(["bash", "-c", read], capture_stdout=True)
        rows = got.stdout.decode().splitlines()
        assert rows[0] == 'ver:"3.0"' and len(rows) >= 2 + 5, rows
        assert "curVal" in rows[1] and "°C" in got.stdout.decode()
        wrote = await trio.run_process(["bash", "-c", write], capture_stdout=True)
        assert wrote.stdout.decode().splitlines() == ['ver:"3.0"', "empty"]
        check = read.replace("point%20and%20cur", "id%3D%3D%40ahu1-supplySp")
        for _ in range(50):  # the next polls bring the register's new value back as curVal
            got = await trio.run_process(["bash", "-c", check], capture_stdout=True)
            if "21°C,21°C,8" in got.stdout.decode():  # curVal, writeVal, writeLevel
                break
            await trio.sleep(0.2)
        assert "21°C,21°C,8" in got.stdout.decode(), got.stdout.decode()
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            rest = await _read_until(proc.stdout, b"stopped", within=30)
            await proc.wait()
        assert proc.returncode == 0, rest.decode()
        assert not await trio.Path(folder.group(1)).exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
