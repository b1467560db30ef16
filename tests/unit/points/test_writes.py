"""Write throttling: timelines of (time, event) -> the writes that reach the device."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.points.tuning import Tuning
from gateway.points.writes import WriteCmd, WriteReason, WriteThrottle

Event = tuple[float, str, Any]
Sent = tuple[float, Any, str]


def simulate(
    throttle: WriteThrottle,
    events: list[Event],
    *,
    until: float,
    fails: Callable[[float], bool] = lambda t: False,
) -> tuple[list[Sent], WriteThrottle]:
    """Run a throttle the way a connection runner does, with a device that answers at once.

    Events: ``(t, "eval", val)`` (level 8) or ``(t, "eval", (val, level))``, ``(t, "open",
    None)``, ``(t, "close", None)``. The runner asks :meth:`due` after every event and at every
    ``wake_at``, while the connection is open; a write fails when ``fails(t)``.
    """
    state = throttle
    is_open = False
    wake: float | None = None
    sent: list[Sent] = []

    def pump(now: float) -> None:
        nonlocal state, wake
        wake = None
        if not is_open:
            return
        for _ in range(50):
            state, decision = state.due(now)
            if decision.send is None:
                wake = decision.wake_at
                return
            sent.append((now, decision.send.val, decision.send.reason.value))
            state = state.failed(now) if fails(now) else state.succeeded(now)
        raise AssertionError(f"writes do not settle at t={now}")

    for t, kind, arg in [*sorted(events, key=lambda e: e[0]), (until, "end", None)]:
        while wake is not None and wake <= t:
            pump(wake)
        if kind == "eval":
            val, level = arg if isinstance(arg, tuple) else (arg, 8)
            state = state.evaluate(val, level, t)
        elif kind == "open":
            is_open = True
            state = state.opened(t)
        elif kind == "close":
            is_open = False
        pump(t)
    return sent, state


def throttle(**tuning: Any) -> WriteThrottle:
    return WriteThrottle.from_tuning(Tuning(**tuning))


# Each case: tuning, events, until, expected writes (time, value, reason)
TIMELINES: dict[str, tuple[dict[str, Any], list[Event], float, list[Sent]]] = {
    "start is not written by default; changes go at once": (
        {},
        [(0, "open", None), (0, "eval", "A"), (5, "eval", "B"), (6, "eval", "C")],
        100,
        [(5, "B", "change"), (6, "C", "change")],
    ),
    "writeOnStart writes the first value once open": (
        {"write_on_start": True},
        [(0, "eval", "A"), (1, "open", None)],
        100,
        [(1, "A", "start")],
    ),
    "writeOnStart when the first value comes after the open": (
        {"write_on_start": True},
        [(0, "open", None), (2, "eval", "A")],
        100,
        [(2, "A", "start")],
    ),
    "a change back to the start value is still written": (
        {},
        [(0, "open", None), (0, "eval", "A"), (5, "eval", "B"), (6, "eval", "A")],
        100,
        [(5, "B", "change"), (6, "A", "change")],
    ),
    "writeMinTime coalesces: only the latest value goes when the window closes": (
        {"write_min_time": 10},
        [
            (0, "open", None),
            (0, "eval", "A"),
            (1, "eval", "B"),
            (3, "eval", "C"),
            (5, "eval", "D"),
            (12, "eval", "E"),
            (40, "eval", "F"),
        ],
        100,
        [(1, "B", "change"), (11, "D", "minTime"), (21, "E", "minTime"), (40, "F", "change")],
    ),
    "writeMinTime: back to what the device holds cancels the owed write": (
        {"write_min_time": 10},
        [
            (0, "open", None),
            (0, "eval", "A"),
            (1, "eval", "B"),
            (3, "eval", "C"),
            (5, "eval", "B"),
            (20, "eval", "D"),
        ],
        100,
        [(1, "B", "change"), (20, "D", "change")],
    ),
    "writeMaxTime rewrites after each write": (
        {"write_max_time": 60},
        [(0, "open", None), (0, "eval", "A"), (10, "eval", "B"), (40, "eval", "C")],
        150,
        [(10, "B", "change"), (40, "C", "change"), (100, "C", "maxTime")],
    ),
    "writeMaxTime repeats until the value changes": (
        {"write_max_time": 60},
        [(0, "open", None), (0, "eval", "A"), (10, "eval", "B")],
        200,
        [(10, "B", "change"), (70, "B", "maxTime"), (130, "B", "maxTime"), (190, "B", "maxTime")],
    ),
    "writeMaxTime does nothing before the first write": (
        {"write_max_time": 60},
        [(0, "open", None), (0, "eval", "A")],
        500,
        [],
    ),
    "writeMinTime and writeMaxTime together": (
        {"write_min_time": 5, "write_max_time": 30},
        [(0, "open", None), (0, "eval", "A"), (1, "eval", "B"), (2, "eval", "C")],
        40,
        [(1, "B", "change"), (6, "C", "minTime"), (36, "C", "maxTime")],
    ),
    "writeOnOpen rewrites on each reopen, not on the first open": (
        {"write_on_open": True},
        [
            (0, "eval", "A"),
            (0, "open", None),
            (10, "close", None),
            (20, "open", None),
            (30, "close", None),
            (35, "eval", "B"),
            (50, "open", None),
        ],
        100,
        [(20, "A", "open"), (50, "B", "open")],
    ),
    "without writeOnOpen a change made while closed goes on open": (
        {},
        [
            (0, "eval", "A"),
            (0, "open", None),
            (10, "close", None),
            (15, "eval", "B"),
            (20, "open", None),
            (30, "close", None),
            (40, "open", None),
        ],
        100,
        [(20, "B", "change")],
    ),
    "relinquish to the default writes null at level 17": (
        {},
        [(0, "open", None), (0, "eval", ("A", 8)), (5, "eval", (None, 17))],
        10,
        [(5, None, "change")],
    ),
    "a new level with the same value is a change": (
        {},
        [(0, "open", None), (0, "eval", ("A", 8)), (5, "eval", ("A", 16))],
        10,
        [(5, "A", "change")],
    ),
}


@pytest.mark.parametrize("name", list(TIMELINES))
def test_write_timelines(name: str) -> None:
    tuning, events, until, want = TIMELINES[name]
    sent, _ = simulate(throttle(**tuning), events, until=until)
    assert sent == want


# Failures: the device refuses every write before t=25 (writeRetryTime 10)
FAILURES: dict[str, tuple[dict[str, Any], list[Event], list[Sent]]] = {
    "a failed write is retried until it succeeds": (
        {},
        [(0, "open", None), (0, "eval", "A"), (5, "eval", "B")],
        [(5, "B", "change"), (15, "B", "retry"), (25, "B", "retry")],
    ),
    "the retry carries the latest value": (
        {},
        [(0, "open", None), (0, "eval", "A"), (5, "eval", "B"), (8, "eval", "C")],
        [(5, "B", "change"), (15, "C", "retry"), (25, "C", "retry")],
    ),
    "a retry is owed even when the value returns to the last written one": (
        {},
        [(0, "open", None), (0, "eval", "A"), (5, "eval", "B"), (8, "eval", "A")],
        [(5, "B", "change"), (15, "A", "retry"), (25, "A", "retry")],
    ),
    "a reopen sends an owed write at once": (
        {},
        [
            (0, "open", None),
            (0, "eval", "A"),
            (5, "eval", "B"),
            (6, "close", None),
            (27, "open", None),
        ],
        [(5, "B", "change"), (27, "B", "retry")],
    ),
    "writeOnStart that fails is retried": (
        {"write_on_start": True},
        [(0, "open", None), (0, "eval", "A")],
        [(0, "A", "start"), (10, "A", "retry"), (20, "A", "retry"), (30, "A", "retry")],
    ),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_failed_writes_are_never_dropped(name: str) -> None:
    tuning, events, want = FAILURES[name]
    sent, state = simulate(throttle(**tuning), events, until=100, fails=lambda t: t < 25)
    assert sent == want
    assert state.written == state.desired
    assert state.failures == 0


def test_a_reopen_does_not_wait_for_the_retry_delay_but_honours_write_min_time() -> None:
    events: list[Event] = [
        (0, "open", None),
        (0, "eval", "A"),
        (5, "eval", "B"),  # fails: retry due at 15
        (6, "close", None),
        (9, "open", None),
    ]
    sent, _ = simulate(throttle(), events, until=50, fails=lambda t: t < 7)
    assert sent == [(5, "B", "change"), (9, "B", "retry")]
    events = [
        (0, "open", None),
        (0, "eval", "A"),
        (5, "eval", "B"),
        (6, "eval", "C"),  # owed until 25 by writeMinTime
        (7, "close", None),
        (9, "open", None),
    ]
    sent, _ = simulate(throttle(write_min_time=20), events, until=50)
    assert sent == [(5, "B", "change"), (25, "C", "minTime")]


def test_retry_delay_comes_from_tuning() -> None:
    t = throttle(write_retry_time=3)
    sent, _ = simulate(
        t, [(0, "open", None), (0, "eval", "A"), (1, "eval", "B")], until=10, fails=lambda t: t < 5
    )
    assert sent == [(1, "B", "change"), (4, "B", "retry"), (7, "B", "retry")]


def test_one_write_in_flight_and_changes_meanwhile_follow_it() -> None:
    state = throttle(write_min_time=10).evaluate("A", 8, 0).opened(0)
    state = state.evaluate("B", 8, 1)
    state, decision = state.due(1)
    assert decision.send == WriteCmd("B", 8, WriteReason.CHANGE)
    state = state.evaluate("C", 8, 2)
    same, decision = state.due(2)  # B is still in flight: nothing else goes out
    assert same is state
    assert (decision.send, decision.wake_at) == (None, None)
    state = state.succeeded(3)
    state, decision = state.due(3)
    assert decision.send is None and decision.wake_at == 13
    state, decision = state.due(13)
    assert decision.send == WriteCmd("C", 8, WriteReason.MIN_TIME)


def test_nothing_to_do_before_the_first_evaluation() -> None:
    state = throttle(write_on_open=True).opened(0).opened(5)
    assert state.due(6)[1].send is None


def test_completing_a_write_that_was_not_sent_is_a_bug() -> None:
    with pytest.raises(ValueError, match="no write is in flight"):
        throttle().succeeded(0)
    with pytest.raises(ValueError, match="no write is in flight"):
        throttle().failed(0)


def test_retuned_keeps_the_state() -> None:
    state = throttle().evaluate("A", 8, 0)
    again = state.retuned(Tuning(write_min_time=4))
    assert (again.min_time, again.desired) == (4, ("A", 8))


def test_values_are_compared_by_kind() -> None:
    state = throttle().evaluate(1, 8, 0).opened(0)
    state = state.evaluate(True, 8, 1)  # 1 == True in Python, but not in Haystack
    assert state.due(1)[1].send == WriteCmd(True, 8, WriteReason.CHANGE)


# -- properties -----------------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.integers(0, 200),
        st.sampled_from(["eval", "eval", "eval", "open", "close"]),
        st.sampled_from(["A", "B", "C"]),
    ),
    max_size=30,
)


THROTTLES = st.builds(
    WriteThrottle,
    min_time=st.sampled_from([None, 5.0, 20.0]),
    max_time=st.sampled_from([None, 50.0]),
    on_start=st.booleans(),
    on_open=st.booleans(),
    retry_time=st.just(7.0),
)


@settings(max_examples=300, deadline=None)
@given(EVENTS, THROTTLES, st.integers(0, 150))
def test_the_device_ends_up_with_the_latest_value(
    raw: list[tuple[int, str, str]], state: WriteThrottle, fail_until: int
) -> None:
    events: list[Event] = [(0, "open", None), (0, "eval", "A")]
    events += [(t, kind, val if kind == "eval" else None) for t, kind, val in raw]
    events.append((300, "open", None))  # whatever happened, the link is up at the end
    sent, state = simulate(state, events, until=400, fails=lambda t: t < fail_until)
    values = [e[2] for e in sorted(events, key=lambda e: e[0]) if e[1] == "eval"]
    ok = [s for s in sent if s[0] >= fail_until]
    if state.on_start or any(v != values[0] for v in values):
        # something had to be written: the last successful write is the latest value
        assert ok, sent
        assert ok[-1][1] == values[-1]
        assert state.written == state.desired == (values[-1], 8)
    else:
        # only rewrites of the one value there ever was (reopen, maxTime, their retries)
        assert all(s[1] == "A" and s[2] in ("maxTime", "open", "retry") for s in sent)
    # writeMinTime: successful writes are at least min_time apart unless forced by open/start
    if state.min_time is not None:
        for prev, cur in itertools.pairwise(ok):
            if cur[2] not in ("open", "start"):
                assert cur[0] - prev[0] >= state.min_time, (prev, cur)
