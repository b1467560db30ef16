"""Writes from the priority array to the device, on trio's virtual clock: at once on a change,
coalesced by writeMinTime, repeated by writeMaxTime, replayed on open and at start, failures
retried and reported, timed overrides ending, and a write in flight finishing on shutdown."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from drivers.base import DownError, FaultError
from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.writes import PointWrites
from tests.unit.runtime.scripted import (
    Rig,
    ScriptedDriver,
    connector,
    point,
    running,
    secs,
    tuning,
    until,
)

A = Ref("a")


def n(val: float) -> Number:
    return Number(val, "°C")


def conn_with(tid: str) -> dict[str, object]:
    return connector(connTuningRef=Ref(tid))


async def until_open(rig: Rig) -> None:
    await until(lambda: rig.runner().conn_state == "open")


async def test_a_change_is_written_at_once_and_reported(autojump_clock: MockClock) -> None:
    async with running([connector()], [point("a", write=True)]) as rig:
        await until_open(rig)
        await trio.sleep(1)
        t0 = trio.current_time()
        await rig.writes.write(A, 8, Number(50), "operator")
        await trio.sleep(0.01)
        assert rig.driver().written() == [(t0, n(50), 8)]
        rec = await rig.rec("a")
        assert rec["writeStatus"] == "ok" and "writeErr" not in rec
        assert rec["writeVal"] == n(50) and rec["writeLevel"] == Number(8)
        await rig.writes.write(A, 16, Number(20), "schedule")  # below level 8: no change
        await rig.writes.write(A, 8, None, "operator")  # relinquish: level 16 wins
        await rig.writes.write(A, 16, None, "schedule")  # all null: relinquish
        await trio.sleep(0.01)
        written = [(v, lvl) for _, v, lvl in rig.driver().written()]
        latencies = rig.runner().statistics().write_latencies
    assert written == [(n(50), 8), (n(20), 16), (None, 17)]
    assert latencies == (0.0, 0.0, 0.0)  # virtual time: the dispatch adds no delay


async def test_write_min_time_coalesces_to_the_latest(autojump_clock: MockClock) -> None:
    t = tuning("t", writeMinTime=secs(5))
    async with running([conn_with("t")], [point("a", write=True)], [t]) as rig:
        await until_open(rig)
        start = trio.current_time()
        for i, val in enumerate([1, 2, 3, 4]):
            await trio.sleep_until(start + i)
            await rig.writes.write(A, 8, Number(val), "op")
        await trio.sleep(10)
        written = [(round(t - start, 6), v) for t, v, _ in rig.driver().written()]
    assert written == [(0, n(1)), (5, n(4))]


async def test_write_max_time_rewrites_periodically(autojump_clock: MockClock) -> None:
    t = tuning("t", writeMaxTime=secs(10))
    async with running([conn_with("t")], [point("a", write=True)], [t]) as rig:
        await until_open(rig)
        await trio.sleep(20)
        assert rig.driver().written() == []  # nothing written since start: nothing repeated
        start = trio.current_time()
        await rig.writes.write(A, 8, Number(7), "op")
        await trio.sleep(35)
        written = [(round(t - start, 6), v) for t, v, _ in rig.driver().written()]
    assert written == [(0, n(7)), (10, n(7)), (20, n(7)), (30, n(7))]


async def _level_16_is_42(writes: PointWrites) -> None:
    await writes.write(A, 16, Number(42), "schedule")


@pytest.mark.parametrize("on_start", [True, False])
async def test_write_on_start(autojump_clock: MockClock, on_start: bool) -> None:
    t = tuning("t", writeOnStart=MARKER) if on_start else tuning("t")
    async with running(
        [conn_with("t")], [point("a", write=True)], [t], prepare=_level_16_is_42
    ) as rig:
        await trio.sleep(5)
        written = rig.driver().written()
        opened = rig.driver().times("open")[0]
    assert written == ([(opened, n(42), 16)] if on_start else [])


@pytest.mark.parametrize("on_open", [True, False])
async def test_write_on_open_replays_after_a_reconnect(
    autojump_clock: MockClock, on_open: bool
) -> None:
    extra = {"writeOnOpen": MARKER} if on_open else {}
    t = tuning("t", pollTime=secs(5), connOpenRetryFreq=secs(2), **extra)
    async with running([conn_with("t")], [point("a", write=True)], [t]) as rig:
        await until_open(rig)
        await rig.writes.write(A, 8, Number(3), "op")
        await trio.sleep(1)
        rig.driver().read_script = [DownError("link lost")]
        await trio.sleep(10)
        opens = rig.driver().times("open")
        written = rig.driver().written()
    assert len(opens) == 2
    expected = [n(3), n(3)] if on_open else [n(3)]
    assert [v for _, v, _ in written] == expected
    if on_open:
        assert written[1][0] == opens[1]


async def test_a_failed_write_is_reported_and_retried(autojump_clock: MockClock) -> None:
    t = tuning("t", writeRetryTime=secs(5))

    def setup(d: ScriptedDriver) -> None:
        d.write_script = [FaultError("value out of range"), FaultError("value out of range")]

    async with running([conn_with("t")], [point("a", write=True)], [t], setup=setup) as rig:
        await until_open(rig)
        start = trio.current_time()
        await rig.writes.write(A, 8, Number(99), "op")
        await trio.sleep(0.1)
        rec = await rig.rec("a")
        assert rec["writeStatus"] == "fault" and rec["writeErr"] == "value out of range"
        assert (await rig.rec("c1"))["connStatus"] == "ok"  # a refused value is no outage
        await trio.sleep(12)
        attempts = [round(t - start, 6) for t in rig.driver().times("write")]
        rec = await rig.rec("a")
    assert attempts == [0, 5, 10]
    assert rec["writeStatus"] == "ok" and "writeErr" not in rec
    assert rig.driver().written()[-1][1] == n(99)


async def test_a_write_that_finds_the_link_down_reconnects_and_is_sent_again(
    autojump_clock: MockClock,
) -> None:
    t = tuning("t", connOpenRetryFreq=secs(2))

    def setup(d: ScriptedDriver) -> None:
        d.write_script = [DownError("connection reset")]

    async with running([conn_with("t")], [point("a", write=True)], [t], setup=setup) as rig:
        await until_open(rig)
        await rig.writes.write(A, 8, Number(5), "op")
        await trio.sleep(0.01)
        assert (await rig.rec("c1"))["connStatus"] == "down"
        rec = await rig.rec("a")
        assert rec["writeStatus"] == "down"
        await trio.sleep(3)
        opens = rig.driver().times("open")
        written = rig.driver().written()
        rec = await rig.rec("a")
    assert len(opens) == 2
    assert written == [(opens[1], n(5), 8)]  # owed since the failure: sent on reopen
    assert rec["writeStatus"] == "ok"


async def test_a_write_made_while_down_goes_out_when_the_link_opens(
    autojump_clock: MockClock,
) -> None:
    t = tuning("t", connOpenRetryFreq=secs(4), connOpenRetryMax=secs(4))

    def setup(d: ScriptedDriver) -> None:
        d.open_script = [DownError("refused")] * 3

    async with running([conn_with("t")], [point("a", write=True)], [t], setup=setup) as rig:
        await trio.sleep(0.5)
        await rig.writes.write(A, 8, Number(1), "op")
        await rig.writes.write(A, 8, Number(2), "op")
        rec = await rig.rec("a")
        assert rec["writeStatus"] == "down" and rec["writeErr"] == "connector down: refused"
        await trio.sleep(20)
        opens = rig.driver().times("open")
        written = rig.driver().written()
    assert len(opens) == 4
    assert written == [(opens[3], n(2), 8)]  # only the latest value, once


async def test_a_timed_override_ends_and_the_next_level_is_written(
    autojump_clock: MockClock,
) -> None:
    async with running([connector()], [point("a", write=True)]) as rig:
        await until_open(rig)
        await rig.writes.write(A, 16, Number(10), "schedule")
        start = trio.current_time()
        await rig.writes.write(A, 8, Number(50), "op", duration=Number(30, "s"))
        await trio.sleep(40)
        written = [(round(t - start, 3), v, lvl) for t, v, lvl in rig.driver().written()]
    assert written[-2:] == [(0, n(50), 8), (30, n(10), 16)]


async def test_a_write_in_flight_finishes_when_the_gateway_stops(
    autojump_clock: MockClock,
) -> None:
    def setup(d: ScriptedDriver) -> None:
        d.write_script = [3.0]  # the device takes 3 s to acknowledge

    async with running([connector()], [point("a", write=True)], setup=setup) as rig:
        await until_open(rig)
        start = trio.current_time()
        await rig.writes.write(A, 8, Number(1), "op")
        await trio.sleep(1)
        await rig.gateway.stop()
        stopped = trio.current_time()
        written = rig.driver().written()
        closed = rig.driver().times("aclose")
    assert written == [(start + 3, n(1), 8)]
    assert stopped == pytest.approx(start + 3)
    assert closed == [start + 3]


async def test_writable_point_without_write_address_is_unbound(autojump_clock: MockClock) -> None:
    pts = [point("a", writable=MARKER), point("b")]
    async with running([connector()], pts) as rig:
        await trio.sleep(1)
        a, b = await rig.rec("a"), await rig.rec("b")
    assert a["writeStatus"] == "unbound"
    assert "writeStatus" not in b


async def _two_arrays(writes: PointWrites) -> None:
    await writes.write(A, 16, Number(1), "schedule")
    await writes.write(Ref("b"), 16, Number(2), "schedule")


async def test_no_write_is_tried_on_a_link_that_a_write_found_down(
    autojump_clock: MockClock,
) -> None:
    t = tuning("t", writeOnStart=MARKER, connOpenRetryFreq=secs(2))

    def setup(d: ScriptedDriver) -> None:
        d.write_script = [DownError("connection reset")]

    pts = [point("a", write=True), point("b", write=True)]
    async with running([conn_with("t")], pts, [t], setup=setup, prepare=_two_arrays) as rig:
        await trio.sleep(5)
        opens = rig.driver().times("open")
        attempts = [(c.t, c.args[0]) for c in rig.driver().calls if c.op == "write"]
        written = {c.args[0]: c.t for c in rig.driver().calls if c.op == "written"}
    assert len(opens) == 2
    # the first write at start found the link down; the second waited for the reopen
    assert attempts[0][0] == opens[0] and len([t for t, _ in attempts if t == opens[0]]) == 1
    assert written == {A: opens[1], Ref("b"): opens[1]}
