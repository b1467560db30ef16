"""The runtime with the real Modbus driver against pymodbus' server on 127.0.0.1.

Poll into curVal/curStatus, pointWrite through PointWrites to the simulated register, relinquish
to the next level and to the default, a timed override ending, a device that goes away and
comes back, an exception response that faults only its points, and two slaves on one link.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from drivers.aio import AioHost
from drivers.modbus.link import LinkRegistry
from drivers.modbus.regmap import RegisterMap
from drivers.sim.modbus import ModbusSim, SimDevice, open_modbus_sim
from gateway.haystack.kinds import MARKER, Number, Ref, Uri, Value
from gateway.points.tuning import load_tunings
from gateway.runtime.history import HisBuffer
from gateway.runtime.registry import DriverRegistry, RegisterMaps, modbus_kind
from gateway.runtime.supervisor import Gateway
from gateway.storage.memory import InMemoryAdapter
from gateway.writes import PointWrites

MAP_CSV = """\
name,addr,data,rw,scale,unit,dis,tags,relinquish
ping,40001,u2,r,,,,,
temp,30001,f4,r,,°C,,,
sp,40002,f4,rw,,°C,,,18
fan,00001,bit,rw,,,,,false
a1,40010,u2,r,,,,,
a2,40011,u2,r,,,,,
bad,40012,u2,r,,,,,
a3,40013,u2,r,,,,,
"""
MAP = RegisterMap.parse(MAP_CSV, source="dev.csv")
POLL = 0.2

TUNING: dict[str, Value] = {
    "id": Ref("fast"),
    "connTuning": MARKER,
    "pollTime": Number(POLL * 1000, "ms"),
    "staleTime": Number(1, "min"),
    "connOpenRetryFreq": Number(200, "ms"),
    "connOpenRetryMax": Number(1, "s"),
    "connCallTimeout": Number(2, "s"),
}


def device(unit: int) -> SimDevice:
    values = {"ping": unit, "temp": 20.0 + unit, "sp": 21.0, "a1": 1, "a2": 2, "bad": 3, "a3": 4}
    return SimDevice(unit, MAP, values=values)


def conn_rec(cid: str, uri: str, unit: int = 1) -> dict[str, Value]:
    return {
        "id": Ref(cid),
        "conn": MARKER,
        "modbusConn": MARKER,
        "dis": cid,
        "uri": Uri(uri),
        "modbusSlave": Number(unit),
        "modbusRegMapUri": Uri("dev.csv"),
        "modbusReadTimeout": Number(300, "ms"),
        "connTuningRef": Ref("fast"),
    }


def point_rec(
    pid: str, cid: str, row: str, *, write: bool = False, **tags: Value
) -> dict[str, Value]:
    kind = "Bool" if MAP.row(row).data.is_bit else "Number"
    rec: dict[str, Value] = {
        "id": Ref(pid),
        "point": MARKER,
        "dis": pid,
        "kind": kind,
        "modbusConnRef": Ref(cid),
        "modbusCur": row,
    }
    if kind == "Number":
        rec["unit"] = MAP.row(row).unit or "°C"
    if write:
        rec.update({"writable": MARKER, "modbusWrite": row})
    rec.update(tags)
    return rec


@dataclass
class Rig:
    aio: AioHost
    sim: ModbusSim
    store: InMemoryAdapter
    writes: PointWrites
    gateway: Gateway
    links: LinkRegistry

    async def rec(self, rid: str) -> dict[str, Value]:
        (found,) = await self.store.read_by_ids([Ref(rid)])
        assert found is not None
        return found

    async def register(self, unit: int, name: str) -> float | bool:
        return await self.aio.call(self.sim.value, unit, name)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> float:
    """Wait until ``check()`` is true; returns how long it took."""
    start = trio.current_time()
    with trio.fail_after(within):
        while True:
            if await check():
                break
            await trio.sleep(0.02)
    return trio.current_time() - start


def registry_for(aio: AioHost, links: LinkRegistry) -> DriverRegistry:
    return DriverRegistry([modbus_kind(aio, links, RegisterMaps({"dev.csv": MAP}))])


@asynccontextmanager
async def modbus_gateway(
    aio: AioHost,
    links: LinkRegistry,
    sim: ModbusSim,
    conns: list[dict[str, Value]],
    points: list[dict[str, Value]],
    **options: Any,
) -> AsyncIterator[Rig]:
    store = InMemoryAdapter([TUNING, *conns, *points])
    await store.open()
    writes = PointWrites(store)
    gateway = Gateway(
        store,
        registry_for(aio, links),
        writes=writes,
        tunings=load_tunings([TUNING]),
        his=HisBuffer(store, flush_interval=0.2),
        **options,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run, conns, points)
        yield Rig(aio, sim, store, writes, gateway, links)
        with trio.fail_after(10):
            await gateway.stop()


@pytest.fixture
async def sim(modbus_aio: AioHost) -> AsyncIterator[ModbusSim]:
    async with open_modbus_sim(modbus_aio, [device(1), device(2)]) as sim:
        yield sim


def _status(rig: Rig, pid: str, want: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await rig.rec(pid)).get("curStatus") == want

    return check


def _register(rig: Rig, unit: int, row: str, want: float) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(await rig.register(unit, row) == want)

    return check


async def test_poll_sets_cur_val_and_status(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> None:
    pts = [point_rec("temp", "c1", "temp"), point_rec("fan", "c1", "fan")]
    async with modbus_gateway(modbus_aio, modbus_links, sim, [conn_rec("c1", sim.uri)], pts) as rig:
        await eventually(_status(rig, "temp", "ok"))
        temp, fan, conn = await rig.rec("temp"), await rig.rec("fan"), await rig.rec("c1")
    assert temp["curVal"] == Number(21.0, "°C") and "curErr" not in temp
    assert fan["curVal"] is False and fan["curStatus"] == "ok"
    assert conn["connStatus"] == "ok" and conn["connState"] == "open"


async def test_point_write_relinquish_and_default_reach_the_register(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> None:
    sp = Ref("sp")
    pts = [point_rec("sp", "c1", "sp", write=True)]
    async with modbus_gateway(modbus_aio, modbus_links, sim, [conn_rec("c1", sim.uri)], pts) as rig:
        await eventually(_status(rig, "sp", "ok"))
        await rig.writes.write(sp, 16, Number(19.0), "schedule")
        await eventually(_register(rig, 1, "sp", 19.0))
        await rig.writes.write(sp, 8, Number(24.5), "operator")
        await eventually(_register(rig, 1, "sp", 24.5))
        await eventually(lambda: _cur_val(rig, "sp", Number(24.5, "°C")))
        await rig.writes.write(sp, 8, None, "operator")  # the next level wins again
        await eventually(_register(rig, 1, "sp", 19.0))
        await rig.writes.write(sp, 17, Number(17.5), "config")
        await rig.writes.write(sp, 16, None, "schedule")  # only the default is left
        await eventually(_register(rig, 1, "sp", 17.5))
        await rig.writes.write(sp, 17, None, "config")  # nothing left: the map's relinquish
        await eventually(_register(rig, 1, "sp", 18.0))
        rec = await rig.rec("sp")
        stats = rig.gateway.runner(Ref("c1")).statistics()  # type: ignore[union-attr]
    assert rec["writeStatus"] == "ok" and "writeErr" not in rec
    assert "writeVal" not in rec and rec["writeLevel"] == Number(17)
    assert stats.writes == 5 and stats.write_failures == 0
    assert all(lat < 1.0 for lat in stats.write_latencies)


async def _cur_val(rig: Rig, pid: str, want: Value) -> bool:
    return bool((await rig.rec(pid)).get("curVal") == want)


async def test_a_timed_override_ends_by_itself(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> None:
    sp = Ref("sp")
    pts = [point_rec("sp", "c1", "sp", write=True)]
    async with modbus_gateway(modbus_aio, modbus_links, sim, [conn_rec("c1", sim.uri)], pts) as rig:
        await eventually(_status(rig, "sp", "ok"))
        await rig.writes.write(sp, 16, Number(20.0), "schedule")
        await eventually(_register(rig, 1, "sp", 20.0))
        await rig.writes.write(sp, 8, Number(26.0), "operator", duration=Number(1, "s"))
        await eventually(_register(rig, 1, "sp", 26.0))
        took = await eventually(_register(rig, 1, "sp", 20.0))
    assert 0.5 < took < 2.0


async def test_a_device_that_stops_goes_down_and_comes_back(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> None:
    pts = [point_rec("temp", "c1", "temp"), point_rec("sp", "c1", "sp")]
    async with modbus_gateway(modbus_aio, modbus_links, sim, [conn_rec("c1", sim.uri)], pts) as rig:
        await eventually(_status(rig, "temp", "ok"))
        await modbus_aio.run(sim.stop)
        took = await eventually(_status(rig, "temp", "down"))
        assert took <= 2 * POLL + 0.1  # within two poll periods (and some scheduling slack)
        temp, conn = await rig.rec("temp"), await rig.rec("c1")
        assert conn["connStatus"] == "down" and conn["connErr"]
        assert "curVal" not in temp and temp["curErr"].startswith("connector down")
        await trio.sleep(1)
        await modbus_aio.run(sim.start)
        await eventually(_status(rig, "temp", "ok"), within=5)
        await eventually(_status(rig, "sp", "ok"))
        assert (await rig.rec("c1"))["connStatus"] == "ok"


async def test_an_exception_response_faults_only_its_points(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> None:
    names = ["a1", "a2", "bad", "a3"]
    pts = [point_rec(n, "c1", n) for n in names]
    async with modbus_gateway(modbus_aio, modbus_links, sim, [conn_rec("c1", sim.uri)], pts) as rig:
        await eventually(_status(rig, "a3", "ok"))
        await modbus_aio.call(sim.set_fault, 1, "bad", 2)
        await eventually(_status(rig, "bad", "fault"))
        await trio.sleep(2 * POLL)
        recs = {n: await rig.rec(n) for n in names}
        assert recs["bad"]["curErr"].startswith("exception 0x02")  # illegal data address
        assert {n: r["curStatus"] for n, r in recs.items()} == {
            "a1": "ok",
            "a2": "ok",
            "bad": "fault",
            "a3": "ok",
        }
        assert recs["a3"]["curVal"] == Number(4, "°C")
        assert (await rig.rec("c1"))["connStatus"] == "ok"
        await modbus_aio.call(sim.set_fault, 1, "bad", None)
        await eventually(_status(rig, "bad", "ok"))


async def test_two_slaves_on_one_bus(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> None:
    conns = [conn_rec("c1", sim.uri, 1), conn_rec("c2", sim.uri, 2)]
    pts = [point_rec("t1", "c1", "temp"), point_rec("t2", "c2", "temp", write=False)]
    pts.append(point_rec("sp2", "c2", "sp", write=True))
    async with modbus_gateway(modbus_aio, modbus_links, sim, conns, pts) as rig:
        await eventually(_status(rig, "t1", "ok"))
        await eventually(_status(rig, "t2", "ok"))
        assert (await rig.rec("t1"))["curVal"] == Number(21.0, "°C")
        assert (await rig.rec("t2"))["curVal"] == Number(22.0, "°C")
        assert len(modbus_links.links) == 1  # one owner for the bus
        await rig.writes.write(Ref("sp2"), 8, Number(23.0), "op")
        await eventually(_register(rig, 2, "sp", 23.0))
        assert await rig.register(1, "sp") == 21.0  # slave 1 untouched
        # slave 2 stops answering: only its connector goes down
        await modbus_aio.call(sim.set_online, 2, False)
        await eventually(_status(rig, "t2", "down"))
        r1 = rig.gateway.runner(Ref("c1"))
        assert r1 is not None
        polls = r1.statistics().polls
        await trio.sleep(1.0)
        assert r1.statistics().polls - polls >= math.floor(1.0 / POLL) - 1
        assert (await rig.rec("t1"))["curStatus"] == "ok"
        await modbus_aio.call(sim.set_online, 2, True)
        await eventually(_status(rig, "t2", "ok"), within=5)
