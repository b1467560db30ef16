"""The driver interface: what every protocol driver offers the connection runner.

A driver is built from its connector record with no I/O, then opened, read, written and
closed by the connection runner (``gateway/runtime``), which owns every schedule, timeout,
retry and status decision. Drivers never sleep to schedule, retry, time out, touch the store
or see the priority array; they turn one request into protocol traffic and report what
happened, by exception *type*.

Points are passed as the Haystack point records themselves (``Mapping[str, Value]``, with
an ``id`` Ref and the protocol tags such as ``modbusCur``), the same dicts the runner holds.
A driver compiles what it needs from them (and may cache it by ``id``); the runner never
builds protocol-specific objects.

Errors (the whole tree; ``status`` is the ``curStatus``/``connStatus`` each one maps to)::

    DriverError                     base of everything a driver raises on purpose
    ├── DownError                   "down": the whole connection failed (no answer,
    │                               refused, closed, serial port gone)
    ├── FaultError                  "fault": configuration, hardware or a bad
    │                               register/object (bad URI, bad map row, exception
    │                               response, value out of range for the register)
    └── RemoteStatusError(status)   "remoteFault" / "remoteDown" / "remoteDisabled" /
                                    "remoteUnknown": the remote side reports that status
                                    for the point (e.g. a Modbus gateway whose target
                                    device does not answer)

``read`` raises only ``DownError`` (the whole connection failed); every other problem is a
per-point ``Reading`` carrying its error. ``open``, ``write`` and ``learn`` raise any of the
three. The runner maps an error to a status with ``err.status`` and nothing else: it never
parses a message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias, runtime_checkable

from gateway.haystack.kinds import Ref, Value

__all__ = [
    "REMOTE_STATUSES",
    "DownError",
    "Driver",
    "DriverError",
    "FaultError",
    "Learner",
    "PointRec",
    "Reading",
    "ReadingSink",
    "RemoteStatusError",
    "Subscriber",
    "point_id",
]

#: A Haystack point record as the runner holds it (``id``, ``kind``, protocol tags...).
PointRec: TypeAlias = Mapping[str, Value]

#: The statuses a remote side may report (DESIGN.md "Data model", curStatus values).
REMOTE_STATUSES: Final = frozenset({"remoteFault", "remoteDown", "remoteDisabled", "remoteUnknown"})


class DriverError(Exception):
    """Base of the errors a driver raises on purpose; ``status`` is the status it maps to."""

    status: str = "fault"


class DownError(DriverError):
    """The whole connection failed: no answer, connection refused or lost."""

    status = "down"


class FaultError(DriverError):
    """Configuration, hardware or a bad register/object: the point (or connector) is at fault."""

    status = "fault"


class RemoteStatusError(DriverError):
    """The remote side reports a status of its own for the point (``remoteDown``...)."""

    def __init__(self, status: str, msg: str = "") -> None:
        if status not in REMOTE_STATUSES:
            raise ValueError(f"not a remote status: {status!r}")
        super().__init__(msg or status)
        self.status = status


@dataclass(frozen=True, slots=True)
class Reading:
    """The outcome of reading one point: a value (``err is None``) or a per-point error."""

    id: Ref
    val: Value = None
    err: DriverError | None = None

    @property
    def ok(self) -> bool:
        """True when the read produced a value."""
        return self.err is None

    @property
    def status(self) -> str:
        """The ``curStatus`` this reading maps to (``ok`` or the error's status)."""
        return "ok" if self.err is None else self.err.status


def point_id(point: PointRec) -> Ref:
    """The ``id`` of a point record; a record without one is a configuration fault."""
    ref = point.get("id")
    if not isinstance(ref, Ref):
        raise FaultError(f"point record has no id Ref: {ref!r}")
    return ref


@runtime_checkable
class Driver(Protocol):
    """One connector's protocol driver (see the module docstring for the rules)."""

    async def open(self) -> dict[str, Value]:
        """Connect (or join the shared link) and check the device; return device info tags."""
        ...

    async def aclose(self) -> None:
        """Release every resource; never raises for a connection that is already gone."""
        ...

    async def read(self, points: Sequence[PointRec]) -> list[Reading]:
        """One Reading per point, in order; raises only DownError."""
        ...

    async def write(self, point: PointRec, val: Value, level: int) -> None:
        """Send the priority array's effective value; ``val is None`` means relinquish."""
        ...


@runtime_checkable
class Learner(Protocol):
    """Optional: discovery (Who-Is, browse, register map)."""

    async def learn(self, path: Value = None) -> list[dict[str, Value]]:
        """Point (or folder) records found under ``path`` (``None`` = the top)."""
        ...


class ReadingSink(Protocol):
    """Where pushed readings go: a trio ``MemorySendChannel`` fits, as does ``aio.Pusher``."""

    def send_nowait(self, value: Reading, /) -> None: ...


@runtime_checkable
class Subscriber(Protocol):
    """Optional: change-of-value subscriptions (BACnet COV, OPC UA subscriptions)."""

    async def subscribe(self, points: Sequence[PointRec], sink: ReadingSink) -> None:
        """Start pushing Readings for ``points`` into ``sink`` (from any thread: use aio)."""
        ...

    async def unsubscribe(self, points: Sequence[PointRec]) -> None:
        """Stop pushing for ``points``."""
        ...
