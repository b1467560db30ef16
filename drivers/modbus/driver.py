"""The Modbus driver: one connector (one slave on one bus) behind the Driver interface.

Connector record tags:

======================  ===========================================================
tag                     meaning
======================  ===========================================================
``uri``                 the bus (``drivers.modbus.uri``): ``modbus-tcp://host:502``,
                        ``modbus-rtutcp://host:4001``, ``modbus-rtu:///dev/ttyUSB0?...``
``modbusSlave``         unit id, 0..255 (default 1)
``modbusBlockGap``      unrequested registers allowed inside one read (default 4)
``modbusBlockMax``      registers per read, 1..125 (default 100; bits: 2000)
``modbusReadTimeout``   seconds (or a Number with ``ms``/``s``/``min``) to wait for an
                        answer (default 3 s)
``modbusWriteTimeout``  the same for writes (default: the read timeout)
======================  ===========================================================

Points name a row of the connector's register map in ``modbusCur`` (read) and
``modbusWrite`` (write). Values: ``bit`` rows give Bool; numeric rows give a Number in the
row's unit (else the point's ``unit``), after scaling; a point of ``kind`` Bool reads a
numeric row as ``value != 0`` and a point of kind Number reads a bit as 0/1. A Number is
a float64, so ``u8``/``s8`` values beyond 2**53 lose their low bits.

Reads: the rows wanted are grouped into blocks (``blocks.optimize``); a block that draws an
exception response that may concern one register (codes 1-4) is split into one request per
row and stays split for this connection, so one bad register faults only its points
(``FaultError`` in those Readings). A gateway that cannot reach the slave (0x0A/0x0B) gives
``remoteDown`` Readings. No answer, refusal or a lost connection raises ``DownError``.

Writes: coils take Bool (a Number writes ``!= 0``); registers take a Number (a Bool writes
1/0), undone through the row's scale, rounded and range checked (``FaultError`` if it does
not fit). ``bit:N`` rows are written by read-modify-write of their register in one bus
turn (not atomic against other masters). Modbus has no priorities: ``level`` is ignored.
Relinquish (``val is None``) writes the row's ``relinquish`` value when the map gives one
and otherwise sends nothing: the device keeps the last value written.

``open`` joins the bus link, connects it and reads the map's ``ping`` row (or, without
one, the first readable row) to prove the slave answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Final, TypeVar, TypeVarTuple

from drivers.aio import AioHost
from drivers.base import (
    DownError,
    DriverError,
    FaultError,
    PointRec,
    Reading,
    RemoteStatusError,
    point_id,
)
from drivers.modbus.blocks import (
    DEFAULT_GAP,
    DEFAULT_MAX_BITS,
    DEFAULT_MAX_REGISTERS,
    PROTOCOL_MAX_REGISTERS,
    Block,
    Span,
    optimize,
    split,
)
from drivers.modbus.encoding import EncodingError, decode, encode, set_bit
from drivers.modbus.learn import learn_points
from drivers.modbus.link import (
    ExceptionResponseError,
    LinkRegistry,
    ModbusLink,
    ReadRequest,
    WriteRequest,
)
from drivers.modbus.regmap import RegisterMap, RegisterRow, Table
from drivers.modbus.uri import ModbusEndpoint, parse_modbus_uri
from gateway.haystack.kinds import Number, Ref, Uri, Value

__all__ = ["ModbusDriver"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_TIMEOUT: Final = 3.0
_PLAN_CACHE_SIZE: Final = 64
_DURATION_UNITS: Final = {None: 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "min": 60.0}

#: One block's outcome on the loop side: its data, or the error that ended it.
_BlockResult = tuple[Block, "list[int] | list[bool] | DriverError"]


def _conn_int(conn: Mapping[str, Value], tag: str, default: int, low: int, high: int) -> int:
    val = conn.get(tag)
    if val is None:
        return default
    if not isinstance(val, Number) or not val.is_int() or not low <= val.val <= high:
        raise FaultError(f"{tag} must be an integer Number in {low}..{high}, not {val!r}")
    return int(val.val)


def _conn_seconds(conn: Mapping[str, Value], tag: str, default: float) -> float:
    val = conn.get(tag)
    if val is None:
        return default
    if not isinstance(val, Number) or val.unit not in _DURATION_UNITS or not val.val > 0:
        raise FaultError(f"{tag} must be a positive duration (s, ms, min), not {val!r}")
    return val.val * _DURATION_UNITS[val.unit]


class ModbusDriver:
    """One Modbus slave on a shared bus link (see the module docstring)."""

    def __init__(
        self,
        conn: Mapping[str, Value],
        register_map: RegisterMap,
        *,
        aio: AioHost,
        links: LinkRegistry,
    ) -> None:
        uri = conn.get("uri")
        if not isinstance(uri, (str, Uri)):
            raise FaultError(f"connector has no uri: {uri!r}")
        self.endpoint: ModbusEndpoint = parse_modbus_uri(str(uri))
        self.unit = _conn_int(conn, "modbusSlave", 1, 0, 255)
        self.block_gap = _conn_int(conn, "modbusBlockGap", DEFAULT_GAP, 0, PROTOCOL_MAX_REGISTERS)
        self.block_max = _conn_int(
            conn, "modbusBlockMax", DEFAULT_MAX_REGISTERS, 1, PROTOCOL_MAX_REGISTERS
        )
        self.read_timeout = _conn_seconds(conn, "modbusReadTimeout", DEFAULT_TIMEOUT)
        self.write_timeout = _conn_seconds(conn, "modbusWriteTimeout", self.read_timeout)
        conn_id = conn.get("id")
        self.conn_ref = conn_id if isinstance(conn_id, Ref) else None
        self.register_map = register_map
        self._aio = aio
        self._links = links
        self._link: ModbusLink | None = None
        self._plans: dict[tuple[str, ...], list[Block]] = {}

    def __repr__(self) -> str:
        return f"ModbusDriver({self.endpoint.key!r}, slave={self.unit})"

    @property
    def link(self) -> ModbusLink | None:
        """The bus link while open."""
        return self._link

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> dict[str, Value]:
        """Join and connect the bus link, then ping the slave; device info tags."""
        if self._link is None:
            self._link = self._links.acquire(self.endpoint)
        link = self._link
        try:
            await self._on_loop(link.connect)
            ping = self._ping_row()
            if ping is not None:
                request = ReadRequest(ping.table, ping.address, ping.size)
                await self._on_loop(link.execute, self.unit, request, self.read_timeout)
        except BaseException:
            await self.aclose()
            raise
        info: dict[str, Value] = {
            "uri": Uri(str(self.endpoint)),
            "modbusSlave": Number(self.unit),
            "modbusLink": self.endpoint.key,
            "modbusRegMap": self.register_map.source,
        }
        if ping is not None:
            info["modbusPing"] = ping.name
        return info

    async def aclose(self) -> None:
        """Leave the bus link; the last connector on a bus closes it."""
        link, self._link = self._link, None
        self._plans.clear()
        if link is not None and self._links.release(link):
            await self._aio.run_shielded(link.close)

    async def _on_loop(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
        # The aio host's own bound is a safety net; when it fires the bus is stuck: down.
        try:
            return await self._aio.run(fn, *args)
        except TimeoutError as exc:
            raise DownError(f"{self!r}: no result from the asyncio side in time") from exc

    def _ping_row(self) -> RegisterRow | None:
        ping = self.register_map.get("ping")
        if ping is not None and ping.readable:
            return ping
        return next((row for row in self.register_map if row.readable), None)

    def _require_link(self) -> ModbusLink:
        if self._link is None:
            raise DownError(f"{self!r} is not open")
        return self._link

    # -- read ----------------------------------------------------------------------------

    def _row(self, point: PointRec, tag: str) -> RegisterRow:
        name = point.get(tag)
        if not isinstance(name, str) or not name:
            raise FaultError(f"point has no {tag} register name: {name!r}")
        row = self.register_map.row(name)
        if tag == "modbusCur" and not row.readable:
            raise FaultError(f"register {name!r} of {self.register_map.source} is write-only")
        if tag == "modbusWrite" and not row.writable:
            raise FaultError(f"register {name!r} of {self.register_map.source} is read-only")
        return row

    async def read(self, points: Sequence[PointRec]) -> list[Reading]:
        """One Reading per point; raises DownError when the slave or bus is down."""
        link = self._require_link()
        errors: dict[int, DriverError] = {}
        rows: dict[int, RegisterRow] = {}
        for i, point in enumerate(points):
            try:
                rows[i] = self._row(point, "modbusCur")
            except FaultError as exc:
                errors[i] = exc
        values: dict[str, int | float | bool | DriverError] = {}
        if rows:
            wanted = {row.name: row for row in rows.values()}
            key = tuple(sorted(wanted))
            blocks = self._plans.get(key) or self._plan(wanted.values())
            results, refused = await self._on_loop(
                _read_blocks, link, self.unit, blocks, self.read_timeout
            )
            self._remember(key, blocks, refused)
            values = _decode_results(results, wanted)
        readings = []
        for i, point in enumerate(points):
            pid = point_id(point)
            if i in errors:
                readings.append(Reading(pid, err=errors[i]))
                continue
            raw = values.get(rows[i].name)
            if isinstance(raw, DriverError):
                readings.append(Reading(pid, err=raw))
            elif raw is None:
                readings.append(Reading(pid, err=FaultError(f"{rows[i].name} was not read")))
            else:
                readings.append(Reading(pid, _to_haystack(rows[i], raw, point)))
        return readings

    def _plan(self, rows: Iterable[RegisterRow]) -> list[Block]:
        spans = [Span(r.table, r.address, r.size, r.name) for r in rows]
        return optimize(
            spans, gap=self.block_gap, max_registers=self.block_max, max_bits=DEFAULT_MAX_BITS
        )

    def _remember(self, key: tuple[str, ...], blocks: list[Block], refused: set[Block]) -> None:
        if refused:
            blocks = [sub for b in blocks for sub in (split(b) if b in refused else [b])]
        if key not in self._plans and len(self._plans) >= _PLAN_CACHE_SIZE:
            self._plans.pop(next(iter(self._plans)))
        self._plans[key] = blocks

    # -- write ---------------------------------------------------------------------------

    async def write(self, point: PointRec, val: Value, level: int) -> None:
        """Write the effective value (``None``: the row's relinquish value, if any)."""
        del level  # Modbus has no priority array
        link = self._require_link()
        row = self._row(point, "modbusWrite")
        if val is None:
            val = row.relinquish
            if val is None:
                return
        if row.data.bit is not None:
            on = _as_bool(row, val)
            bit = row.data.bit
            await self._on_loop(
                link.read_modify_write,
                self.unit,
                row.address,
                lambda reg: set_bit(reg, bit, on),
                self.write_timeout,
            )
            return
        request = _write_request(row, val)
        await self._on_loop(link.execute, self.unit, request, self.write_timeout)

    # -- learn ---------------------------------------------------------------------------

    async def learn(self, path: Value = None) -> list[dict[str, Value]]:
        """The register map's rows as point records (a map is flat: only ``path=None``)."""
        if path is not None:
            return []
        return learn_points(self.register_map, conn_ref=self.conn_ref)


# -- loop side ---------------------------------------------------------------------------


async def _read_blocks(
    link: ModbusLink, unit: int, blocks: list[Block], reply_within: float
) -> tuple[list[_BlockResult], set[Block]]:
    """Read every block on the loop; split refused ones. DownError ends the whole read."""
    results: list[_BlockResult] = []
    refused: set[Block] = set()
    remote_down: RemoteStatusError | None = None
    for block in blocks:
        if remote_down is not None:
            # The gateway cannot reach the slave: asking again costs its timeout each time.
            results.append((block, remote_down))
            continue
        try:
            results.append((block, await _read_one(link, unit, block, reply_within)))
        except RemoteStatusError as exc:
            remote_down = exc
            results.append((block, exc))
        except ExceptionResponseError as exc:
            parts = split(block)
            if not exc.splittable or len(parts) == 1:
                results.append((block, exc))
                continue
            refused.add(block)
            for part in parts:
                try:
                    results.append((part, await _read_one(link, unit, part, reply_within)))
                except (ExceptionResponseError, RemoteStatusError) as part_exc:
                    results.append((part, part_exc))
    return results, refused


async def _read_one(
    link: ModbusLink, unit: int, block: Block, reply_within: float
) -> list[int] | list[bool]:
    return await link.execute(
        unit, ReadRequest(block.table, block.start, block.count), reply_within
    )


# -- values ------------------------------------------------------------------------------


def _decode_results(
    results: list[_BlockResult], wanted: Mapping[str, RegisterRow]
) -> dict[str, int | float | bool | DriverError]:
    values: dict[str, int | float | bool | DriverError] = {}
    for block, data in results:
        for span in block.spans:
            name = str(span.key)
            if isinstance(data, DriverError):
                values[name] = data
                continue
            row = wanted[name]
            try:
                values[name] = decode(row.data, block.slice(data, span))
            except EncodingError as exc:
                values[name] = FaultError(f"{name}: {exc}")
    return values


def _to_haystack(row: RegisterRow, raw: int | float | bool, point: PointRec) -> Value:
    kind = point.get("kind")
    if row.data.is_bit:
        on = bool(raw)
        return Number(1.0 if on else 0.0, row.unit) if kind == "Number" else on
    val = float(raw)
    if row.scale is not None:
        val = row.scale.apply(val)
    if kind == "Bool":
        return val != 0.0
    unit = row.unit if row.unit is not None else point.get("unit")
    return Number(val, unit if isinstance(unit, str) else None)


def _as_bool(row: RegisterRow, val: Value) -> bool:
    if isinstance(val, bool):
        return val
    if isinstance(val, Number):
        return val.val != 0.0
    raise FaultError(f"cannot write {val!r} to the bit register {row.name!r}")


def _write_request(row: RegisterRow, val: Value) -> WriteRequest:
    if row.table is Table.COIL:
        return WriteRequest(Table.COIL, row.address, (1 if _as_bool(row, val) else 0,))
    if isinstance(val, bool):
        raw: float = 1.0 if val else 0.0
    elif isinstance(val, Number):
        raw = val.val
    else:
        raise FaultError(f"cannot write {val!r} to the numeric register {row.name!r}")
    if row.scale is not None:
        raw = row.scale.inverse(raw)
    try:
        registers = encode(row.data, raw)
    except EncodingError as exc:
        raise FaultError(f"cannot write {val!r} to {row.name!r}: {exc}") from None
    return WriteRequest(Table.HOLDING_REGISTER, row.address, tuple(registers))
