"""hisRead ranges: every form, in the point's zone, start-inclusive and end-exclusive."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.haystack.hisrange import HisRangeError, parse_his_range
from gateway.haystack.tz import UTC, hs_tz

NY = hs_tz("New_York")
NOW = dt.datetime(2024, 3, 10, 15, 30, tzinfo=UTC)  # 11:30 in New York, the DST day


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("range_val", "start", "end"),
    [
        ("today", ny(2024, 3, 10), ny(2024, 3, 11)),
        ("yesterday", ny(2024, 3, 9), ny(2024, 3, 10)),
        ("2024-03-01", ny(2024, 3, 1), ny(2024, 3, 2)),
        ("2024-03-01,2024-03-05", ny(2024, 3, 1), ny(2024, 3, 6)),
        (" 2024-03-01 , 2024-03-05 ", ny(2024, 3, 1), ny(2024, 3, 6)),
        (
            "2024-03-01T08:00:00-05:00 New_York,2024-03-01T09:00:00-05:00 New_York",
            ny(2024, 3, 1, 8),
            ny(2024, 3, 1, 9),
        ),
        ("2024-03-10T10:00:00-04:00 New_York", ny(2024, 3, 10, 10), NOW.astimezone(NY)),
        (dt.date(2024, 3, 1), ny(2024, 3, 1), ny(2024, 3, 2)),
        (ny(2024, 3, 10, 9), ny(2024, 3, 10, 9), NOW.astimezone(NY)),
    ],
)
def test_forms(range_val: object, start: dt.datetime, end: dt.datetime) -> None:
    got_start, got_end = parse_his_range(range_val, NY, NOW)
    assert (got_start, got_end) == (start, end)
    assert got_start.tzinfo is NY and got_end.tzinfo is NY


def test_today_is_the_points_day_not_utcs() -> None:
    late = dt.datetime(2024, 3, 11, 2, 0, tzinfo=UTC)  # still the 10th in New York
    assert parse_his_range("today", NY, late)[0] == ny(2024, 3, 10)


def test_dst_day_is_23_hours() -> None:
    start, end = parse_his_range("2024-03-10", NY, NOW)
    # (subtract in UTC: Python subtracts wall times of datetimes that share a tzinfo)
    assert end.astimezone(UTC) - start.astimezone(UTC) == dt.timedelta(hours=23)


def test_range_in_another_zone_is_converted() -> None:
    start, _ = parse_his_range("2024-03-01T13:00:00Z UTC,2024-03-01T14:00:00Z UTC", NY, NOW)
    assert start == ny(2024, 3, 1, 8) and start.tzinfo is NY


@pytest.mark.parametrize(
    ("range_val", "message"),
    [
        ("", "empty"),
        ("someday", "cannot read"),
        ("2024-03-05,2024-03-01", "before it starts"),
        ("2024-03-01,2024-03-02T00:00:00Z UTC", "mixes"),
        ("5kW", "not a date"),
        (42, "must be a Str"),
    ],
)
def test_errors(range_val: object, message: str) -> None:
    with pytest.raises(HisRangeError, match=message):
        parse_his_range(range_val, NY, NOW)
