"""One owner per Modbus bus: the link that every slave on a port or endpoint shares.

A ``ModbusLink`` owns one pymodbus client for one bus (a serial port, or a TCP endpoint
such as an RS-485 gateway) and puts every request of every slave on it through one FIFO
queue with an inter-frame gap (``drivers.aio.TurnQueue``), so devices on a shared RS-485
line never collide. ``LinkRegistry`` hands out one link per ``ModbusEndpoint.key``,
counted by users, and forgets a link when its last user releases it.

A slave that does not answer is backed off: for a while (1 s, doubling per consecutive
silence up to 10 s by default) its requests fail at once with ``SlaveSkippedError``
instead of holding the bus for a whole timeout, so the other slaves keep their turns. Any
answer -- data or an exception response -- ends the backoff; so does a new connection.
This is bus protection, not a retry policy: the connection runner still decides when to
poll and when to reopen.

Threading: ``LinkRegistry`` and the construction of a link belong to the trio side (plain
objects, no I/O). Every ``async`` method of ``ModbusLink`` runs on the asyncio loop of
``drivers.aio`` (``await aio.run(link.connect)``), where the pymodbus client lives.

Errors (all from ``drivers.base``): ``LinkDownError``, ``NoAnswerError`` and
``SlaveSkippedError`` are ``DownError``; an exception response is an
``ExceptionResponseError`` (``FaultError``) with its ``code``, except the gateway codes
0x0A/0x0B, which mean the gateway could not reach the slave: ``GatewayTargetError``
(``RemoteStatusError("remoteDown")``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType

from drivers.aio import TurnQueue, bounded
from drivers.base import DownError, FaultError, RemoteStatusError
from drivers.modbus.regmap import Table
from drivers.modbus.uri import ModbusEndpoint

__all__ = [
    "EXCEPTION_NAMES",
    "ExceptionResponseError",
    "GatewayTargetError",
    "LinkDownError",
    "LinkRegistry",
    "LinkStatistics",
    "ModbusLink",
    "NoAnswerError",
    "ReadRequest",
    "SlaveBackoff",
    "SlaveSkippedError",
    "WriteRequest",
]

EXCEPTION_NAMES: Final = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x07: "negative acknowledge",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
#: Exception codes that may concern one register of a block: worth splitting the block.
SPLITTABLE_CODES: Final = frozenset({0x01, 0x02, 0x03, 0x04})
GATEWAY_CODES: Final = frozenset({0x0A, 0x0B})
_PYMODBUS_TIMEOUT: Final = 3600.0


class LinkDownError(DownError):
    """The bus itself is not usable: not connected, connection refused or lost."""


class NoAnswerError(DownError):
    """The slave did not answer within the read timeout."""


class SlaveSkippedError(DownError):
    """The slave is backed off after not answering; the request never reached the bus."""


class ExceptionResponseError(FaultError):
    """The slave answered with a Modbus exception response (``code``)."""

    def __init__(self, code: int, what: str) -> None:
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"exception {code:#04x} ({name}) for {what}")
        self.code = code

    @property
    def splittable(self) -> bool:
        """True when the code may concern a single register of a multi-register read."""
        return self.code in SPLITTABLE_CODES


class GatewayTargetError(RemoteStatusError):
    """A gateway answered that it cannot reach the slave behind it (0x0A, 0x0B)."""

    def __init__(self, code: int, what: str) -> None:
        name = EXCEPTION_NAMES[code]
        super().__init__("remoteDown", f"exception {code:#04x} ({name}) for {what}")
        self.code = code


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """Read ``count`` registers (or bits) of ``table`` from ``address`` (0-based)."""

    table: Table
    address: int
    count: int

    def __str__(self) -> str:
        return f"read {self.table.name.lower()} {self.address}+{self.count}"


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """Write ``values`` to a coil (one bool) or holding registers from ``address``."""

    table: Table
    address: int
    values: tuple[int, ...]

    def __str__(self) -> str:
        return f"write {self.table.name.lower()} {self.address}={list(self.values)}"


class SlaveBackoff:
    """How long a silent slave is skipped (pure bookkeeping; time comes in as ``now``)."""

    def __init__(self, base: float, limit: float) -> None:
        self.base = base
        self.limit = limit
        self.silences = 0
        self.until = 0.0

    def remaining(self, now: float) -> float:
        """Seconds the slave is still skipped (0 when it may be asked)."""
        return max(0.0, self.until - now)

    def on_no_answer(self, now: float) -> None:
        """Record a silence: skip the slave for the next (doubling) interval."""
        delay = min(self.limit, self.base * (2**self.silences))
        self.silences += 1
        self.until = now + delay

    def on_answer(self) -> None:
        """The slave answered: ask it freely again."""
        self.silences = 0
        self.until = 0.0


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """Counters of one link."""

    requests: int
    no_answers: int
    skipped: int
    queued: int


class ModbusLink:
    """The single owner of one bus (see the module docstring for threading)."""

    def __init__(
        self,
        endpoint: ModbusEndpoint,
        *,
        connect_timeout: float = 3.0,
        backoff_base: float = 1.0,
        backoff_max: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.users = 0
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        self._client: Any = None
        self._queue = TurnQueue(endpoint.frame_gap())
        self._connecting = TurnQueue(0.0)
        self._backoff: dict[int, SlaveBackoff] = {}
        self._requests = 0
        self._no_answers = 0
        self._skipped = 0

    def __repr__(self) -> str:
        return f"ModbusLink({self.endpoint.key!r}, users={self.users})"

    @property
    def connected(self) -> bool:
        """True while the client has a live transport."""
        return self._client is not None and bool(self._client.connected)

    def statistics(self) -> LinkStatistics:
        """Requests sent, silences, requests skipped by backoff, requests waiting now."""
        return LinkStatistics(self._requests, self._no_answers, self._skipped, self._queue.waiting)

    def backoff_remaining(self, unit: int) -> float:
        """Seconds the slave ``unit`` is still skipped."""
        backoff = self._backoff.get(unit)
        return 0.0 if backoff is None else backoff.remaining(self._clock())

    # -- loop side ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect the client if it is not connected (one attempt shared by all callers)."""
        async with self._connecting.turn():
            if self.connected:
                return
            if self._client is not None:
                self._client.close()
            self._client = self._make_client()
            try:
                connected = await bounded(self._client.connect(), self.connect_timeout)
            except TimeoutError:
                connected = False
            if not connected:
                self._client.close()
                self._client = None
                raise LinkDownError(f"cannot connect to {self.endpoint}")
            self._backoff.clear()  # a new connection is a fresh start for every slave

    async def close(self) -> None:
        """Close the client (idempotent)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def execute(
        self, unit: int, request: ReadRequest | WriteRequest, reply_within: float
    ) -> list[int] | list[bool]:
        """Send one request to slave ``unit`` in its turn; values read (or written)."""
        self._check_backoff(unit, request)
        async with self._queue.turn():
            return await self._execute_in_turn(unit, request, reply_within)

    async def read_modify_write(
        self,
        unit: int,
        address: int,
        change: Callable[[int], int],
        reply_within: float,
    ) -> int:
        """Read one holding register, write ``change(value)`` back, in one bus turn."""
        self._check_backoff(unit, ReadRequest(Table.HOLDING_REGISTER, address, 1))
        async with self._queue.turn():
            read = ReadRequest(Table.HOLDING_REGISTER, address, 1)
            current = int((await self._execute_in_turn(unit, read, reply_within))[0])
            new = change(current)
            await self._queue.pause()
            write = WriteRequest(Table.HOLDING_REGISTER, address, (new,))
            await self._execute_in_turn(unit, write, reply_within)
            return new

    def _check_backoff(self, unit: int, request: ReadRequest | WriteRequest) -> None:
        left = self.backoff_remaining(unit)
        if left > 0:
            self._skipped += 1
            raise SlaveSkippedError(
                f"slave {unit} on {self.endpoint.key} did not answer; skipped for another "
                f"{left:.1f} s ({request})"
            )

    async def _execute_in_turn(
        self, unit: int, request: ReadRequest | WriteRequest, reply_within: float
    ) -> list[int] | list[bool]:
        # Another request may have found the slave silent while this one waited in line.
        self._check_backoff(unit, request)
        if not self.connected:
            raise LinkDownError(f"{self.endpoint.key} is not connected")
        self._requests += 1
        try:
            response = await bounded(self._send(unit, request), reply_within)
        except (TimeoutError, ModbusIOException) as exc:
            if not self.connected:
                raise LinkDownError(f"{self.endpoint.key}: connection lost") from exc
            self._no_answers += 1
            self._backoff.setdefault(
                unit, SlaveBackoff(self._backoff_base, self._backoff_max)
            ).on_no_answer(self._clock())
            raise NoAnswerError(
                f"slave {unit} on {self.endpoint.key} did not answer within {reply_within:g} s "
                f"({request})"
            ) from exc
        except ConnectionException as exc:
            raise LinkDownError(f"{self.endpoint.key}: {exc}") from exc
        backoff = self._backoff.get(unit)
        if backoff is not None:
            backoff.on_answer()
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            what = f"slave {unit} {request}"
            if code in GATEWAY_CODES:
                raise GatewayTargetError(code, what)
            raise ExceptionResponseError(code, what)
        if isinstance(request, WriteRequest):
            return list(request.values)
        if request.table.is_bit:
            return [bool(b) for b in response.bits[: request.count]]
        registers: list[int] = list(response.registers)
        if len(registers) != request.count:
            raise ExceptionResponseError(0, f"slave {unit} {request}: got {len(registers)} words")
        return registers

    async def _send(self, unit: int, request: ReadRequest | WriteRequest) -> Any:
        client = self._client
        table = request.table
        if isinstance(request, ReadRequest):
            read = {
                Table.COIL: client.read_coils,
                Table.DISCRETE_INPUT: client.read_discrete_inputs,
                Table.INPUT_REGISTER: client.read_input_registers,
                Table.HOLDING_REGISTER: client.read_holding_registers,
            }[table]
            return await read(request.address, count=request.count, device_id=unit)
        if table is Table.COIL:
            return await client.write_coil(request.address, bool(request.values[0]), device_id=unit)
        if len(request.values) == 1:
            return await client.write_register(request.address, request.values[0], device_id=unit)
        return await client.write_registers(request.address, list(request.values), device_id=unit)

    def _make_client(self) -> Any:
        ep = self.endpoint
        # retries=0 and reconnect_delay=0: the connection runner owns retries and reconnects.
        # pymodbus' one timeout covers connect and replies alike; the link bounds both itself
        # (connect_timeout, and each request's reply_within), so pymodbus' own stays out of
        # the way.
        common: dict[str, Any] = {
            "timeout": _PYMODBUS_TIMEOUT,
            "retries": 0,
            "reconnect_delay": 0,
            "name": ep.key,
        }
        if ep.is_serial:
            client: Any = AsyncModbusSerialClient(
                ep.device,
                framer=FramerType.RTU,
                baudrate=ep.baud,
                bytesize=ep.bytesize,
                parity=ep.parity,
                stopbits=ep.stopbits,
                **common,
            )
        else:
            framer = FramerType.RTU if ep.rtu_framing else FramerType.SOCKET
            client = AsyncModbusTcpClient(ep.host, port=ep.port, framer=framer, **common)
        # pymodbus closes a TCP connection after a few silences in a row; on a shared
        # gateway that would take every slave down for one dead one. Backoff handles it.
        client.set_max_no_responses(1_000_000)
        return client


class LinkRegistry:
    """One ``ModbusLink`` per bus, shared by every connector on it (trio side, no I/O)."""

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        backoff_base: float = 1.0,
        backoff_max: float = 10.0,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._links: dict[str, ModbusLink] = {}

    @property
    def links(self) -> Mapping[str, ModbusLink]:
        """The links in use, by bus key."""
        return dict(self._links)

    def acquire(self, endpoint: ModbusEndpoint) -> ModbusLink:
        """The link for ``endpoint``'s bus, made on first use; counts one more user."""
        link = self._links.get(endpoint.key)
        if link is None:
            link = ModbusLink(
                endpoint,
                connect_timeout=self.connect_timeout,
                backoff_base=self.backoff_base,
                backoff_max=self.backoff_max,
            )
            self._links[endpoint.key] = link
        elif link.endpoint != endpoint:
            raise FaultError(
                f"{endpoint.key} is already in use as {link.endpoint}; "
                f"every connector on one bus must use the same line settings (got {endpoint})"
            )
        link.users += 1
        return link

    def release(self, link: ModbusLink) -> bool:
        """One user fewer; True when it was the last (the caller then closes the link)."""
        link.users -= 1
        if link.users > 0:
            return False
        if self._links.get(link.endpoint.key) is link:
            del self._links[link.endpoint.key]
        return True
