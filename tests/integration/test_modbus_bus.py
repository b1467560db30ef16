"""One owner per bus: slaves sharing a link over TCP and over a virtual RS-485 line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from drivers.aio import AioHost
from drivers.base import DownError
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.link import LinkRegistry, ModbusLink, NoAnswerError, SlaveSkippedError
from drivers.modbus.regmap import RegisterMap
from drivers.sim.modbus import ModbusSim, SimDevice, open_modbus_sim
from gateway.haystack.kinds import Number, Ref, Uri

MAP = RegisterMap.parse(
    "name,addr,data,rw,scale,unit\n"
    "ping,40001,u2,r,,\n"
    "temp,30001,f4,r,,°C\n"
    "sp,40002,s2,rw,/10,°C\n"
    "fan,00001,bit,rw,,\n",
    source="bus.csv",
)
POINTS: list[dict[str, Any]] = [
    {"id": Ref("ping"), "modbusCur": "ping"},
    {"id": Ref("temp"), "modbusCur": "temp"},
    {"id": Ref("sp"), "modbusCur": "sp", "modbusWrite": "sp"},
    {"id": Ref("fan"), "modbusCur": "fan", "modbusWrite": "fan"},
]


def devices() -> list[SimDevice]:
    return [SimDevice(unit, MAP, values={"ping": unit, "temp": 20.0 + unit}) for unit in (1, 2)]


def driver_for(aio: AioHost, links: LinkRegistry, uri: str, unit: int, **tags: Any) -> ModbusDriver:
    conn = {
        "id": Ref(f"c{unit}"),
        "uri": Uri(uri),
        "modbusSlave": Number(unit),
        "modbusReadTimeout": Number(200, "ms"),
        **tags,
    }
    return ModbusDriver(conn, MAP, aio=aio, links=links)


@pytest.fixture
async def tcp_bus(modbus_aio: AioHost) -> AsyncIterator[ModbusSim]:
    async with open_modbus_sim(modbus_aio, devices()) as sim:
        yield sim


async def test_two_slaves_share_one_link(
    modbus_aio: AioHost, modbus_links: LinkRegistry, tcp_bus: ModbusSim
) -> None:
    one = driver_for(modbus_aio, modbus_links, tcp_bus.uri, 1)
    two = driver_for(modbus_aio, modbus_links, tcp_bus.uri + "/", 2)
    seen: dict[int, set[Any]] = {1: set(), 2: set()}

    async def poll(drv: ModbusDriver) -> None:
        for _ in range(25):
            readings = await drv.read(POINTS)
            assert all(r.ok for r in readings), readings
            seen[drv.unit].add(readings[1].val)

    with trio.fail_after(10):
        await one.open()
        await two.open()
        assert one.link is two.link and one.link is not None
        assert list(modbus_links.links) == [one.endpoint.key]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll, one)
            nursery.start_soon(poll, two)
        await one.write(POINTS[2], Number(18.5), 16)
        await two.write(POINTS[2], Number(23.5), 16)
    assert seen == {1: {Number(21.0, "°C")}, 2: {Number(22.0, "°C")}}
    assert tcp_bus.value(1, "sp") == pytest.approx(18.5)
    assert tcp_bus.value(2, "sp") == pytest.approx(23.5)
    stats = one.link.statistics()
    assert stats.requests == tcp_bus.requests(1) + tcp_bus.requests(2)
    link = one.link
    await one.aclose()
    assert list(modbus_links.links) == [two.endpoint.key]
    assert link.statistics() == stats and _connected(link)
    await two.aclose()  # the last user closes the link
    assert modbus_links.links == {}
    assert not _connected(link)


def _connected(link: ModbusLink) -> bool:
    return link.connected


async def test_a_silent_slave_does_not_stall_the_other(
    modbus_aio: AioHost, modbus_links: LinkRegistry, tcp_bus: ModbusSim
) -> None:
    alive = driver_for(modbus_aio, modbus_links, tcp_bus.uri, 1)
    silent = driver_for(modbus_aio, modbus_links, tcp_bus.uri, 2)
    with trio.fail_after(5):
        await alive.open()
        await silent.open()
    tcp_bus.set_online(2, False)
    asked_before = tcp_bus.requests(2)
    latencies: list[float] = []
    silent_errors: list[DownError] = []

    async def poll_alive() -> None:
        while True:
            start = trio.current_time()
            readings = await alive.read(POINTS)
            latencies.append(trio.current_time() - start)
            assert all(r.ok for r in readings)
            await trio.sleep(0.005)

    async def poll_silent() -> None:
        while True:
            with pytest.raises(DownError) as info:
                await silent.read(POINTS)
            silent_errors.append(info.value)
            await trio.sleep(0.005)

    with trio.move_on_after(0.8):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll_alive)
            nursery.start_soon(poll_silent)
    # The silent slave cost the bus one read timeout, then was skipped without traffic.
    assert isinstance(silent_errors[0], NoAnswerError)
    assert all(isinstance(e, SlaveSkippedError) for e in silent_errors[1:])
    assert len(silent_errors) > 10
    assert tcp_bus.requests(2) == asked_before + 1
    # The live slave kept polling: at most one read waited behind the silent one's 200 ms
    # timeout (a read that waits behind it takes the whole timeout; counting those, rather
    # than bounding every latency, keeps a busy CI machine from failing the test).
    assert len(latencies) > 10
    assert sum(1 for latency in latencies if latency >= 0.19) <= 1
    # It answers again once it is back and its backoff (1 s here) has run out.
    tcp_bus.set_online(2, True)
    assert silent.link is not None
    with trio.fail_after(5):
        await trio.sleep(silent.link.backoff_remaining(2))
        readings = await silent.read(POINTS)
    assert readings[0].val == Number(2)
    await alive.aclose()
    await silent.aclose()


async def test_trio_cancel_releases_the_bus(
    modbus_aio: AioHost, modbus_links: LinkRegistry, tcp_bus: ModbusSim
) -> None:
    # A silent slave with a long reply timeout: cancelling the trio call must cancel the
    # asyncio request, or the bus would stay taken for the whole 10 s.
    slow = driver_for(modbus_aio, modbus_links, tcp_bus.uri, 2, modbusReadTimeout=Number(10))
    other = driver_for(modbus_aio, modbus_links, tcp_bus.uri, 1)
    with trio.fail_after(5):
        await slow.open()
        await other.open()
    tcp_bus.set_online(2, False)
    with trio.fail_after(5):
        with trio.move_on_after(0.2) as scope:
            await slow.read(POINTS)
        assert scope.cancelled_caught
        readings = await other.read(POINTS)  # gets the bus at once
    assert readings[0].val == Number(1)
    assert other.link is not None and other.link.statistics().queued == 0
    await slow.aclose()
    await other.aclose()


async def test_rtu_over_a_virtual_serial_line(
    modbus_aio: AioHost, modbus_links: LinkRegistry, modbus_serial_pair: tuple[str, str]
) -> None:
    device_end, gateway_end = modbus_serial_pair
    uri = f"modbus-rtu://{gateway_end}?baud=38400"
    async with open_modbus_sim(modbus_aio, devices(), serial_port=device_end, baud=38400) as sim:
        one = driver_for(modbus_aio, modbus_links, uri, 1)
        two = driver_for(modbus_aio, modbus_links, uri, 2)
        with trio.fail_after(10):
            await one.open()
            await two.open()
            assert one.link is two.link
            async with trio.open_nursery() as nursery:
                for drv in (one, two):
                    nursery.start_soon(drv.read, POINTS)
            await one.write(POINTS[3], True, 16)
            await two.write(POINTS[2], Number(-4.5), 16)
            r1 = await one.read(POINTS)
            r2 = await two.read(POINTS)
            assert [r.val for r in r1] == [Number(1), Number(21.0, "°C"), Number(0.0, "°C"), True]
            assert [r.val for r in r2] == [Number(2), Number(22.0, "°C"), Number(-4.5, "°C"), False]
            # A silent slave on the serial line: DownError for it, the other keeps going.
            sim.set_online(2, False)
            with pytest.raises(DownError):
                await two.read(POINTS)
            assert (await one.read(POINTS))[0].val == Number(1)
            await one.aclose()
            await two.aclose()
    assert modbus_links.links == {}
