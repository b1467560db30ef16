"""A scripted driver for the runner tests: the Driver protocol, with behaviour set by the test.

A real device cannot run under trio's virtual clock, so the runner's timing rules are tested
against this double; the integration tests run the same runner against the real Modbus driver
and the pymodbus server. Every call is logged with its (virtual) time.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from drivers.base import DownError, DriverError, PointRec, Reading, point_id
from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.points.tuning import load_tunings
from gateway.runtime.bindings import bind
from gateway.runtime.history import HisBuffer
from gateway.runtime.registry import DriverKind, DriverRegistry
from gateway.runtime.supervisor import Gateway
from gateway.storage.memory import InMemoryAdapter
from gateway.writes import PointWrites

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def wall() -> dt.datetime:
    """Wall-clock time that follows trio's (virtual) clock."""
    return BASE + dt.timedelta(seconds=trio.current_time())


HANG = "hang"
TEST_LIMIT = 24 * 3600.0  # seconds of virtual time any one test may take

#: What one open/read/write does: "ok", HANG (sleep forever), an error to raise, or a delay.
Step = Any


@dataclass
class Call:
    t: float
    op: str
    args: tuple[Any, ...] = ()


@dataclass
class ScriptedDriver:
    """Opens, reads and writes as the test says; logs every call."""

    conn: dict[str, Value]
    values: dict[Ref, Value] = field(default_factory=dict)
    point_errors: dict[Ref, DriverError] = field(default_factory=dict)
    open_script: list[Step] = field(default_factory=list)
    read_script: list[Step] = field(default_factory=list)
    write_script: list[Step] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    is_open: bool = False

    def _log(self, op: str, *args: Any) -> None:
        self.calls.append(Call(trio.current_time(), op, args))

    def times(self, op: str) -> list[float]:
        return [c.t for c in self.calls if c.op == op]

    def written(self) -> list[tuple[float, Value, int]]:
        """Writes the device acknowledged: (time, value, level)."""
        return [(c.t, c.args[1], c.args[2]) for c in self.calls if c.op == "written"]

    async def _step(self, script: list[Step]) -> None:
        step = script.pop(0) if script else "ok"
        if step == HANG:
            await trio.sleep_forever()
        if isinstance(step, (int, float)):
            await trio.sleep(step)
        elif isinstance(step, BaseException):
            raise step
        elif callable(step):
            await step()
        else:
            await trio.lowlevel.checkpoint()

    async def open(self) -> dict[str, Value]:
        self._log("open")
        await self._step(self.open_script)
        self.is_open = True
        return {"device": "scripted"}

    async def aclose(self) -> None:
        self._log("aclose")
        self.is_open = False
        await trio.lowlevel.checkpoint()

    async def read(self, points: Sequence[PointRec]) -> list[Reading]:
        self._log("read", tuple(point_id(p) for p in points))
        await self._step(self.read_script)
        if not self.is_open:
            raise DownError("not open")
        out = []
        for p in points:
            pid = point_id(p)
            err = self.point_errors.get(pid)
            out.append(Reading(pid, err=err) if err else Reading(pid, self.values.get(pid)))
        return out

    async def write(self, point: PointRec, val: Value, level: int) -> None:
        self._log("write", point_id(point), val, level)
        await self._step(self.write_script)
        if not self.is_open:
            raise DownError("not open")
        self._log("written", point_id(point), val, level)


class ScriptedKind:
    """A driver kind ``test`` whose factory hands out ScriptedDrivers (kept by connector)."""

    def __init__(self) -> None:
        self.drivers: dict[Ref, ScriptedDriver] = {}
        self.setup: Callable[[ScriptedDriver], None] = lambda d: None
        self.kind = DriverKind("test", self._make)

    def _make(self, conn: Any) -> ScriptedDriver:
        cid = conn["id"]
        driver = self.drivers.get(cid)
        if driver is None:
            driver = self.drivers[cid] = ScriptedDriver(dict(conn))
            self.setup(driver)
        return driver

    def registry(self) -> DriverRegistry:
        return DriverRegistry([self.kind])


async def until(check: Callable[[], bool], step: float = 0.01) -> None:
    """Sleep (virtual time) until ``check()`` holds."""
    with trio.fail_after(TEST_LIMIT):
        while True:
            if check():
                return
            await trio.sleep(step)


def connector(cid: str = "c1", **tags: Value) -> dict[str, Value]:
    rec: dict[str, Value] = {"id": Ref(cid), "conn": MARKER, "testConn": MARKER, "dis": cid}
    rec.update(tags)
    return rec


def point(pid: str, cid: str = "c1", *, write: bool = False, **tags: Value) -> dict[str, Value]:
    rec: dict[str, Value] = {
        "id": Ref(pid),
        "point": MARKER,
        "kind": "Number",
        "unit": "°C",
        "testConnRef": Ref(cid),
        "testCur": pid,
    }
    if write:
        rec.update({"writable": MARKER, "testWrite": pid})
    rec.update(tags)
    return {k: v for k, v in rec.items() if v is not None}


def tuning(tid: str = "t1", **tags: Value) -> dict[str, Value]:
    rec: dict[str, Value] = {"id": Ref(tid), "connTuning": MARKER}
    rec.update(tags)
    return rec


def secs(n: float) -> Number:
    return Number(n, "s")


def one_binding(
    kind: ScriptedKind, conn: dict[str, Value], points: list[dict[str, Value]], **kw: Any
) -> Any:
    return bind([conn], points, kind.registry(), **kw).connectors[conn["id"]]


async def store_with(*records: dict[str, Value]) -> InMemoryAdapter:
    store = InMemoryAdapter(records)
    await store.open()
    return store


@dataclass
class Rig:
    """A running Gateway over an InMemoryAdapter with scripted drivers."""

    store: InMemoryAdapter
    writes: Any
    gateway: Any
    kind: ScriptedKind
    his: Any

    def driver(self, cid: str = "c1") -> ScriptedDriver:
        return self.kind.drivers[Ref(cid)]

    def runner(self, cid: str = "c1") -> Any:
        return self.gateway.runner(Ref(cid))

    async def rec(self, rid: str) -> dict[str, Value]:
        (found,) = await self.store.read_by_ids([Ref(rid)])
        assert found is not None
        return found


@asynccontextmanager
async def running(
    conns: list[dict[str, Value]],
    points: list[dict[str, Value]],
    tunings: Sequence[dict[str, Value]] = (),
    *,
    setup: Callable[[ScriptedDriver], None] | None = None,
    seed: int = 1,
    flush_interval: float = 5.0,
    max_samples: int = 5000,
    extra: Sequence[dict[str, Value]] = (),
    prepare: Callable[[PointWrites], Awaitable[None]] | None = None,
    **options: Any,
) -> AsyncIterator[Rig]:
    """Start a Gateway on the given configuration; cancel it at the end of the block."""
    kind = ScriptedKind()
    if setup is not None:
        kind.setup = setup
    store = InMemoryAdapter([*conns, *points, *tunings, *extra])
    await store.open()
    writes = PointWrites(store, clock=wall)
    if prepare is not None:
        await prepare(PointWrites(store, clock=wall))  # saved before the gateway starts
    his = HisBuffer(store, flush_interval=flush_interval, max_samples=max_samples)
    gateway = Gateway(
        store,
        kind.registry(),
        writes=writes,
        tunings=load_tunings(tunings),
        his=his,
        rng=random.Random(seed),
        wall_clock=wall,
        **options,
    )
    # A bound in virtual time: a test that waits for something that never comes fails fast.
    with trio.fail_after(TEST_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.run, conns, points)
            yield Rig(store, writes, gateway, kind, his)
            await gateway.stop()
