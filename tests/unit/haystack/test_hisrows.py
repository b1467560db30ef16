"""HisRows: history rows backed by columns, and the bulk timestamp formatting of the writers."""

from __future__ import annotations

import datetime as dt
import json
import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.haystack import NA, Grid, Number, Ref
from gateway.haystack.codecs import zinc
from gateway.haystack.codecs.common import format_datetime_iso
from gateway.haystack.hisrows import HisRows, float_texts, iso_times
from gateway.haystack.kinds import Value
from gateway.haystack.tz import UTC, hs_tz


@dataclass
class Columns:
    tz: dt.tzinfo
    unit: str | None
    times: array[float]
    nums: array[float]
    others: Mapping[int, Value] = field(default_factory=dict)


def _expected(times: list[float], tz: dt.tzinfo) -> list[str]:
    return [format_datetime_iso(dt.datetime.fromtimestamp(t, tz)) for t in times]


@pytest.mark.parametrize(
    "zone", ["New_York", "UTC", "London", "Kolkata", "Lord_Howe", "GMT+5", "Paris"]
)
def test_iso_times_across_dst_transitions(zone: str) -> None:
    tz = hs_tz(zone)
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()
    times = [start + k * 900 for k in range(4 * 24 * 300)]  # 15 min for 300 days
    assert iso_times(times, tz) == _expected(times, tz)


def test_iso_times_odd_cases() -> None:
    paris = hs_tz("Paris")
    old = dt.datetime(1911, 1, 1, tzinfo=dt.UTC).timestamp()  # local mean time +00:09:21
    times = [old, old + 0.5, old + 86400.25, -1.5, 0.0, 1e9 + 0.123456]
    assert iso_times(times, paris) == _expected(times, paris)
    assert iso_times([0.0], UTC) == ["1970-01-01T00:00:00Z"]
    assert iso_times([], UTC) == []


@settings(max_examples=200)
@given(
    st.lists(st.floats(min_value=-2e9, max_value=4e9), min_size=1, max_size=30),
    st.sampled_from(["New_York", "Sydney", "UTC", "Chatham", "Santiago"]),
)
def test_iso_times_property(raw: list[float], zone: str) -> None:
    times = sorted(round(t, 6) for t in raw)
    tz = hs_tz(zone)
    assert iso_times(times, tz) == _expected(times, tz)


def test_float_texts() -> None:
    assert float_texts([20.0, 20.5, 1e20, -0.25], "kW") == ["20kW", "20.5kW", "1e+20kW", "-0.25kW"]
    assert float_texts([math.nan, math.inf, -math.inf, 3.0], None) == ["NaN", "INF", "-INF", "3"]


def _columns() -> Columns:
    ny = hs_tz("New_York")
    start = dt.datetime(2024, 11, 3, tzinfo=ny).timestamp()
    times = array("d", [start + k * 1800 for k in range(12)])
    nums = array("d", [float(k) for k in range(12)])
    nums[3] = math.nan
    return Columns(ny, "kW", times, nums, {3: NA, 5: Number(9, "W")})


def test_his_rows_are_a_sequence_of_row_dicts() -> None:
    rows = HisRows(_columns())
    assert len(rows) == 12
    assert rows[0]["val"] == Number(0, "kW")
    assert rows[3]["val"] is NA and rows[5]["val"] == Number(9, "W")
    assert rows[-1] == rows[11]
    assert rows[1:3] == [rows[1], rows[2]]
    stamps = [r["ts"].timestamp() for r in rows]  # (wall times repeat in the DST fold)
    assert stamps == sorted(stamps) and len(set(stamps)) == 12
    with pytest.raises(IndexError):
        rows[12]


def test_zinc_writes_his_rows_exactly_like_materialised_rows() -> None:
    lazy = Grid(
        ["ts", "val"], HisRows(_columns()), {"hisStart": dt.datetime(2024, 11, 3, tzinfo=UTC)}
    )
    eager = Grid(["ts", "val"], list(lazy.rows), lazy.meta)
    assert type(lazy.rows) is HisRows
    assert zinc.encode_grid(lazy) == zinc.encode_grid(eager)
    assert zinc.decode_grid(zinc.encode_grid(lazy)) == eager


def test_json_writes_his_rows_exactly_like_materialised_rows() -> None:
    from gateway.haystack.codecs import json3, json4

    lazy = Grid(["ts", "val"], HisRows(_columns()), {"id": Ref("p")})
    eager = Grid(["ts", "val"], list(lazy.rows), lazy.meta)
    assert json4.decode_grid(json4.encode_grid(lazy)) == eager
    assert json.loads(json4.encode_grid(lazy)) == json.loads(json4.encode_grid(eager))
    assert json3.decode_grid(json3.encode_grid(lazy)) == eager
    unitless = Columns(UTC, None, array("d", [0.0, 60.0]), array("d", [1.5, math.inf]))
    grid = Grid(["ts", "val"], HisRows(unitless))
    assert json4.decode_grid(json4.encode_grid(grid)) == Grid(["ts", "val"], list(grid.rows))
