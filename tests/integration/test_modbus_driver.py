"""ModbusDriver against pymodbus' real server on 127.0.0.1, driven from trio via drivers.aio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from drivers.aio import AioHost
from drivers.base import DownError, FaultError, RemoteStatusError
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.encoding import encode, parse_data_type
from drivers.modbus.learn import learn_points
from drivers.modbus.link import ExceptionResponseError, LinkRegistry
from drivers.modbus.regmap import RegisterMap
from drivers.sim.modbus import ModbusSim, SimDevice, open_modbus_sim
from gateway.haystack.kinds import MARKER, Number, Ref, Uri

ORDERS = ["", "le", "leb", "lew"]
TYPES = [f"{b}{n}" for b in "us" for n in (1, 2, 4, 8)] + ["f4", "f8"]

# A sample value per base type that exercises the sign and every byte.
SAMPLES = {
    "u1": 0xAB,
    "s1": -100,
    "u2": 0xBEEF,
    "s2": -12345,
    "u4": 0x89ABCDEF,
    "s4": -123456789,
    "u8": 0x0012_3456_789A_BCDE,  # Numbers are float64: exact up to 2**53
    "s8": -1234567890123,
    "f4": -1.5,
    "f8": 3.141592653589793,
}


def _every_type_map() -> str:
    lines = ["name,addr,data,rw,scale,unit,dis,tags,relinquish"]
    addr = 1
    for base in TYPES:
        for order in ORDERS:
            name = f"{base}{order}"
            lines.append(f"r_{name},4{addr:05d},{name},rw,,,,,")
            addr += parse_data_type(name).size
    lines += [
        "coil,00001,bit,rw,,,,,true",
        "coilNoDefault,00002,bit,rw,,,,,",
        "input,10001,bit,r,,,,,",
        "temp,30001,s2,r,/10,°C,,,",
        "flow,30002,u2,r,*2 +1,L/s,,,",
        "sp,40100,s2,rw,/10,°C,,,21.5",
        "word,40101,u2,rw,,,,,",
        "word_b0,40101,bit:0,rw,,,,,",
        "word_b3,40101,bit:3,rw,,,,,",
        "ro,40102,u2,r,,,,,",
        "bad,40103,u2,r,,,,,",
        "after,40104,u2,r,,,,,",
        "ping,40105,u2,r,,,,,",
    ]
    return "\n".join(lines) + "\n"


REGMAP = RegisterMap.parse(_every_type_map(), source="tests/every_type.csv")


def point(name: str, pid: str | None = None, **tags: Any) -> dict[str, Any]:
    row = REGMAP.row(name)
    rec: dict[str, Any] = {"id": Ref(pid or name), "point": MARKER, "kind": row.kind}
    if row.readable:
        rec["modbusCur"] = name
    if row.writable:
        rec["modbusWrite"] = name
    rec.update(tags)
    return rec


@pytest.fixture
async def sim(modbus_aio: AioHost) -> AsyncIterator[ModbusSim]:
    device = SimDevice(1, REGMAP, values={"ping": 7})
    async with open_modbus_sim(modbus_aio, [device]) as sim:
        yield sim


def make_driver(
    aio: AioHost, links: LinkRegistry, uri: str, unit: int = 1, **tags: Any
) -> ModbusDriver:
    conn = {
        "id": Ref("conn"),
        "conn": MARKER,
        "modbusConn": MARKER,
        "uri": Uri(uri),
        "modbusSlave": Number(unit),
        "modbusReadTimeout": Number(500, "ms"),
        **tags,
    }
    return ModbusDriver(conn, REGMAP, aio=aio, links=links)


@pytest.fixture
async def driver(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> AsyncIterator[ModbusDriver]:
    drv = make_driver(modbus_aio, modbus_links, sim.uri)
    with trio.fail_after(5):
        info = await drv.open()
    assert info["modbusPing"] == "ping" and info["modbusSlave"] == Number(1)
    yield drv
    await drv.aclose()


async def test_every_data_type_and_order_round_trips(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    names = [f"{b}{o}" for b in TYPES for o in ORDERS]
    with trio.fail_after(10):
        for name in names:
            await driver.write(point(f"r_{name}"), Number(SAMPLES[name[:2]]), 16)
        readings = await driver.read([point(f"r_{n}") for n in names])
    for name, reading in zip(names, readings, strict=True):
        assert reading.ok, (name, reading)
        assert reading.val == Number(SAMPLES[name[:2]]), name
        # What reached the device is the type's wire form, register by register.
        dt = parse_data_type(name)
        regs = await modbus_aio.call(sim.registers, 1, f"r_{name}")
        assert regs == encode(dt, SAMPLES[name[:2]]), name


async def test_byte_and_word_order_on_the_wire(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    expected = {
        "u4": [0x0102, 0x0304],
        "u4lew": [0x0304, 0x0102],
        "u4leb": [0x0201, 0x0403],
        "u4le": [0x0403, 0x0201],
        "f4": [0x3F80, 0x0000],
        "f4lew": [0x0000, 0x3F80],
    }
    for name, regs in expected.items():
        value = 1.0 if name.startswith("f") else 0x01020304
        await driver.write(point(f"r_{name}"), Number(value), 16)
        assert await modbus_aio.call(sim.registers, 1, f"r_{name}") == regs, name


async def test_values_set_in_the_device_read_back_scaled(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    await modbus_aio.call(sim.set_value, 1, "temp", -12.3)
    await modbus_aio.call(sim.set_value, 1, "flow", 41.0)
    await modbus_aio.call(sim.set_value, 1, "input", True)
    temp, flow, inp, inp_as_number = await driver.read(
        [point("temp"), point("flow"), point("input"), point("input", "n", kind="Number")]
    )
    assert temp.val == Number(-12.3, "°C")
    assert flow.val == Number(41.0, "L/s")
    assert await modbus_aio.call(sim.registers, 1, "flow") == [20]  # (41 - 1) / 2
    assert inp.val is True
    assert inp_as_number.val == Number(1.0)


async def test_coils_and_bool_points(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    await driver.write(point("coil"), True, 8)
    assert await modbus_aio.call(sim.value, 1, "coil") is True
    await driver.write(point("coil"), Number(0), 8)
    assert await modbus_aio.call(sim.value, 1, "coil") is False
    await driver.write(point("word"), True, 8)  # a Bool to a register writes 1
    (as_bool,) = await driver.read([point("word", "w", kind="Bool")])
    assert as_bool.val is True


async def test_bit_of_a_register_is_read_modify_write(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    await driver.write(point("word"), Number(0b1010_0000_0000_0110), 16)
    await driver.write(point("word_b0"), True, 16)
    await driver.write(point("word_b3"), Number(1), 16)
    assert await modbus_aio.call(sim.registers, 1, "word") == [0b1010_0000_0000_1111]
    await driver.write(point("word_b0"), False, 16)
    word, b0, b3 = await driver.read([point("word"), point("word_b0"), point("word_b3")])
    assert word.val == Number(0b1010_0000_0000_1110)
    assert (b0.val, b3.val) == (False, True)


async def test_scaled_setpoint_and_relinquish(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    await driver.write(point("sp"), Number(19.26, "°C"), 8)
    assert await modbus_aio.call(sim.registers, 1, "sp") == [193]  # rounded half away
    await driver.write(point("sp"), None, 8)  # relinquish -> the map's default
    assert await modbus_aio.call(sim.value, 1, "sp") == pytest.approx(21.5)
    await driver.write(point("coil"), False, 8)
    await driver.write(point("coil"), None, 17)
    assert await modbus_aio.call(sim.value, 1, "coil") is True
    # Without a relinquish value nothing is sent: the device keeps the last value.
    await driver.write(point("coilNoDefault"), True, 8)
    before = sim.requests(1)
    await driver.write(point("coilNoDefault"), None, 8)
    assert sim.requests(1) == before
    assert await modbus_aio.call(sim.value, 1, "coilNoDefault") is True


async def test_write_errors_are_faults(driver: ModbusDriver) -> None:
    with pytest.raises(FaultError, match="out of range"):
        await driver.write(point("r_u2"), Number(70000), 16)
    with pytest.raises(FaultError, match="read-only"):
        await driver.write({"id": Ref("x"), "modbusWrite": "ro"}, Number(1), 16)
    with pytest.raises(FaultError, match=r"not in tests/every_type\.csv"):
        await driver.write({"id": Ref("x"), "modbusWrite": "nope"}, Number(1), 16)
    with pytest.raises(FaultError, match="cannot write 'x'"):
        await driver.write(point("r_u2"), "x", 16)


async def test_bad_points_fault_alone(driver: ModbusDriver) -> None:
    readings = await driver.read(
        [
            point("ping"),
            {"id": Ref("noCur"), "point": MARKER},
            {"id": Ref("unknown"), "modbusCur": "nope"},
            point("after"),
        ]
    )
    assert [r.status for r in readings] == ["ok", "fault", "fault", "ok"]
    assert readings[0].val == Number(7)
    assert "no modbusCur" in str(readings[1].err)


async def test_exception_response_faults_only_the_affected_points(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    await modbus_aio.call(sim.set_fault, 1, "bad", 0x02)
    points = [point("ro"), point("bad"), point("after"), point("ping")]
    with trio.fail_after(5):
        first = await driver.read(points)
    assert [r.status for r in first] == ["ok", "fault", "ok", "ok"]
    err = first[1].err
    assert isinstance(err, ExceptionResponseError) and err.code == 0x02
    assert "illegal data address" in str(err)
    # The refused block stays split: the next read sends one request per row, no retry
    # of the whole block first.
    before = sim.requests(1)
    second = await driver.read(points)
    assert [r.status for r in second] == ["ok", "fault", "ok", "ok"]
    assert sim.requests(1) - before == 4
    # Once the register is fixed, its point reads again.
    await modbus_aio.call(sim.set_fault, 1, "bad", None)
    third = await driver.read(points)
    assert [r.status for r in third] == ["ok", "ok", "ok", "ok"]


async def test_strict_device_gap_registers(modbus_aio: AioHost, modbus_links: LinkRegistry) -> None:
    # Rows 40001 and 40004 with two unmapped registers between: the default gap reads
    # them in one block, which a strict device refuses; the split reads succeed.
    regmap = RegisterMap.parse("name,addr,data,rw\na,40001,u2,rw\nb,40004,u2,rw\n", "s.csv")
    device = SimDevice(3, regmap, values={"a": 1, "b": 4}, strict=True)
    async with open_modbus_sim(modbus_aio, [device]) as strict_sim:
        conn = {"uri": Uri(strict_sim.uri), "modbusSlave": Number(3)}
        drv = ModbusDriver(conn, regmap, aio=modbus_aio, links=modbus_links)
        await drv.open()
        try:
            points = [{"id": Ref("a"), "modbusCur": "a"}, {"id": Ref("b"), "modbusCur": "b"}]
            readings = await drv.read(points)
            assert [r.val for r in readings] == [Number(1), Number(4)]
        finally:
            await drv.aclose()


async def test_gateway_exception_is_remote_down(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    # The coil block is read first; once the gateway says the slave is unreachable, the
    # other blocks are not asked (each would cost the gateway's own timeout).
    await modbus_aio.call(sim.set_fault, 1, "coil", 0x0B)
    before = sim.requests(1)
    readings = await driver.read([point("ro"), point("temp"), point("coil")])
    assert [r.status for r in readings] == ["remoteDown"] * 3
    assert isinstance(readings[0].err, RemoteStatusError)
    assert "gateway target device failed to respond" in str(readings[0].err)
    assert sim.requests(1) - before == 1


async def test_device_goes_away_and_comes_back(
    driver: ModbusDriver, sim: ModbusSim, modbus_aio: AioHost
) -> None:
    assert (await driver.read([point("ping")]))[0].val == Number(7)
    await modbus_aio.run(sim.stop)
    with trio.fail_after(5), pytest.raises(DownError):
        await driver.read([point("ping")])
    await driver.aclose()  # what the runner does on DownError
    with trio.fail_after(5), pytest.raises(DownError, match="cannot connect"):
        await driver.open()  # connection refused
    await modbus_aio.run(sim.start)  # same port
    with trio.fail_after(5):
        await driver.open()
        assert (await driver.read([point("ping")]))[0].val == Number(7)


async def test_rtu_framing_over_tcp(modbus_aio: AioHost, modbus_links: LinkRegistry) -> None:
    device = SimDevice(9, REGMAP, values={"ping": 3, "temp": 21.5})
    async with open_modbus_sim(modbus_aio, [device], framing="rtu") as rtu_sim:
        assert rtu_sim.uri.startswith("modbus-rtutcp://")
        drv = make_driver(modbus_aio, modbus_links, rtu_sim.uri, unit=9)
        with trio.fail_after(5):
            await drv.open()
            try:
                await drv.write(point("r_f8le"), Number(-2.25), 16)
                ping, temp, f8 = await drv.read([point("ping"), point("temp"), point("r_f8le")])
            finally:
                await drv.aclose()
    assert (ping.val, temp.val, f8.val) == (Number(3), Number(21.5, "°C"), Number(-2.25))


async def test_learn(driver: ModbusDriver) -> None:
    points = await driver.learn()
    assert points == learn_points(REGMAP, conn_ref=Ref("conn"))
    assert len(points) == len(REGMAP)
    assert await driver.learn("sub") == []


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"uri": None}, "no uri"),
        ({"uri": Uri("http://h")}, "scheme must be"),
        ({"modbusSlave": Number(256)}, "modbusSlave"),
        ({"modbusSlave": Number(1.5)}, "modbusSlave"),
        ({"modbusBlockMax": Number(126)}, "modbusBlockMax"),
        ({"modbusBlockGap": Number(-1)}, "modbusBlockGap"),
        ({"modbusReadTimeout": Number(1, "kW")}, "modbusReadTimeout"),
        ({"modbusReadTimeout": Number(0)}, "modbusReadTimeout"),
    ],
)
async def test_connector_config_faults(
    modbus_aio: AioHost, modbus_links: LinkRegistry, tags: dict[str, Any], message: str
) -> None:
    conn = {"uri": Uri("modbus-tcp://127.0.0.1:1"), **tags}
    with pytest.raises(FaultError, match=message):
        ModbusDriver(conn, REGMAP, aio=modbus_aio, links=modbus_links)


async def test_read_before_open_is_down(modbus_aio: AioHost, modbus_links: LinkRegistry) -> None:
    drv = make_driver(modbus_aio, modbus_links, "modbus-tcp://127.0.0.1:1")
    with pytest.raises(DownError, match="not open"):
        await drv.read([point("ping")])


async def test_sim_asyncio_side_api(modbus_aio: AioHost) -> None:
    # run_modbus_sim is for asyncio code (the demo): serve, read natively, stop.
    from pymodbus.client import AsyncModbusTcpClient

    from drivers.sim.modbus import run_modbus_sim

    async def serve_and_read() -> tuple[list[int], bool]:
        async with run_modbus_sim(devices=[SimDevice(4, REGMAP, values={"ping": 99})]) as sim:
            client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, retries=0, timeout=2)
            await client.connect()
            try:
                reply = await client.read_holding_registers(104, count=1, device_id=4)
            finally:
                client.close()
            return list(reply.registers), sim.running

    with trio.fail_after(5):
        registers, running = await modbus_aio.run(serve_and_read)
    assert registers == [99] and running
