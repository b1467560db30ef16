"""End to end: a pointWrite through the Haystack HTTP API reaches the simulated register, and
the value comes back as curVal and in hisRead.

Everything is real: Hypercorn serving the Quart-Trio app on 127.0.0.1 (an ephemeral port), an
httpx client, the gateway runtime with the Modbus driver, and pymodbus' server as the device.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import hypercorn.trio
import pytest
import trio
from hypercorn.config import Config

from drivers.aio import AioHost
from drivers.modbus.link import LinkRegistry
from drivers.sim.modbus import ModbusSim, open_modbus_sim
from gateway.haystack.codecs import decode, encode
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.ops import HaystackOps
from gateway.points.tuning import load_tunings
from gateway.runtime.history import HisBuffer
from gateway.runtime.supervisor import Gateway
from gateway.storage.memory import InMemoryAdapter
from gateway.web.app import create_app
from gateway.writes import PointWrites
from tests.integration.test_runtime_modbus import (
    TUNING,
    conn_rec,
    device,
    eventually,
    point_rec,
    registry_for,
)

ZINC = "text/zinc"


@pytest.fixture
async def sim(modbus_aio: AioHost) -> AsyncIterator[ModbusSim]:
    async with open_modbus_sim(modbus_aio, [device(1)]) as sim:
        yield sim


async def call(client: httpx.AsyncClient, op: str, grid: Grid) -> Grid:
    response = await client.post(
        f"/api/{op}",
        content=encode(grid, ZINC),
        headers={"Content-Type": ZINC, "Accept": ZINC},
    )
    assert response.status_code == 200, response.text
    result = decode(response.content, ZINC)
    assert not result.is_error, result.meta.get("dis")
    return result


async def test_point_write_over_http_reaches_the_register_and_comes_back(
    modbus_aio: AioHost, modbus_links: LinkRegistry, sim: ModbusSim
) -> None:
    point: dict[str, Value] = point_rec(
        "sp", "c1", "sp", write=True, his=MARKER, tz="UTC", hisCollectCov=MARKER
    )
    conn = conn_rec("c1", sim.uri)
    store = InMemoryAdapter([TUNING, conn, point])
    writes = PointWrites(store)
    app = create_app(HaystackOps(store, writes=writes))
    gateway = Gateway(
        store,
        registry_for(modbus_aio, modbus_links),
        writes=writes,
        tunings=load_tunings([TUNING]),
        his=HisBuffer(store, flush_interval=0.1),
        load_writes=False,  # the app's startup restores the arrays
        expire_overrides=False,  # and ends timed overrides
    )
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(hypercorn.trio.serve, app, config)
        await nursery.start(gateway.run, [conn], [point])
        async with httpx.AsyncClient(base_url=urls[0], timeout=5) as client:

            async def cur_val_is(want: Value) -> bool:
                grid = await call(client, "read", Grid.from_rows([{"id": Ref("sp")}]))
                return bool(grid[0].get("curVal") == want)

            await eventually(lambda: cur_val_is(Number(21.0, "°C")))
            row = {"id": Ref("sp"), "level": Number(8), "val": Number(23.5), "who": "e2e"}
            await call(client, "pointWrite", Grid.from_rows([row]))

            async def register_is(want: float) -> bool:
                return bool(await modbus_aio.call(sim.value, 1, "sp") == want)

            await eventually(lambda: register_is(23.5))
            await eventually(lambda: cur_val_is(Number(23.5, "°C")))

            async def in_history(want: Value) -> bool:
                req = Grid.from_rows([{"id": Ref("sp"), "range": "today"}])
                grid = await call(client, "hisRead", req)
                return any(r.get("val") == want for r in grid.rows)

            await eventually(lambda: in_history(Number(23.5, "°C")))
            array = await call(client, "pointWrite", Grid.from_rows([{"id": Ref("sp")}]))
            read = await call(client, "read", Grid.from_rows([{"id": Ref("sp")}]))
        nursery.cancel_scope.cancel()
    assert array[7]["val"] == Number(23.5, "°C") and array[7]["who"] == "e2e"
    assert read[0]["writeStatus"] == "ok" and read[0]["curStatus"] == "ok"
    assert read[0]["writeVal"] == Number(23.5, "°C") and read[0]["writeLevel"] == Number(8)
