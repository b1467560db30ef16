"""A simulated Modbus device (or a whole RS-485 bus of them) on pymodbus' real server.

``ModbusSim`` serves one or more ``SimDevice`` (one per unit id) over TCP (MBAP or RTU
framing) or over a serial port with RTU framing. Each device is described by a register
map (the same ``RegisterMap`` the driver uses, so the sim and the gateway agree on every
address, type, byte order and scale) plus:

- ``values``: initial engineering values by row name;
- ``behaviours``: values that move -- ``Drift`` (a temperature wandering around a base),
  ``Accumulate`` (a meter counting up), ``Follow`` (a status that follows a command row
  after a delay, like a fan proving its run command);
- writable rows act as actuators: a written value is stored and read back, and any
  ``Follow`` of it tracks it;
- ``faults``: rows whose reads (and writes) draw a Modbus exception code, to test faults;
- ``online``: a device set offline stops answering (the request times out, as on a bus).

Values are computed when a request asks for them, from the sim's clock: nothing runs in
the background. ``strict=True`` makes addresses outside every row answer "illegal data
address" (a strict device); by default they read as 0.

Lifetime: on the asyncio side, ``async with run_modbus_sim(devices, port=0) as sim`` (or
``await sim.start()`` / ``await sim.stop()``; ``stop`` then ``start`` again is a device
going away and coming back on the same port). From trio, ``async with
open_modbus_sim(aio, devices) as sim`` runs it on the gateway's asyncio thread. After
``start``, ``sim.port`` is the bound TCP port. ``demo_devices()`` builds the demo's
devices (no CLI needed).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from drivers.aio import AioHost
from drivers.modbus.encoding import decode, encode
from drivers.modbus.regmap import RegisterMap, RegisterRow, Table

__all__ = [
    "DEMO_REGISTER_MAP",
    "Accumulate",
    "Drift",
    "Follow",
    "ModbusSim",
    "SimDevice",
    "demo_devices",
    "open_modbus_sim",
    "run_modbus_sim",
]

_TABLE_BY_FUNCTION: Final = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE_INPUT,
    4: Table.INPUT_REGISTER,
    3: Table.HOLDING_REGISTER,
    6: Table.HOLDING_REGISTER,
    16: Table.HOLDING_REGISTER,
    22: Table.HOLDING_REGISTER,
    23: Table.HOLDING_REGISTER,
}


@dataclass(frozen=True, slots=True)
class Drift:
    """``base + amplitude * sin(2 pi t / period)``: a temperature wandering around a base."""

    base: float
    amplitude: float = 1.0
    period: float = 60.0

    def value(self, t: float) -> float:
        """The value ``t`` seconds after the sim started."""
        return self.base + self.amplitude * math.sin(2 * math.pi * t / self.period)


@dataclass(frozen=True, slots=True)
class Accumulate:
    """``start + rate * t``: a meter counting up (``rate`` per second)."""

    rate: float
    start: float = 0.0

    def value(self, t: float) -> float:
        """The value ``t`` seconds after the sim started."""
        return self.start + self.rate * t


@dataclass(frozen=True, slots=True)
class Follow:
    """The value of row ``source`` as it was ``delay`` seconds ago (a proof of a command)."""

    source: str
    delay: float = 0.0


Behaviour = Drift | Accumulate | Follow


@dataclass
class SimDevice:
    """One simulated slave: its unit id, register map, initial values and behaviours."""

    unit: int
    register_map: RegisterMap
    values: Mapping[str, float | bool] = field(default_factory=dict)
    behaviours: Mapping[str, Behaviour] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    online: bool = True
    strict: bool = False

    def __post_init__(self) -> None:
        for name in [*self.values, *self.behaviours, *self.faults]:
            self.register_map.row(name)  # a FaultError names the map and the row
        for name, behaviour in self.behaviours.items():
            if isinstance(behaviour, Follow):
                self.register_map.row(behaviour.source)
            if isinstance(behaviour, Follow) and behaviour.source == name:
                raise ValueError(f"{name} cannot follow itself")


class _DeviceState:
    """The registers of one device and the history of its commanded rows."""

    def __init__(self, device: SimDevice, clock: Callable[[], float], t0: float) -> None:
        self.device = device
        self._clock = clock
        self._t0 = t0
        self.tables: dict[Table, dict[int, int]] = {t: {} for t in Table}
        self.requests = 0
        # Commanded values over time, for Follow: row name -> [(t, registers)].
        self._history: dict[str, list[tuple[float, list[int]]]] = {}
        for row in device.register_map:
            if row.name in device.values:  # other rows start as zero registers
                self._store(row, _raw_registers(row, device.values[row.name]))
        self._followed = {b.source for b in device.behaviours.values() if isinstance(b, Follow)}

    def now(self) -> float:
        return self._clock() - self._t0

    def rows_in(self, table: Table, start: int, count: int) -> list[RegisterRow]:
        end = start + count
        return [
            r
            for r in self.device.register_map
            if r.table is table and r.address < end and start < r.address + r.size
        ]

    def _store(self, row: RegisterRow, registers: list[int]) -> None:
        store = self.tables[row.table]
        if row.data.bit is not None:
            old = store.get(row.address, 0)
            mask = 1 << row.data.bit
            store[row.address] = (old | mask) if registers[0] else (old & ~mask)
            return
        for i, reg in enumerate(registers):
            store[row.address + i] = reg

    def _load(self, row: RegisterRow) -> list[int]:
        store = self.tables[row.table]
        return [store.get(row.address + i, 0) for i in range(row.size)]

    def refresh(self, rows: Sequence[RegisterRow]) -> None:
        """Recompute the moving rows among ``rows`` for the current time."""
        t = self.now()
        for row in rows:
            behaviour = self.device.behaviours.get(row.name)
            if behaviour is None:
                continue
            if isinstance(behaviour, Follow):
                self._store(row, self._followed_registers(behaviour, t))
            else:
                self._store(row, _raw_registers(row, behaviour.value(t)))

    def _followed_registers(self, follow: Follow, t: float) -> list[int]:
        source = self.device.register_map.row(follow.source)
        history = self._history.get(follow.source, [])
        due = [regs for (when, regs) in history if when <= t - follow.delay]
        if due:
            regs = due[-1]
        elif history:
            regs = self._initial(source)
        else:
            regs = self._load(source)
        if source.data.is_bit:
            return [1 if decode(source.data, regs) else 0]
        return regs

    def _initial(self, row: RegisterRow) -> list[int]:
        if row.name in self.device.values:
            return _raw_registers(row, self.device.values[row.name])
        return [0] * row.size

    def record_commands(self, rows: Sequence[RegisterRow]) -> None:
        """Remember the new values of written rows that something follows."""
        t = self.now()
        for row in rows:
            if row.name in self._followed:
                self._history.setdefault(row.name, []).append((t, self._load(row)))

    def fault_for(self, rows: Sequence[RegisterRow]) -> ExcCodes | None:
        for row in rows:
            code = self.device.faults.get(row.name)
            if code is not None:
                return ExcCodes(code)
        return None

    def value(self, name: str) -> float | bool:
        """The engineering value of a row now (as a client would read it)."""
        row = self.device.register_map.row(name)
        self.refresh([row])
        raw = decode(row.data, self._load(row))
        if row.data.is_bit:
            return bool(raw)
        val = float(raw)
        return row.scale.apply(val) if row.scale is not None else val

    def set_value(self, name: str, value: float | bool) -> None:
        """Change a row locally (a sensor moving, a local override)."""
        row = self.device.register_map.row(name)
        self._store(row, _raw_registers(row, value))
        self.record_commands([row])


def _raw_registers(row: RegisterRow, value: float | bool) -> list[int]:
    """Registers holding an engineering value (bits: ``[0]``/``[1]``)."""
    if row.data.is_bit:
        return [1 if value else 0]
    raw = float(value)
    if row.scale is not None:
        raw = row.scale.inverse(raw)
    return encode(row.data, raw)


class _SimDatastore(ModbusServerContext):
    """What the pymodbus server asks for values (duck-typed to its datastore interface)."""

    def __init__(self, states: Mapping[int, _DeviceState]) -> None:
        # Deliberately not calling super().__init__: it builds pymodbus' own stores.
        self.states = states
        self.simdevices: list[Any] = []
        self.old_simulator = True  # tells the server to call this object directly

    def device_ids(self) -> list[int]:
        return list(self.states)

    def _state(self, device_id: int) -> _DeviceState:
        state = self.states.get(device_id)
        if state is None or not state.device.online:
            # The server is built with ignore_missing_devices: no answer, as on a bus.
            raise NoSuchIdException(f"unit {device_id} does not answer")
        return state

    def count_request(self, sending: bool, pdu: Any) -> Any:
        """pymodbus ``trace_pdu`` hook: count every request received, per unit id."""
        if not sending:
            state = self.states.get(int(pdu.dev_id))
            if state is not None:
                state.requests += 1
        return pdu

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        state = self._state(device_id)
        table = _TABLE_BY_FUNCTION.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        rows = state.rows_in(table, address, count)
        if (code := state.fault_for(rows)) is not None:
            return code
        if state.device.strict and not _covered(rows, address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        state.refresh(rows)
        store = state.tables[table]
        regs = [store.get(a, 0) for a in range(address, address + count)]
        if table.is_bit:
            return [bool(r) for r in regs]
        return regs

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        state = self._state(device_id)
        table = _TABLE_BY_FUNCTION.get(func_code)
        if table is None or not table.writable:
            return ExcCodes.ILLEGAL_FUNCTION
        rows = state.rows_in(table, address, len(values))
        if (code := state.fault_for(rows)) is not None:
            return code
        if (
            not rows
            or not all(r.writable for r in rows)
            or not _covered(rows, address, len(values))
        ):
            return ExcCodes.ILLEGAL_ADDRESS
        store = state.tables[table]
        for i, val in enumerate(values):
            store[address + i] = int(val) & 0xFFFF
        state.record_commands(rows)
        return None


def _covered(rows: Sequence[RegisterRow], address: int, count: int) -> bool:
    covered = {a for r in rows for a in range(r.address, r.address + r.size)}
    return all(a in covered for a in range(address, address + count))


SerialFraming = Literal["socket", "rtu"]


class ModbusSim:
    """Simulated slaves on one pymodbus server (TCP, RTU over TCP, or RTU on a serial port).

    Construct anywhere (no I/O); ``start``/``stop`` and every state query run on the
    asyncio loop that hosts the server.
    """

    def __init__(
        self,
        devices: Sequence[SimDevice],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        framing: SerialFraming = "socket",
        serial_port: str | None = None,
        baud: int = 19200,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        units = [d.unit for d in devices]
        if len(set(units)) != len(units):
            raise ValueError(f"unit ids must be unique: {units}")
        self.host = host
        self.port = port
        self.framing: SerialFraming = "rtu" if serial_port else framing
        self.serial_port = serial_port
        self.baud, self.parity, self.stopbits, self.bytesize = baud, parity, stopbits, bytesize
        t0 = clock()
        self._states = {d.unit: _DeviceState(d, clock, t0) for d in devices}
        self._datastore = _SimDatastore(self._states)
        self._server: Any = None

    @property
    def running(self) -> bool:
        """True while the server is serving."""
        return self._server is not None

    async def start(self) -> None:
        """Start serving; binds ``port`` (an ephemeral one the first time if 0)."""
        if self._server is not None:
            return
        framer = FramerType.RTU if self.framing == "rtu" else FramerType.SOCKET
        server: Any
        if self.serial_port:
            server = ModbusSerialServer(
                self._datastore,
                framer=FramerType.RTU,
                port=self.serial_port,
                ignore_missing_devices=True,
                trace_pdu=self._datastore.count_request,
                baudrate=self.baud,
                parity=self.parity,
                stopbits=self.stopbits,
                bytesize=self.bytesize,
            )
        else:
            server = ModbusTcpServer(
                self._datastore,
                framer=framer,
                address=(self.host, self.port),
                ignore_missing_devices=True,
                trace_pdu=self._datastore.count_request,
            )
        await server.serve_forever(background=True)
        if not self.serial_port:
            self.port = int(server.transport.sockets[0].getsockname()[1])
        self._server = server

    async def stop(self) -> None:
        """Stop serving and drop every client connection (the device goes away)."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()

    @property
    def uri(self) -> str:
        """The connector ``uri`` that reaches this sim over TCP."""
        scheme = "modbus-rtutcp" if self.framing == "rtu" else "modbus-tcp"
        return f"{scheme}://{self.host}:{self.port}"

    def device(self, unit: int) -> SimDevice:
        """The device with unit id ``unit``."""
        return self._states[unit].device

    def requests(self, unit: int) -> int:
        """Requests addressed to ``unit`` so far (answered or not)."""
        return self._states[unit].requests

    def value(self, unit: int, name: str) -> float | bool:
        """The engineering value of row ``name`` of ``unit`` now."""
        return self._states[unit].value(name)

    def registers(self, unit: int, name: str) -> list[int]:
        """The raw registers (or bit) of row ``name`` of ``unit``."""
        state = self._states[unit]
        row = state.device.register_map.row(name)
        return [state.tables[row.table].get(row.address + i, 0) for i in range(row.size)]

    def set_value(self, unit: int, name: str, value: float | bool) -> None:
        """Change row ``name`` of ``unit`` locally."""
        self._states[unit].set_value(name, value)

    def set_online(self, unit: int, online: bool) -> None:
        """Make ``unit`` answer (True) or stay silent (False)."""
        self._states[unit].device.online = online

    def set_fault(self, unit: int, name: str, code: int | None) -> None:
        """Make row ``name`` draw exception ``code`` (None clears it)."""
        faults = self._states[unit].device.faults
        if code is None:
            faults.pop(name, None)
        else:
            self._states[unit].device.register_map.row(name)
            faults[name] = code


@contextlib.asynccontextmanager
async def run_modbus_sim(
    devices: Sequence[SimDevice], *, port: int = 0, **options: Any
) -> AsyncIterator[ModbusSim]:
    """Asyncio side: serve ``devices`` for the body of the block (``sim.port`` is bound)."""
    sim = ModbusSim(devices, port=port, **options)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@contextlib.asynccontextmanager
async def open_modbus_sim(
    aio: AioHost, devices: Sequence[SimDevice], *, port: int = 0, **options: Any
) -> AsyncIterator[ModbusSim]:
    """Trio side: serve ``devices`` on the asyncio thread of ``aio`` for the block."""
    sim = ModbusSim(devices, port=port, **options)
    await aio.run(sim.start)
    try:
        yield sim
    finally:
        await aio.run_shielded(sim.stop)


#: The demo's air handler: sensors that drift, a fan that proves its command, a meter.
DEMO_REGISTER_MAP: Final = """\
name,addr,data,rw,scale,unit,dis,tags,relinquish
ping,40001,u2,r,,,Device status,,
supplyTemp,30001,f4,r,,°C,Supply air temperature,sensor temp his,
returnTemp,30003,s2,r,/10,°C,Return air temperature,sensor temp his,
fanCmd,00001,bit,rw,,,Supply fan command,cmd fan,false
fanStatus,10001,bit,r,,,Supply fan status,sensor fan,
damperCmd,40002,u2,rw,/10,%,Outside air damper,cmd damper,0
supplySp,40003,s2,rw,/10,°C,Supply air setpoint,sp temp,18
energy,30005,u4,r,/10,kWh,Energy,sensor energy his,
alarms,40004,u2,r,,,Alarm word,,
filterAlarm,40004,bit:0,r,,,Filter alarm,sensor alarm,
freezeAlarm,40004,bit:1,r,,,Freeze alarm,sensor alarm,
"""


def demo_devices(units: Sequence[int] = (1,)) -> list[SimDevice]:
    """The demo's air handlers, one per unit id, with moving values."""
    regmap = RegisterMap.parse(DEMO_REGISTER_MAP, source="demo/ahu.csv")
    return [
        SimDevice(
            unit=unit,
            register_map=regmap,
            values={"ping": 1, "supplySp": 18.0, "damperCmd": 20.0},
            behaviours={
                "supplyTemp": Drift(base=18.0 + unit / 10, amplitude=0.8, period=300.0),
                "returnTemp": Drift(base=22.0, amplitude=0.5, period=600.0),
                "fanStatus": Follow("fanCmd", delay=2.0),
                "energy": Accumulate(rate=12.5 / 3600, start=1000.0 * unit),
            },
        )
        for unit in units
    ]
