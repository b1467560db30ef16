"""The runtime's small parts: the wake-up queue, the history buffer, bindings, the registry."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from drivers.base import FaultError
from gateway.haystack.kinds import MARKER, Number, Ref, Uri
from gateway.points.hiscollect import HisSample
from gateway.points.tuning import Tuning, load_tunings
from gateway.runtime.bindings import bind
from gateway.runtime.history import HisBuffer
from gateway.runtime.registry import DriverKind, DriverRegistry, RegisterMaps
from gateway.runtime.wakes import WakeQueue, Wakeup
from gateway.storage.memory import InMemoryAdapter
from tests.unit.runtime.scripted import ScriptedKind, connector, point, secs, tuning

UTC = dt.UTC


# -- WakeQueue -----------------------------------------------------------------------------


def test_wake_queue_keeps_the_latest_schedule_per_key() -> None:
    q: WakeQueue[str] = WakeQueue()
    assert q.next_at() == math.inf and q.pop_due(100) == []
    q.schedule("a", 5)
    q.schedule("b", 3)
    q.schedule("a", 1)  # replaces 5
    q.schedule("c", 7)
    q.cancel("c")
    assert len(q) == 2 and "a" in q and "c" not in q
    assert q.next_at() == 1
    assert q.pop_due(2) == ["a"]
    assert q.pop_due(10) == ["b"]  # the stale "a"@5 entry is skipped
    assert q.next_at() == math.inf and len(q) == 0


def test_wake_queue_stays_small_under_rescheduling() -> None:
    q: WakeQueue[int] = WakeQueue()
    for i in range(10_000):
        q.schedule(i % 10, float(i))
    assert len(q) == 10
    assert len(q._heap) <= 4 * 10 + 64 + 1
    assert q.pop_due(math.inf) == list(range(10))


async def test_wakeup_remembers_a_signal_given_while_busy(autojump_clock: MockClock) -> None:
    wake = Wakeup()
    wake.set()
    assert await wake.wait_until(trio.current_time() + 10) is True
    start = trio.current_time()
    assert await wake.wait_until(start + 10) is False
    assert trio.current_time() == start + 10


# -- HisBuffer -----------------------------------------------------------------------------


def sample(sec: int, val: float = 1.0) -> HisSample:
    return HisSample(dt.datetime(2024, 1, 1, 0, 0, sec, tzinfo=UTC), Number(val))


def his_rec(pid: str) -> dict[str, Any]:
    return {"id": Ref(pid), "point": MARKER, "his": MARKER, "kind": "Number", "tz": "UTC"}


async def test_his_buffer_writes_one_batch_per_point() -> None:
    store = InMemoryAdapter([his_rec("a"), his_rec("b")])
    buf = HisBuffer(store, flush_interval=60)
    for i in range(5):
        buf.add(Ref("a"), sample(i))
        buf.add(Ref("b"), sample(i, 2.0))
    assert len(buf) == 10 and len(buf.pending(Ref("a"))) == 5
    assert await buf.flush() == 10
    assert len(await store.his_read(Ref("a"))) == 5
    stats = buf.statistics()
    assert (stats.queued, stats.written, stats.flushes) == (0, 10, 1)


class FlakyStore(InMemoryAdapter):
    """A store whose his_write fails while ``failing`` is set."""

    failing = True

    async def his_write(self, id: Ref, samples: Any) -> int:
        if self.failing:
            raise OSError("disk I/O error")
        return await super().his_write(id, samples)


async def test_his_buffer_keeps_samples_the_store_refused() -> None:
    store = FlakyStore([his_rec("a")])
    buf = HisBuffer(store, flush_interval=60)
    buf.add(Ref("a"), sample(1))
    assert await buf.flush() == 0
    buf.add(Ref("a"), sample(2))
    assert [s.ts.second for s in buf.pending(Ref("a"))] == [1, 2]  # older first
    store.failing = False
    assert await buf.flush() == 2
    assert buf.statistics().failed_flushes == 1 and buf.statistics().dropped == 0


async def test_his_buffer_drops_samples_of_removed_points_and_bounds_memory() -> None:
    store = InMemoryAdapter([his_rec("a")])
    buf = HisBuffer(store, flush_interval=60, max_samples=2, max_queued=4)
    for i in range(4):
        buf.add(Ref("a"), sample(i))
    buf.add(Ref("gone"), sample(9))
    assert len(buf) == 4 and buf.statistics().dropped == 1  # the oldest went
    assert [s.ts.second for s in buf.pending(Ref("a"))] == [1, 2, 3]
    assert await buf.flush() == 3
    assert buf.statistics().dropped == 2  # nothing will ever take the samples of "gone"
    assert len(await store.his_read(Ref("a"))) == 3


async def test_his_buffer_flushes_on_interval_and_when_full(autojump_clock: MockClock) -> None:
    store = InMemoryAdapter([his_rec("a")])
    buf = HisBuffer(store, flush_interval=10, max_samples=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(buf.run)
        buf.add(Ref("a"), sample(1))
        await trio.sleep(9)
        assert len(buf) == 1
        await trio.sleep(2)
        assert len(buf) == 0
        for i in range(3):
            buf.add(Ref("a"), sample(10 + i))
        await trio.sleep(0.001)
        assert len(buf) == 0  # full: flushed without waiting for the interval
        nursery.cancel_scope.cancel()
    assert len(await store.his_read(Ref("a"))) == 4


def test_his_buffer_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="flush_interval"):
        HisBuffer(InMemoryAdapter(), flush_interval=0)


# -- bindings ------------------------------------------------------------------------------


def test_bind_groups_points_resolves_tunings_and_reports_problems() -> None:
    kind = ScriptedKind()
    tunings = load_tunings([tuning("fast", pollTime=secs(1)), tuning("slow", pollTime=secs(60))])
    conns = [
        connector("c1", connTuningRef=Ref("fast")),
        connector("c2", connTuningRef=Ref("missing")),
        {"id": Ref("x"), "conn": MARKER, "fooConn": MARKER},
    ]
    pts = [
        point("a", "c1"),
        point("b", "c1", connTuningRef=Ref("slow")),
        point("c", "c2"),
        point("d", "c9"),
        {"id": Ref("e"), "point": MARKER},  # no connector at all: not ours
    ]
    result = bind(conns, pts, kind.registry(), tunings)
    c1, c2 = result.connectors[Ref("c1")], result.connectors[Ref("c2")]
    assert c1.point_ids == [Ref("a"), Ref("b")]
    assert c1.point_tunings[Ref("a")].poll_time == 1
    assert c1.point_tunings[Ref("b")].poll_time == 60
    assert c2.conn_fault is not None and "@missing" in c2.conn_fault
    assert Ref("c") in c2.point_faults
    assert result.orphans == {Ref("d"): "testConnRef @c9 names no test connector"}
    assert Ref("x") in result.unknown


def test_binding_equality_ignores_runtime_tags_but_not_configuration() -> None:
    kind = ScriptedKind()
    tunings = load_tunings([tuning("t", pollTime=secs(1))])

    def one(conn: dict[str, Any], pts: list[dict[str, Any]], tun: Any = tunings) -> Any:
        return bind([conn], pts, kind.registry(), tun).connectors[conn["id"]]

    conn = connector("c1", connTuningRef=Ref("t"))
    base = one(conn, [point("a")])
    live = {"curVal": Number(3), "curStatus": "ok", "mod": dt.datetime.now(UTC)}
    assert one({**conn, "connStatus": "ok"}, [{**point("a"), **live}]) == base
    assert one(conn, [point("a", unit="°F")]) != base
    assert one(conn, [point("a"), point("b")]) != base
    assert one({**conn, "dis": "x"}, [point("a")]) != base
    assert one(conn, [point("a", testCur=Number(1))]) != one(conn, [point("a", testCur=True)])
    changed = load_tunings([tuning("t", pollTime=secs(2))])
    assert one(conn, [point("a")], changed) != base


# -- registry ------------------------------------------------------------------------------


def test_registry_finds_the_kind_by_marker() -> None:
    kind = DriverKind("modbus", lambda conn: None)  # type: ignore[arg-type,return-value]
    reg = DriverRegistry([kind])
    assert (kind.conn_marker, kind.conn_ref_tag, kind.cur_tag, kind.write_tag) == (
        "modbusConn",
        "modbusConnRef",
        "modbusCur",
        "modbusWrite",
    )
    assert reg.kind_of({"modbusConn": MARKER}) is kind
    assert reg.kind_of({"bacnetConn": MARKER}) is None
    assert "modbus" in reg and reg.get("modbus") is kind and list(reg) == [kind]
    with pytest.raises(ValueError, match="already registered"):
        reg.add(kind)


def test_register_maps_by_name_and_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "ahu.csv").write_text("name,addr,data,rw\nsat,30001,f4,r\n", encoding="utf-8")
    maps = RegisterMaps(base_dir=tmp_path)
    found = maps.for_connector({"modbusRegMapUri": Uri("ahu.csv")})
    assert found.row("sat").address == 0
    assert maps.for_connector({"modbusRegMap": "ahu.csv"}) is found  # parsed once
    with pytest.raises(FaultError, match="no modbusRegMapUri"):
        maps.for_connector({})
    with pytest.raises(FaultError, match=r"cannot read register map 'nope\.csv'"):
        maps.for_connector({"modbusRegMapUri": "nope.csv"})
    with pytest.raises(FaultError, match="outside"):
        maps.for_connector({"modbusRegMapUri": "../etc/passwd"})
    with pytest.raises(FaultError, match="unknown register map"):
        RegisterMaps().for_connector({"modbusRegMapUri": "x.csv"})


def test_tuning_defaults_apply_without_a_record() -> None:
    kind = ScriptedKind()
    result = bind([connector("c1")], [point("a", "c1")], kind.registry(), {}, Tuning(poll_time=3))
    assert result.connectors[Ref("c1")].point_tunings[Ref("a")].poll_time == 3
