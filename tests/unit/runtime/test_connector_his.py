"""History collection by the runner, on trio's virtual clock: interval and change-of-value
samples, batched into the store, and nothing lost when the gateway stops."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import trio
from trio.testing import MockClock

from drivers.base import DownError
from gateway.haystack.kinds import MARKER, NA, Number, Ref
from tests.unit.runtime.scripted import (
    BASE,
    ScriptedDriver,
    connector,
    point,
    running,
    secs,
    tuning,
)


def n(val: float) -> Number:
    return Number(val, "°C")


def his_point(pid: str, **tags: Any) -> dict[str, Any]:
    return point(pid, his=MARKER, tz="UTC", **tags)


def at(seconds: float) -> dt.datetime:
    return BASE + dt.timedelta(seconds=seconds)


async def test_interval_samples_on_each_boundary(autojump_clock: MockClock) -> None:
    t = tuning("t", pollTime=secs(10))

    def setup(d: ScriptedDriver) -> None:
        d.values[Ref("a")] = n(21)

    pts = [his_point("a", hisCollectInterval=Number(1, "min"))]
    conn = connector(connTuningRef=Ref("t"))
    async with running([conn], pts, [t], setup=setup, flush_interval=5) as rig:
        await trio.sleep(150)
        rig.driver().values[Ref("a")] = n(22)
        await trio.sleep(100)
        samples = await rig.store.his_read(Ref("a"))
        rec = await rig.rec("a")
    # the interval boundaries of minutes 1..4, each with the value the point showed then
    assert [ts for ts, _ in samples] == [at(60), at(120), at(180), at(240)]
    assert [v for _, v in samples] == [n(21), n(21), n(22), n(22)]
    assert rec["hisStatus"] == "ok"


async def test_cov_with_deadband(autojump_clock: MockClock) -> None:
    t = tuning("t", pollTime=secs(10))
    seq = [20.0, 20.2, 20.4, 20.6, 20.7, 21.5, 21.5]
    reads: list[float] = []

    def setup(d: ScriptedDriver) -> None:
        async def next_value() -> None:
            reads.append(trio.current_time())
            d.values[Ref("a")] = n(seq[min(len(reads) - 1, len(seq) - 1)])

        d.read_script = [next_value] * 50

    pts = [his_point("a", hisCollectCov=Number(0.5, "°C"))]
    conn = connector(connTuningRef=Ref("t"))
    async with running([conn], pts, [t], setup=setup, flush_interval=5) as rig:
        await trio.sleep(75)
        samples = await rig.store.his_read(Ref("a"))
    assert [v for _, v in samples] == [n(20), n(20.6), n(21.5)]
    assert [ts for ts, _ in samples] == [at(reads[0]), at(reads[3]), at(reads[5])]


async def test_samples_are_batched_per_flush(autojump_clock: MockClock) -> None:
    t = tuning("t", pollTime=secs(1))
    calls: list[tuple[float, Ref, int]] = []

    def setup(d: ScriptedDriver) -> None:
        async def move() -> None:
            for pid in ("a", "b", "c"):
                d.values[Ref(pid)] = n(trio.current_time())

        d.read_script = [move] * 100

    pts = [his_point(p, hisCollectCov=MARKER) for p in ("a", "b", "c")]
    conn = connector(connTuningRef=Ref("t"))
    async with running([conn], pts, [t], setup=setup, flush_interval=10) as rig:
        original = rig.store.his_write

        async def counting(id: Ref, samples: Any) -> int:
            calls.append((trio.current_time(), id, len(samples)))
            return await original(id, samples)

        rig.store.his_write = counting  # type: ignore[method-assign]
        await trio.sleep(30.5)
    flush_times = sorted({round(c[0], 6) for c in calls})
    assert flush_times[:3] == [10, 20, 30]
    # one his_write per point per flush, each carrying about ten samples
    assert all(8 <= count <= 11 for _, _, count in calls[:9])


def _moving_cov_point() -> tuple[
    dict[str, Any], dict[str, Any], list[dict[str, Any]], Callable[[ScriptedDriver], None]
]:
    """A connector polled every second whose point @a (history on change) reads the clock."""

    def setup(d: ScriptedDriver) -> None:
        async def move() -> None:
            d.values[Ref("a")] = n(trio.current_time())

        d.read_script = [move] * 100

    conn = connector(connTuningRef=Ref("t"))
    return tuning("t", pollTime=secs(1)), conn, [his_point("a", hisCollectCov=MARKER)], setup


async def test_a_full_batch_is_flushed_at_once(autojump_clock: MockClock) -> None:
    t, conn, pts, setup = _moving_cov_point()
    async with running([conn], pts, [t], setup=setup, flush_interval=1000, max_samples=5) as rig:
        await trio.sleep(12)
        stored = await rig.store.his_read(Ref("a"))
        queued = len(rig.his)
    assert len(stored) == 10 and queued < 5


async def test_nothing_is_lost_when_the_gateway_stops(autojump_clock: MockClock) -> None:
    t, conn, pts, setup = _moving_cov_point()
    async with running([conn], pts, [t], setup=setup, flush_interval=1000) as rig:
        await trio.sleep(20.5)
        assert await rig.store.his_read(Ref("a")) == []  # all still in the buffer
        reads = len(rig.driver().times("read"))
        await rig.gateway.stop()
        stored = await rig.store.his_read(Ref("a"))
    assert len(stored) == reads == 21  # a read at 0.13 s (stagger), then one per second


async def test_na_is_recorded_while_the_point_is_down(autojump_clock: MockClock) -> None:
    t = tuning("t", pollTime=secs(10), connOpenRetryFreq=secs(60))

    def setup(d: ScriptedDriver) -> None:
        d.values[Ref("a")] = n(5)

    pts = [his_point("a", hisCollectCov=MARKER, hisCollectNA=MARKER)]
    conn = connector(connTuningRef=Ref("t"))
    async with running([conn], pts, [t], setup=setup, flush_interval=1) as rig:
        await trio.sleep(15)
        rig.driver().read_script = [DownError("gone")]
        await trio.sleep(15)
        samples = await rig.store.his_read(Ref("a"))
    assert [v for _, v in samples] == [n(5), NA]


async def test_bad_collection_settings_show_in_his_err(autojump_clock: MockClock) -> None:
    pts = [his_point("a", hisCollectInterval=Number(7, "min"))]
    async with running([connector()], pts) as rig:
        await trio.sleep(1)
        rec = await rig.rec("a")
    assert rec["hisStatus"] == "fault"
    assert "hisCollectInterval must be a whole number of min" in rec["hisErr"]
