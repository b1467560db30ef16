"""The supervisor: hot reload restarts only what changed, priority arrays survive it, orphan
points are faulted, and a runner's problem never fails a pointWrite."""

from __future__ import annotations

import gc

import trio
from trio.testing import MockClock

from gateway.haystack.kinds import Number, Ref
from tests.unit.runtime.scripted import (
    ScriptedDriver,
    connector,
    point,
    running,
    secs,
    tuning,
)

T = tuning("t", pollTime=secs(1))


def conns(*ids: str, **tags: object) -> list[dict[str, object]]:
    return [connector(cid, connTuningRef=Ref("t"), **tags) for cid in ids]


async def test_apply_touches_only_what_changed(autojump_clock: MockClock) -> None:
    cs = conns("c1", "c2", "c3")
    pts = [point("a", "c1"), point("b", "c2"), point("c", "c3")]
    async with running(cs, pts, [T]) as rig:
        await trio.sleep(5)
        before = dict(rig.gateway.runners)
        new_conns = [cs[0], {**cs[1], "dis": "renamed"}, connector("c4", connTuningRef=Ref("t"))]
        new_pts = [*pts[:2], point("d", "c4")]
        await rig.store.add_records([new_conns[2], new_pts[2]])
        result = await rig.gateway.apply(new_conns, new_pts)
        await trio.sleep(5)
        after = dict(rig.gateway.runners)
        opens = {c: len(rig.driver(c).times("open")) for c in ("c1", "c2", "c3", "c4")}
        closes = {c: len(rig.driver(c).times("aclose")) for c in ("c1", "c2", "c3", "c4")}
        d = await rig.rec("d")
    assert result.unchanged == [Ref("c1")]
    assert result.restarted == [Ref("c2")]
    assert result.stopped == [Ref("c3")]
    assert result.started == [Ref("c4")]
    assert after[Ref("c1")] is before[Ref("c1")]
    assert after[Ref("c2")] is not before[Ref("c2")]
    assert Ref("c3") not in after
    assert opens == {"c1": 1, "c2": 2, "c3": 1, "c4": 1}
    assert closes == {"c1": 0, "c2": 1, "c3": 1, "c4": 0}
    assert d["curStatus"] == "ok"


async def test_records_read_back_with_runtime_tags_are_no_change(
    autojump_clock: MockClock,
) -> None:
    cs = conns("c1")
    async with running(cs, [point("a", "c1")], [T]) as rig:
        await trio.sleep(3)
        conn_rec, a_rec = await rig.rec("c1"), await rig.rec("a")
        assert "connStatus" in conn_rec and "curStatus" in a_rec
        result = await rig.gateway.apply([conn_rec], [a_rec])
    assert result.unchanged == [Ref("c1")] and not result.restarted


async def test_priority_arrays_survive_a_reload_and_writes_reach_the_new_runner(
    autojump_clock: MockClock,
) -> None:
    cs = conns("c1")
    pts = [point("a", "c1", write=True)]
    async with running(cs, pts, [T]) as rig:
        await trio.sleep(2)
        await rig.writes.write(Ref("a"), 8, Number(30), "op")
        await trio.sleep(1)
        array = rig.writes.cached(Ref("a"))
        result = await rig.gateway.apply([{**cs[0], "dis": "new name"}], pts)
        await trio.sleep(2)
        assert result.restarted == [Ref("c1")]
        assert rig.writes.cached(Ref("a")) is array  # untouched
        assert len(rig.driver().written()) == 1  # no writeOnStart: not written again
        await rig.writes.write(Ref("a"), 8, Number(31), "op")
        await trio.sleep(0.1)
        written = [v for _, v, _ in rig.driver().written()]
        rec = await rig.rec("a")
    assert written == [Number(30, "°C"), Number(31, "°C")]
    assert rec["writeStatus"] == "ok" and rec["writeVal"] == Number(31, "°C")


async def test_points_of_a_missing_connector_are_faulted(autojump_clock: MockClock) -> None:
    cs = conns("c1")
    pts = [point("a", "c1"), point("b", "nowhere")]
    async with running(cs, pts, [T], setup=lambda d: d.values.update({Ref("a"): Number(1)})) as rig:
        await trio.sleep(2)
        b = await rig.rec("b")
        assert b["curStatus"] == "fault"
        assert "testConnRef @nowhere names no test connector" in b["curErr"]
        assert rig.gateway.orphans.keys() == {Ref("b")}
        # the connector goes away: its point becomes an orphan too
        await rig.gateway.apply([], pts)
        a = await rig.rec("a")
    assert a["curStatus"] == "fault" and "curVal" not in a


async def test_a_slow_stop_does_not_pause_other_connectors(autojump_clock: MockClock) -> None:
    cs = conns("c1", "c2")
    pts = [point("a", "c1"), point("b", "c2", write=True)]

    def setup(d: ScriptedDriver) -> None:
        if d.conn["id"] == Ref("c2"):
            d.write_script = [5.0]  # a write that takes 5 s to be acknowledged

    async with running(cs, pts, [T], setup=setup) as rig:
        await trio.sleep(2)
        await rig.writes.write(Ref("b"), 8, Number(1), "op")
        start = trio.current_time()
        await rig.gateway.apply([cs[0]], [pts[0]])  # removes c2: waits for its write
        took = trio.current_time() - start
        reads = [t for t in rig.driver("c1").times("read") if start <= t <= start + 5]
        written = rig.driver("c2").written()
    assert took == 5.0
    assert len(written) == 1
    assert len(reads) == 5  # c1 kept its 1 s poll while c2 finished its write


async def test_tune_gc_freezes_the_configuration_and_makes_collections_rare() -> None:
    before = gc.get_threshold()
    try:
        async with running(conns("c1"), [point("a", "c1")], [T], tune_gc=True) as rig:
            young, _, full = gc.get_threshold()
            frozen = gc.get_freeze_count()
            assert rig.gateway.tune_gc
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert young >= 5000 and full >= 1000
    assert frozen > 1000  # at least the records and runner state of this test


async def test_a_runner_that_fails_to_take_a_write_never_fails_the_point_write(
    autojump_clock: MockClock,
) -> None:
    async with running(conns("c1"), [point("a", "c1", write=True)], [T]) as rig:
        await trio.sleep(1)

        def broken(id: Ref, val: object, level: int) -> None:
            raise RuntimeError("bug in a runner")

        rig.runner().effective_changed = broken
        await rig.writes.write(Ref("a"), 8, Number(5), "op")  # does not raise
        rec = await rig.rec("a")
    assert rec["writeVal"] == Number(5, "°C") and rec["writeLevel"] == Number(8)


async def test_apply_restarts_named_connectors_whose_records_did_not_change(
    autojump_clock: MockClock,
) -> None:
    # A register map edited on its own changes no record: the caller names the connector.
    cs = conns("c1", "c2")
    pts = [point("a", "c1"), point("b", "c2")]
    async with running(cs, pts, [T]) as rig:
        await trio.sleep(5)
        before = dict(rig.gateway.runners)
        result = await rig.gateway.apply(cs, pts, restart=[Ref("c2")])
        await trio.sleep(5)
        after = dict(rig.gateway.runners)
        opens = {c: len(rig.driver(c).times("open")) for c in ("c1", "c2")}
    assert result.unchanged == [Ref("c1")] and result.restarted == [Ref("c2")]
    assert not result.started and not result.stopped
    assert after[Ref("c1")] is before[Ref("c1")] and after[Ref("c2")] is not before[Ref("c2")]
    assert opens == {"c1": 1, "c2": 2}
