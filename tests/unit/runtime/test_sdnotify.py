"""systemd notify over a real unix datagram socket; watchdog timing under trio's MockClock."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.runtime.sdnotify import SystemdNotifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()


def drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_ready_status_reloading_stopping(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("2 connectors (2 ok), 10 points")
    assert notifier.status("1 connectors\n(1 down)")  # folded to one line
    assert notifier.reloading()
    assert notifier.stopping("stopping")
    assert notifier.watchdog()
    assert drain(sock) == [
        "READY=1\nSTATUS=2 connectors (2 ok), 10 points",
        "STATUS=1 connectors (1 down)",
        "RELOADING=1",
        "STOPPING=1\nSTATUS=stopping",
        "WATCHDOG=1",
    ]
    notifier.close()


def test_abstract_socket_address() -> None:
    name = f"hs-gateway-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(100) == b"READY=1"
        notifier.close()
    finally:
        sock.close()


def test_without_systemd_nothing_is_sent() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.watchdog_interval is None


def test_a_vanished_socket_never_raises(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.ready() is False
    notifier.close()


def test_multi_line_fields_are_refused(notify_socket: tuple[socket.socket, str]) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket[1]})
    with pytest.raises(ValueError, match="one line"):
        notifier.notify("STATUS=a\nREADY=1")
    notifier.close()


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # another process's
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], interval: float | None) -> None:
    assert SystemdNotifier(env).watchdog_interval == interval


def test_watchdog_pings_at_half_the_interval(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    seen: list[tuple[float, int]] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(notifier.run_watchdog)
            for at in (0.1, 4.9, 5.1, 9.9, 10.1, 24.9, 25.1):
                await trio.sleep_until(at)
                seen.append((at, drain(sock).count("WATCHDOG=1")))
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # One ping at once, then one every 5 s (half of WATCHDOG_USEC = 10 s).
    assert seen == [(0.1, 1), (4.9, 0), (5.1, 1), (9.9, 0), (10.1, 1), (24.9, 2), (25.1, 1)]
    notifier.close()


async def test_watchdog_is_off_without_an_interval(
    notify_socket: tuple[socket.socket, str],
) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket[1]})
    with trio.fail_after(1):
        await notifier.run_watchdog()  # returns at once
    assert drain(notify_socket[0]) == []
