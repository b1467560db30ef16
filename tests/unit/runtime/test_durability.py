"""The runtime over a real SQLite file: polls never write to disk, history and priority arrays
survive a restart, runtime tags do not, and the restored winner is written at start."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import trio

from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.points.tuning import load_tunings
from gateway.runtime.history import HisBuffer
from gateway.runtime.supervisor import Gateway
from gateway.storage.sqlite import SQLiteAdapter
from gateway.writes import PointWrites
from tests.unit.runtime.scripted import ScriptedDriver, ScriptedKind, connector, point, tuning

T = tuning("t", pollTime=Number(50, "ms"), writeOnStart=MARKER)
CONN = connector(connTuningRef=Ref("t"))
POINT = point(
    "a",
    write=True,
    his=MARKER,
    tz="UTC",
    hisCollectCov=MARKER,
    hisCollectCovRateLimit=Number(10, "ms"),
)


async def _run_for(store: SQLiteAdapter, kind: ScriptedKind, seconds: float, body: Any) -> None:
    writes = PointWrites(store)
    gateway = Gateway(
        store,
        kind.registry(),
        writes=writes,
        tunings=load_tunings([T]),
        his=HisBuffer(store, flush_interval=60),  # only the final flush writes history
        rng=random.Random(3),
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.run, [CONN], [POINT])
            await body(writes)
            await trio.sleep(seconds)
            await gateway.stop()


async def test_state_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    counter = {"n": 0.0}

    def moving(d: ScriptedDriver) -> None:
        async def step() -> None:
            counter["n"] += 1
            d.values[Ref("a")] = Number(counter["n"], "°C")

        d.read_script = [step] * 10_000

    kind = ScriptedKind()
    kind.setup = moving
    store = SQLiteAdapter(path)
    await store.open()
    await store.add_records([T, CONN, POINT])
    disk_writes: list[Any] = []
    original = store._store_records

    async def counting(upserts: Any, removed: Any) -> None:
        disk_writes.append(upserts)
        await original(upserts, removed)

    store._store_records = counting  # type: ignore[method-assign]

    async def write_level_8(writes: PointWrites) -> None:
        await writes.write(Ref("a"), 8, Number(42), "operator")

    await _run_for(store, kind, 0.5, write_level_8)
    polls = len(kind.drivers[Ref("c1")].times("read"))
    assert polls >= 5
    assert disk_writes == []  # every curVal, status and writeStatus stayed in memory
    await store.aclose()

    store = SQLiteAdapter(path)
    await store.open()
    (rec,) = await store.read_by_ids([Ref("a")])
    assert rec is not None
    assert not {"curVal", "curStatus", "writeStatus", "writeVal"} & rec.keys()
    samples = await store.his_read(Ref("a"))
    assert len(samples) == polls  # every change of value, flushed at shutdown
    assert [v for _, v in samples] == [Number(float(i), "°C") for i in range(1, polls + 1)]

    kind2 = ScriptedKind()
    await _run_for(store, kind2, 0.2, _nothing)
    written = kind2.drivers[Ref("c1")].written()
    await store.aclose()
    assert [(v, lvl) for _, v, lvl in written] == [(Number(42, "°C"), 8)]  # writeOnStart


async def _nothing(writes: PointWrites) -> None:
    await trio.lowlevel.checkpoint()
