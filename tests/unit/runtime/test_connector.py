"""The connection runner's timing and status rules, on trio's virtual clock, with a scripted
driver: poll stagger and period, stale, reconnect backoff, call timeouts, status roll-up, and
one connector never delaying another."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from drivers.base import DownError, FaultError, RemoteStatusError
from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.points.schedule import Backoff
from tests.unit.runtime.scripted import (
    HANG,
    ScriptedDriver,
    connector,
    point,
    running,
    secs,
    tuning,
    until,
)

FAST = tuning("fast", pollTime=secs(10), staleTime=secs(60), connCallTimeout=secs(2))


def _values(driver: ScriptedDriver, **vals: float) -> None:
    for pid, val in vals.items():
        driver.values[Ref(pid)] = Number(val, "°C")


async def test_first_poll_is_staggered_then_every_poll_time(autojump_clock: MockClock) -> None:
    slow = tuning("slow", pollTime=secs(30))
    conn = connector(connTuningRef=Ref("fast"))
    pts = [point("a"), point("b"), point("c", connTuningRef=Ref("slow"))]
    async with running([conn], pts, [FAST, slow]) as rig:
        await trio.sleep(95)
        reads = [c for c in rig.driver().calls if c.op == "read"]
    fast = [c.t for c in reads if c.args[0] == (Ref("a"), Ref("b"))]
    slow_reads = [c.t for c in reads if c.args[0] == (Ref("c"),)]
    # Each bucket starts at a random offset inside its first period, then keeps its grid.
    assert 0 <= fast[0] < 10 and 0 <= slow_reads[0] < 30
    assert fast == pytest.approx([fast[0] + 10 * k for k in range(len(fast))])
    assert slow_reads == pytest.approx([slow_reads[0] + 30 * k for k in range(len(slow_reads))])
    assert len(fast) in (9, 10) and len(slow_reads) in (3, 4)
    assert {c.args[0] for c in reads} == {(Ref("a"), Ref("b")), (Ref("c"),)}


async def test_first_polls_of_many_connectors_are_spread(autojump_clock: MockClock) -> None:
    conns = [connector(f"c{i}", connTuningRef=Ref("fast")) for i in range(8)]
    pts = [point(f"p{i}", f"c{i}") for i in range(8)]
    async with running(conns, pts, [FAST]) as rig:
        await trio.sleep(10)
        firsts = [rig.driver(f"c{i}").times("read")[0] for i in range(8)]
    assert all(0 <= t < 10 for t in firsts)
    assert len({round(t, 6) for t in firsts}) == 8  # no two in the same instant


async def test_ok_goes_stale_after_stale_time_and_back_to_ok(autojump_clock: MockClock) -> None:
    stale = tuning("t", pollTime=secs(60), staleTime=secs(20))
    conn = connector(connTuningRef=Ref("t"))
    async with running([conn], [point("a")], [stale], setup=lambda d: _values(d, a=21.5)) as rig:
        await until(lambda: bool(rig.driver().times("read")))  # first poll in [0, 60)
        first = rig.driver().times("read")[0]
        await trio.sleep_until(first + 1)
        rec = await rig.rec("a")
        assert rec["curStatus"] == "ok" and rec["curVal"] == Number(21.5, "°C")
        await trio.sleep_until(first + 20.5)
        rec = await rig.rec("a")
        assert rec["curStatus"] == "stale"
        assert rec["curVal"] == Number(21.5, "°C")  # a stale value is still shown
        assert "curErr" not in rec
        await trio.sleep_until(first + 60.5)
        assert (await rig.rec("a"))["curStatus"] == "ok"


async def test_reconnect_backoff_doubles_with_jitter_up_to_the_cap(
    autojump_clock: MockClock,
) -> None:
    retry = tuning("t", connOpenRetryFreq=secs(1), connOpenRetryMax=secs(8))

    def setup(d: ScriptedDriver) -> None:
        d.open_script = [DownError("no route to device")] * 100

    async with running(
        [connector(connTuningRef=Ref("t"))], [point("a")], [retry], setup=setup
    ) as rig:
        await trio.sleep(60)
        opens = rig.driver().times("open")
        conn = await rig.rec("c1")
        a = await rig.rec("a")
    assert opens[0] == 0
    gaps = [b - a for a, b in itertools.pairwise(opens)]
    steps = [Backoff(1, 8).step(n) for n in range(1, len(gaps) + 1)]
    assert steps[:5] == [1, 2, 4, 8, 8]
    for gap, step in zip(gaps, steps, strict=True):
        # never sooner than half the step, never later than the step: one attempt per step
        assert step * 0.5 <= gap <= step + 1e-9
    assert len(set(gaps)) > 3  # jittered, not a fixed schedule
    assert conn["connStatus"] == "down" and conn["connErr"] == "no route to device"
    assert a["curStatus"] == "down" and "no route to device" in a["curErr"]
    assert "curVal" not in a


async def test_a_session_that_never_works_still_backs_off(autojump_clock: MockClock) -> None:
    """The device accepts the connection but every read fails: no reconnect storm."""
    retry = tuning("t", pollTime=secs(1), connOpenRetryFreq=secs(1), connOpenRetryMax=secs(16))

    def setup(d: ScriptedDriver) -> None:
        d.read_script = [DownError("slave 1 did not answer")] * 1000

    async with running(
        [connector(connTuningRef=Ref("t"))], [point("a"), point("b")], [retry], setup=setup
    ) as rig:
        await trio.sleep(60)
        opens = rig.driver().times("open")
    gaps = [b - a for a, b in itertools.pairwise(opens)]
    # each open is followed by one failed read (<= 1 s stagger) and a longer wait
    assert len(opens) <= 8
    assert gaps[-1] >= 8


async def test_open_that_hangs_times_out_as_down(autojump_clock: MockClock) -> None:
    t = tuning("t", connCallTimeout=secs(3), connOpenRetryFreq=secs(10))

    def setup(d: ScriptedDriver) -> None:
        d.open_script = [HANG, HANG]

    async with running([connector(connTuningRef=Ref("t"))], [point("a")], [t], setup=setup) as rig:
        await trio.sleep(3.5)
        conn = await rig.rec("c1")
        assert conn["connStatus"] == "down"
        assert conn["connErr"] == "open timed out after 3s"
        assert conn["connState"] == "closed"
        assert rig.driver().times("aclose") == [3.0]  # closed after the failed open
        await trio.sleep(30)
        opens = rig.driver().times("open")
        assert len(opens) == 3  # 0, hang; ~8.5, hang; then it opens
        assert (await rig.rec("c1"))["connStatus"] == "ok"


async def test_read_that_hangs_times_out_and_reconnects(autojump_clock: MockClock) -> None:
    t = tuning("t", pollTime=secs(5), connCallTimeout=secs(2), connOpenRetryFreq=secs(4))

    def setup(d: ScriptedDriver) -> None:
        d.read_script = ["ok", HANG]
        _values(d, a=1)

    async with running([connector(connTuningRef=Ref("t"))], [point("a")], [t], setup=setup) as rig:
        await trio.sleep(5)
        reads = rig.driver().times("read")
        await trio.sleep_until(reads[0] + 5 + 2.1)  # the second read hangs for the timeout
        conn = await rig.rec("c1")
        assert conn["connStatus"] == "down"
        assert conn["connErr"] == "read timed out after 2s"
        assert (await rig.rec("a"))["curStatus"] == "down"
        assert rig.driver().times("aclose") == pytest.approx([reads[0] + 7])
        await trio.sleep(10)
        assert len(rig.driver().times("open")) == 2
        assert (await rig.rec("a"))["curStatus"] == "ok"


async def test_point_errors_fault_only_their_points(autojump_clock: MockClock) -> None:
    def setup(d: ScriptedDriver) -> None:
        _values(d, a=1, b=2, c=3)
        d.point_errors[Ref("b")] = FaultError("illegal data address (code 2)")
        d.point_errors[Ref("c")] = RemoteStatusError("remoteDown", "gateway target failed")

    conn = connector(connTuningRef=Ref("fast"))
    async with running([conn], [point("a"), point("b"), point("c")], [FAST], setup=setup) as rig:
        await trio.sleep(10)
        a, b, c, conn_rec = [await rig.rec(x) for x in ("a", "b", "c", "c1")]
    assert conn_rec["connStatus"] == "ok" and "connErr" not in conn_rec
    assert a["curStatus"] == "ok" and a["curVal"] == Number(1, "°C")
    assert b["curStatus"] == "fault" and b["curErr"] == "illegal data address (code 2)"
    assert "curVal" not in b
    assert c["curStatus"] == "remoteDown" and c["curErr"] == "gateway target failed"


async def test_connector_down_rolls_up_to_every_point_and_recovers(
    autojump_clock: MockClock,
) -> None:
    t = tuning("t", pollTime=secs(5), connOpenRetryFreq=secs(2), connOpenRetryMax=secs(2))
    state: dict[str, Any] = {}

    def setup(d: ScriptedDriver) -> None:
        _values(d, a=1, b=2)
        d.point_errors[Ref("b")] = FaultError("bad register")
        state["d"] = d

    async with running(
        [connector(connTuningRef=Ref("t"))], [point("a"), point("b")], [t], setup=setup
    ) as rig:
        await trio.sleep(5)
        d = state["d"]
        d.read_script = [DownError("connection lost")]
        d.open_script = [DownError("refused")] * 3
        await until(lambda: len(d.times("read")) >= 2, step=0.001)
        await trio.sleep(0.001)
        a, b = await rig.rec("a"), await rig.rec("b")
        assert a["curStatus"] == b["curStatus"] == "down"
        assert a["curErr"] == "connector down: connection lost"
        await trio.sleep(30)
        a, b = await rig.rec("a"), await rig.rec("b")
        assert a["curStatus"] == "ok" and b["curStatus"] == "fault"
        assert (await rig.rec("c1"))["connStatus"] == "ok"


async def test_a_dead_device_never_delays_another_connector(autojump_clock: MockClock) -> None:
    t = tuning("t", pollTime=secs(1), connCallTimeout=secs(30), connOpenRetryFreq=secs(1))

    def setup(d: ScriptedDriver) -> None:
        if d.conn["id"] == Ref("dead"):
            d.open_script = ["ok"] + [HANG] * 10
            d.read_script = [HANG] * 10
        _values(d, a=1, b=2)

    conns = [connector("dead", connTuningRef=Ref("t")), connector("live", connTuningRef=Ref("t"))]
    pts = [point("a", "dead"), point("b", "live")]
    async with running(conns, pts, [t], setup=setup) as rig:
        await trio.sleep(100)
        live = rig.driver("live").times("read")
        dead = rig.driver("dead").times("read")
    assert len(dead) == 1  # stuck in a read that hangs, then in opens that hang
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(live)}
    assert gaps == {1.0}
    assert len(live) >= 99


async def test_a_steady_poll_writes_nothing_and_each_poll_one_batch(
    autojump_clock: MockClock,
) -> None:
    calls: list[list[Any]] = []
    conn = connector(connTuningRef=Ref("fast"))
    pts = [point(p) for p in ("a", "b", "c")]
    async with running([conn], pts, [FAST], setup=lambda d: _values(d, a=1, b=2, c=3)) as rig:
        original = rig.store.update_records

        async def counting(records: Any) -> None:
            calls.append(list(records))
            await original(records)

        rig.store.update_records = counting  # type: ignore[method-assign]
        await trio.sleep(10)  # open (connector ok), then the first poll: three curVal
        assert len(calls) == 2
        assert {r["id"] for r in calls[1]} == {Ref("a"), Ref("b"), Ref("c")}
        assert all(r["curVal"] is not None for r in calls[1])
        await trio.sleep(50)  # five more polls of the same values
        assert len(calls) == 2
        rig.driver().values[Ref("b")] = Number(5, "°C")
        await trio.sleep(10)
    assert calls[2] == [{"id": Ref("b"), "curVal": Number(5, "°C")}]


async def test_disabled_connector_and_points(autojump_clock: MockClock) -> None:
    conns = [connector("off", disabled=MARKER), connector("on", connTuningRef=Ref("fast"))]
    pts = [point("a", "off"), point("b", "on", disabled=MARKER), point("c", "on")]
    async with running(conns, pts, [FAST], setup=lambda d: _values(d, c=3)) as rig:
        await trio.sleep(20)
        assert Ref("off") not in rig.kind.drivers or not rig.driver("off").calls
        assert (await rig.rec("off"))["connStatus"] == "disabled"
        assert (await rig.rec("a"))["curStatus"] == "disabled"
        assert (await rig.rec("b"))["curStatus"] == "disabled"
        assert (await rig.rec("c"))["curStatus"] == "ok"
        reads = {c.args[0] for c in rig.driver("on").calls if c.op == "read"}
    assert reads == {(Ref("c"),)}


async def test_bad_tuning_faults_only_that_point(autojump_clock: MockClock) -> None:
    conn = connector(connTuningRef=Ref("fast"))
    pts = [point("a"), point("b", connTuningRef=Ref("nope"))]
    async with running([conn], pts, [FAST], setup=lambda d: _values(d, a=1, b=2)) as rig:
        await trio.sleep(10)
        a, b = await rig.rec("a"), await rig.rec("b")
    assert a["curStatus"] == "ok"
    assert b["curStatus"] == "fault" and "@nope is not a tuning record" in b["curErr"]


async def test_driver_that_cannot_be_built_faults_the_connector(autojump_clock: MockClock) -> None:
    def setup(d: ScriptedDriver) -> None:
        raise FaultError("bad uri 'modbus-tcp://'")

    async with running([connector()], [point("a")], setup=setup) as rig:
        await trio.sleep(1)
        conn, a = await rig.rec("c1"), await rig.rec("a")
    assert conn["connStatus"] == "fault" and conn["connErr"] == "bad uri 'modbus-tcp://'"
    assert a["curStatus"] == "fault"


async def test_a_large_bucket_is_read_and_stored_a_slice_at_a_time(
    autojump_clock: MockClock,
) -> None:
    conn = connector(connTuningRef=Ref("fast"))
    pts = [point(f"p{i}") for i in range(600)]
    calls: list[int] = []

    def setup(d: ScriptedDriver) -> None:
        d.values.update({Ref(f"p{i}"): Number(i, "°C") for i in range(600)})

    async with running([conn], pts, [FAST], setup=setup, read_slice=250) as rig:
        original = rig.store.update_records

        async def counting(records: Any) -> None:
            calls.append(len(records))
            await original(records)

        rig.store.update_records = counting  # type: ignore[method-assign]
        await trio.sleep(10)
        reads = [c.args[0] for c in rig.driver().calls if c.op == "read"]
        last = await rig.rec("p599")
        stats = rig.runner().statistics()
    assert [len(r) for r in reads] == [250, 250, 100]
    assert [p for r in reads for p in r] == [Ref(f"p{i}") for i in range(600)]
    assert calls[-3:] == [250, 250, 100]  # one store update per slice
    assert last["curVal"] == Number(599, "°C")
    assert stats.polls == 1


async def test_tags_lost_by_a_failed_store_update_are_sent_again(
    autojump_clock: MockClock,
) -> None:
    def setup(d: ScriptedDriver) -> None:
        _values(d, b=2)
        d.point_errors[Ref("b")] = FaultError("bad register")

    conn = connector(connTuningRef=Ref("fast"))
    async with running([conn], [point("b")], [FAST], setup=setup) as rig:
        await trio.sleep(10)
        assert (await rig.rec("b"))["curErr"] == "bad register"
        original = rig.store.update_records
        failures = [OSError("disk full")]

        async def failing_once(records: Any) -> None:
            if failures:
                raise failures.pop()
            await original(records)

        rig.store.update_records = failing_once  # type: ignore[method-assign]
        del rig.driver().point_errors[Ref("b")]
        await trio.sleep(10)  # this poll's update is lost
        assert not failures
        assert (await rig.rec("b"))["curStatus"] == "fault"
        await trio.sleep(10)  # same reading again: sent again, curErr removed
        b = await rig.rec("b")
    assert b["curStatus"] == "ok" and b["curVal"] == Number(2, "°C") and "curErr" not in b
