"""Tuning records, time units and the point -> connector -> default resolution."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import pytest

from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.points.durations import DurationError, seconds_of, show, time_number
from gateway.points.tuning import (
    DEFAULT_TUNING,
    TUNING_TAGS,
    Tuning,
    TuningError,
    load_tunings,
    resolve_tuning,
)

# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("val", "seconds"),
    [
        (Number(250, "ms"), 0.25),
        (Number(10, "s"), 10),
        (Number(10, "sec"), 10),
        (Number(5, "min"), 300),
        (Number(1.5, "h"), 5400),
        (Number(2, "hr"), 7200),
        (Number(1, "day"), 86400),
    ],
)
def test_time_units(val: Number, seconds: float) -> None:
    assert seconds_of(val, "pollTime") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("val", "message"),
    [
        (Number(10), "pollTime must be a time Number (ms, s, sec, min, h, hr, day), got 10"),
        (
            Number(10, "kW"),
            "pollTime must be a time Number (ms, s, sec, min, h, hr, day), got 10kW",
        ),
        (Number(1, "wk"), "got 1wk"),
        ("10s", 'got "10s"'),
        (10, "got 10"),  # a bare Python number has no unit either
        (True, "got true"),
        (Number(0, "s"), "pollTime must be a positive time, got 0s"),
        (Number(-1, "min"), "pollTime must be a positive time, got -1min"),
        (Number(float("inf"), "s"), "pollTime must be a positive time, got INFs"),
    ],
)
def test_durations_refused(val: Any, message: str) -> None:
    with pytest.raises(DurationError, match=re.escape(message)):
        seconds_of(val, "pollTime")


@pytest.mark.parametrize(
    ("val", "seconds"), [(10, 10.0), (2.5, 2.5), (dt.timedelta(minutes=2), 120.0)]
)
def test_plain_seconds_only_when_allowed(val: Any, seconds: float) -> None:
    assert seconds_of(val, "x", allow_plain=True) == seconds
    with pytest.raises(DurationError):
        seconds_of(val, "x")


def test_plain_bool_is_never_seconds() -> None:
    with pytest.raises(DurationError):
        seconds_of(True, "x", allow_plain=True)


@pytest.mark.parametrize(
    ("val", "text"),
    [
        (None, "null"),
        (Number(5, "kW"), "5kW"),
        (Number(2.5), "2.5"),
        (True, "true"),
        ("auto", '"auto"'),
        (Ref("a"), "@a (Ref)"),
        (object, "<class 'object'>"),
    ],
)
def test_show(val: Any, text: str) -> None:
    assert show(val) == text


def test_time_number() -> None:
    assert time_number(90) == Number(90, "s")


# -- tuning records --------------------------------------------------------------------------


def test_defaults() -> None:
    t = Tuning()
    assert (t.poll_time, t.stale_time, t.write_min_time, t.write_max_time) == (10, 300, None, None)
    assert (t.write_on_start, t.write_on_open) == (False, False)
    assert t == DEFAULT_TUNING
    assert set(TUNING_TAGS.values()) == {f.name for f in dataclasses.fields(Tuning)} - {"ref"}


def test_every_tag_of_a_tuning_record() -> None:
    rec = {
        "id": Ref("fast"),
        "connTuning": MARKER,
        "dis": "Fast",
        "pollTime": Number(500, "ms"),
        "staleTime": Number(1, "min"),
        "writeMinTime": Number(2, "sec"),
        "writeMaxTime": Number(1, "hr"),
        "writeOnStart": MARKER,
        "writeOnOpen": True,
        "writeRetryTime": Number(30, "s"),
        "connOpenRetryFreq": Number(5, "s"),
        "connOpenRetryMax": Number(1, "h"),
        "connCallTimeout": Number(3, "s"),
    }
    t = Tuning.from_record(rec)
    assert t == Tuning(
        poll_time=0.5,
        stale_time=60,
        write_min_time=2,
        write_max_time=3600,
        write_on_start=True,
        write_on_open=True,
        write_retry_time=30,
        open_retry_base=5,
        open_retry_max=3600,
        call_timeout=3,
    )
    assert t.ref == Ref("fast")


def test_absent_tags_take_the_given_defaults() -> None:
    site_default = Tuning(poll_time=5, write_on_open=True)
    t = Tuning.from_record({"staleTime": Number(2, "min")}, site_default)
    assert (t.poll_time, t.stale_time, t.write_on_open) == (5, 120, True)
    assert Tuning.from_record({}).poll_time == 10


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"pollTime": Number(10)}, "tuning @t: pollTime must be a time Number (ms, s, sec"),
        ({"staleTime": Number(5, "kW")}, "tuning @t: staleTime must be a time Number"),
        ({"writeMinTime": Number(-1, "s")}, "tuning @t: writeMinTime must be a positive time"),
        (
            {"writeOnStart": "yes"},
            'tuning @t: writeOnStart must be a marker (or a Bool), got "yes"',
        ),
        (
            {"polltime": Number(1, "s")},
            "tuning @t: unknown tag 'polltime'; did you mean 'pollTime'?",
        ),
        (
            {"writeMinTim": Number(1, "s")},
            "unknown tag 'writeMinTim'; did you mean 'writeMinTime'?",
        ),
        (
            {"connOpenRetryFreq": Number(10, "min"), "connOpenRetryMax": Number(1, "min")},
            "connOpenRetryMax (60s) is shorter than connOpenRetryFreq (600s)",
        ),
    ],
)
def test_bad_tuning_records(tags: dict[str, Any], message: str) -> None:
    with pytest.raises(TuningError, match=re.escape(message)):
        Tuning.from_record({"id": Ref("t"), "connTuning": MARKER, **tags})


def test_unrelated_tags_are_fine_and_false_turns_a_flag_off() -> None:
    t = Tuning.from_record(
        {"connTuning": MARKER, "site": MARKER, "notes": "x", "writeOnOpen": False},
        Tuning(write_on_open=True),
    )
    assert t.write_on_open is False
    assert t.ref is None


def test_load_tunings_takes_only_tuning_records() -> None:
    recs = [
        {"id": Ref("a"), "connTuning": MARKER, "pollTime": Number(1, "s")},
        {"id": Ref("b"), "point": MARKER, "pollTime": Number(2, "s")},
        {"connTuning": MARKER, "pollTime": Number(3, "s")},  # no id: cannot be referenced
    ]
    assert load_tunings(recs) == {Ref("a"): Tuning(poll_time=1)}


# -- resolution ---------------------------------------------------------------------------------

TUNINGS = {Ref("fast"): Tuning(poll_time=1), Ref("slow"): Tuning(poll_time=60)}
DEFAULT = Tuning(poll_time=10)


@pytest.mark.parametrize(
    ("point", "conn", "poll_time"),
    [
        ({"connTuningRef": Ref("fast")}, {"connTuningRef": Ref("slow")}, 1),
        ({}, {"connTuningRef": Ref("slow")}, 60),
        ({}, {}, 10),
        ({}, None, 10),
        ({"connTuningRef": Ref("fast", "Fast polls")}, None, 1),
    ],
)
def test_point_then_connector_then_default(
    point: dict[str, Any], conn: dict[str, Any] | None, poll_time: float
) -> None:
    assert resolve_tuning(point, conn, TUNINGS, DEFAULT).poll_time == poll_time


@pytest.mark.parametrize(
    ("point", "conn", "message"),
    [
        (
            {"id": Ref("p1"), "connTuningRef": Ref("nope")},
            {},
            "point @p1: connTuningRef @nope is not a tuning record",
        ),
        ({}, {"id": Ref("c1"), "connTuningRef": Ref("x")}, "connector @c1: connTuningRef @x"),
        ({"connTuningRef": "fast"}, {}, 'point: connTuningRef must be a Ref, got "fast"'),
    ],
)
def test_dangling_or_malformed_references_are_errors(
    point: dict[str, Any], conn: dict[str, Any], message: str
) -> None:
    with pytest.raises(TuningError, match=re.escape(message)):
        resolve_tuning(point, conn, TUNINGS, DEFAULT)
