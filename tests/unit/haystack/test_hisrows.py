"""HisRows: history rows backed by columns, the writers' bulk texts, and chunked histories."""

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
from gateway.haystack.codecs import bulk, zinc
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


# -- bulk texts (codecs.bulk): exactly what the one-value writers give ------------------------


@settings(max_examples=300)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=40))
def test_float_reprs_are_reprs(nums: list[float]) -> None:
    assert bulk.float_reprs(nums) == list(map(repr, nums))
    assert bulk.float_reprs(array("d", nums)) == list(map(repr, nums))


@settings(max_examples=200)
@given(st.lists(st.floats(), min_size=1, max_size=20), st.sampled_from(["", "kW", "°F", "m³/h"]))
def test_zinc_floats(nums: list[float], unit: str) -> None:
    finite = all(math.isfinite(v) for v in nums)
    texts = bulk.zinc_floats(nums, unit)
    if not finite:
        assert texts is None
        return
    assert texts == [(repr(v)[:-2] if repr(v).endswith(".0") else repr(v)) + unit for v in nums]
    assert bulk.zinc_floats([1e-5, 1e-7, 1e16, 0.0001, 5e-324, -0.0], "") == [
        "1e-05",
        "1e-07",
        "1e+16",
        "0.0001",
        "5e-324",
        "-0",
    ]


def _iso(val: dt.datetime, utc_z: bool) -> str:
    text = val.isoformat()
    return text[:-6] + "Z" if utc_z and text.endswith("+00:00") else text


@settings(max_examples=200)
@given(
    st.lists(
        st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)), min_size=1, max_size=30
    ),
    st.sampled_from(["New_York", "UTC", "Paris", "Lord_Howe", "Kolkata", "GMT-3", "Chatham"]),
    st.booleans(),
)
def test_datetime_texts_are_isoformat(naive: list[dt.datetime], zone: str, fold: bool) -> None:
    tz = hs_tz(zone)
    vals = [d.replace(microsecond=0, tzinfo=tz, fold=int(fold)) for d in naive]
    utc_z = zone == "UTC"
    assert bulk.datetime_texts(vals, " " + zone, utc_z) == [
        _iso(v, utc_z) + " " + zone for v in vals
    ]


def test_datetime_texts_only_for_one_zone_and_whole_seconds() -> None:
    ny, paris = hs_tz("New_York"), hs_tz("Paris")
    base = dt.datetime(2024, 3, 10, 1, 59, 59, tzinfo=ny)
    assert bulk.datetime_texts([base, base.replace(hour=3)]) == [
        "2024-03-10T01:59:59-05:00",
        "2024-03-10T03:59:59-04:00",
    ]
    assert bulk.datetime_texts([base, base.astimezone(paris)]) is None
    assert bulk.datetime_texts([base, base.replace(microsecond=1)]) is None
    assert bulk.datetime_texts([base, None]) is None
    assert bulk.datetime_texts([base.replace(tzinfo=None)]) is None
    assert bulk.datetime_texts([]) is None
    odd = dt.timezone(dt.timedelta(hours=5, minutes=30, seconds=15))
    assert bulk.datetime_texts([dt.datetime(2024, 1, 1, tzinfo=odd)]) == [
        "2024-01-01T00:00:00+05:30:15"
    ]


def test_interleave() -> None:
    assert bulk.interleave([["a", "b"], "-", ["1", "2"], "\n"], 2) == "a-1\nb-2\n"
    assert bulk.interleave([b"x"], 3) == b"xxx"
    assert bulk.interleave([[b"a"], b";"], 1) == b"a;"


# -- history reads in chunks: encode_grid_iter ----------------------------------------------


def _long_columns(count: int, unit: str | None = "kW") -> Columns:
    ny = hs_tz("New_York")
    start = dt.datetime(2024, 3, 9, tzinfo=ny).timestamp()  # over the spring-forward gap
    times = array("d", [start + k * 60.0 for k in range(count)])
    nums = array("d", [20 + (k % 1440) / 100 for k in range(count)])
    others: dict[int, Value] = {}
    for k in (0, 7, 999, count // 2, count - 1):
        if 0 <= k < count:
            nums[k] = math.nan
            others[k] = NA if k % 2 else Number(k, "W")
    if count > 5:
        nums[3] = math.inf  # a Number, not finite
    return Columns(ny, unit, times, nums, others)


@pytest.mark.parametrize("count", [0, 1, 5, 3000])
@pytest.mark.parametrize("unit", ["kW", None])
def test_history_chunks_join_to_the_whole_document(count: int, unit: str | None) -> None:
    from gateway.haystack.codecs import json4

    lazy = Grid(["ts", "val"], HisRows(_long_columns(count, unit)), {"id": Ref("p")})
    eager = Grid(["ts", "val"], list(lazy.rows), lazy.meta)
    for codec in (zinc, json4):
        whole = codec.encode_grid(lazy)
        whole = whole.encode() if isinstance(whole, str) else whole
        chunks = list(codec.encode_grid_iter(lazy))
        assert b"".join(chunks) == whole
        assert max(map(len, chunks)) <= 96 * 1024
        if count == 3000:
            assert len(chunks) >= 3
        # (Zinc writes INF without its unit: compare with what the row writer writes)
        assert codec.decode_grid(whole) == codec.decode_grid(codec.encode_grid(eager))
    assert json4.decode_grid(json4.encode_grid(lazy)) == eager


def test_history_text_is_the_row_writers_text() -> None:
    from gateway.haystack.codecs import json4

    lazy = Grid(["ts", "val"], HisRows(_long_columns(2000)), {"id": Ref("p")})
    eager = Grid(["ts", "val"], list(lazy.rows), lazy.meta)
    assert json4.encode_grid(lazy) == json4.encode_grid(eager)
    assert zinc.encode_grid(lazy) == zinc.encode_grid(eager)
