"""systemd's notify protocol: READY, STATUS, RELOADING, STOPPING and watchdog pings.

A ``Type=notify`` service tells systemd how it is doing by sending datagrams of ``NAME=value``
lines to the unix socket named in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace). With ``WatchdogSec=`` set, systemd also passes ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``) and restarts the service when no ``WATCHDOG=1`` arrives within that time;
:meth:`SystemdNotifier.run_watchdog` pings at half of it, as sd_watchdog_enabled(3) advises.

Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing and returns False, so the
service runs the same in a terminal or a test. Sending never blocks and never raises: a
notification is advice to the service manager, and a full or vanished socket must not take the
gateway down (the watchdog, if the loop is truly stuck, will).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Final

import trio

__all__ = ["SystemdNotifier"]

log = logging.getLogger(__name__)

_MIN_WATCHDOG: Final = 0.001  # seconds; systemd never asks for less


class SystemdNotifier:
    """Notifications to systemd over ``$NOTIFY_SOCKET`` (nothing happens without one)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """Whether a notify socket was given."""
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``NAME=value`` fields in one datagram; whether it was sent."""
        if self.address is None or not fields:
            return False
        if any("\n" in f for f in fields):
            raise ValueError("a notify field is one line")
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        try:
            self._sock.sendto("\n".join(fields).encode("utf-8"), self.address)
        except OSError as exc:
            log.debug("systemd notify failed: %s", exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The service is up (``READY=1``), with an optional status line."""
        return self.notify("READY=1", *_status(status))

    def status(self, status: str) -> bool:
        """A one-line status that ``systemctl status`` shows."""
        return self.notify(*_status(status))

    def reloading(self) -> bool:
        """A reload started (send :meth:`ready` when it is done)."""
        return self.notify("RELOADING=1")

    def stopping(self, status: str | None = None) -> bool:
        """The service is shutting down."""
        return self.notify("STOPPING=1", *_status(status))

    def watchdog(self) -> bool:
        """A keep-alive ping (``WATCHDOG=1``)."""
        return self.notify("WATCHDOG=1")

    async def run_watchdog(self) -> None:
        """Ping now and then every half watchdog interval, forever (returns at once if off).

        It runs in the trio loop on purpose: when the loop is stuck, pings stop and systemd
        restarts the service, which is the point of the watchdog.
        """
        if self.watchdog_interval is None or self.address is None:
            return
        period = self.watchdog_interval / 2
        while True:
            self.watchdog()
            await trio.sleep(period)

    def close(self) -> None:
        """Close the socket (later notifications open a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _address(text: str) -> str | None:
    if not text:
        return None
    if text.startswith("@"):
        return "\0" + text[1:]  # the abstract namespace
    if text.startswith("/"):
        return text
    log.warning("ignoring NOTIFY_SOCKET %r: not a unix socket path", text)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process (we are a child)
    try:
        seconds = int(usec) / 1_000_000
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC %r: not an integer", usec)
        return None
    return seconds if seconds >= _MIN_WATCHDOG else None


def _status(status: str | None) -> tuple[str, ...]:
    if status is None:
        return ()
    return ("STATUS=" + " ".join(status.split()),)
