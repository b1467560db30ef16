"""Per-call cost of the trio -> asyncio bridge (drivers.aio) for Modbus reads on loopback.

Run: ``.venv/bin/python tests/perf/bench_aio.py [--count N]``. Prints figures, asserts
nothing. The simulated device runs on its own asyncio loop in its own thread for every
variant, so each variant pays the same server cost and crosses to another thread:

- native:  AsyncModbusTcpClient.read_holding_registers awaited in plain asyncio;
- bridge:  the same call from trio through ``AioHost.run`` (client on the aio thread);
- driver:  ``ModbusDriver.read`` of one point (bridge + block plan + decode);
- no-op:   ``AioHost.run`` of an empty coroutine (the bridge alone, no I/O).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from pymodbus.client import AsyncModbusTcpClient

from drivers.aio import open_aio_host
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.link import LinkRegistry
from drivers.modbus.regmap import RegisterMap
from drivers.sim.modbus import ModbusSim, SimDevice
from gateway.haystack.kinds import Number, Ref, Uri

MAP = RegisterMap.parse("name,addr,data,rw\nping,40001,u2,r\n", source="bench.csv")


class SimThread:
    """The simulated device on its own loop and thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-sim")
        self.sim = ModbusSim([SimDevice(1, MAP, values={"ping": 42})])

    def __enter__(self) -> ModbusSim:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self.sim

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def report(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{name:8s} n={len(ms):5d}  mean {statistics.fmean(ms):.3f} ms  "
        f"median {statistics.median(ms):.3f} ms  p99 {p99:.3f} ms"
    )


async def _timed_asyncio(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    for _ in range(50):  # warm up
        await call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def bench_native(port: int, count: int) -> list[float]:
    async def run() -> list[float]:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
        await client.connect()
        try:
            return await _timed_asyncio(
                lambda: client.read_holding_registers(0, count=1, device_id=1), count
            )
        finally:
            client.close()

    return asyncio.run(run())


async def _timed_trio(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    for _ in range(50):
        await call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def bench_bridge(port: int, count: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    async with open_aio_host() as aio:

        def make_client() -> AsyncModbusTcpClient:
            return AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)

        client = await aio.call(make_client)
        await aio.run(client.connect)

        async def read_one() -> Any:
            return await client.read_holding_registers(0, count=1, device_id=1)

        async def noop() -> None:
            return None

        results["bridge"] = await _timed_trio(lambda: aio.run(read_one), count)
        results["no-op"] = await _timed_trio(lambda: aio.run(noop), count)
        await aio.call(client.close)

        conn = {"uri": Uri(f"modbus-tcp://127.0.0.1:{port}"), "modbusSlave": Number(1)}
        driver = ModbusDriver(conn, MAP, aio=aio, links=LinkRegistry())
        await driver.open()
        points = [{"id": Ref("p"), "modbusCur": "ping"}]
        results["driver"] = await _timed_trio(lambda: driver.read(points), count)
        await driver.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="calls per variant")
    args = parser.parse_args()
    with SimThread() as sim:
        print(f"loopback Modbus TCP, 1 holding register per read, {args.count} calls each")
        report("native", bench_native(sim.port, args.count))
        for name, samples in trio.run(bench_bridge, sim.port, args.count).items():
            report(name, samples)


if __name__ == "__main__":
    main()
