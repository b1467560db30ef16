"""HisColumns: the columnar form of a history read."""

from __future__ import annotations

import datetime as dt
import math
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.haystack.kinds import NA, Number, Value
from gateway.haystack.tz import hs_tz
from gateway.storage.hiscolumns import HisColumns

TZ = hs_tz("New_York")
T0 = dt.datetime(2024, 11, 3, tzinfo=TZ)  # a DST change inside the range

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda v: Number(v, "kW")),
    st.sampled_from([Number(1, "W"), Number(2), Number(math.nan, "kW"), True, False, NA, "x"]),
)


@given(st.lists(st.tuples(st.integers(0, 10**9), values), unique_by=lambda s: s[0]))
def test_from_samples_round_trips(raw: list[tuple[int, Value]]) -> None:
    samples = sorted(((T0 + dt.timedelta(microseconds=us), v) for us, v in raw), key=lambda s: s[0])
    cols = HisColumns.from_samples(samples, TZ)
    assert len(cols) == len(samples)
    assert cols.samples() == samples == list(cols)
    assert cols.timestamps() == [ts for ts, _ in samples]
    assert cols.values() == [v for _, v in samples]
    assert all(ts.tzinfo is TZ for ts in cols.timestamps())


def test_indexing_and_slicing() -> None:
    samples: list[tuple[dt.datetime, Value]] = [
        (T0 + dt.timedelta(hours=h), Number(h, "kW")) for h in range(4)
    ]
    samples[2] = (samples[2][0], True)
    cols = HisColumns.from_samples(samples, TZ)
    assert cols.others == {2: True} and math.isnan(cols.nums[2])
    assert cols[0] == samples[0] and cols[-2] == samples[-2]
    assert cols[1:3].samples() == samples[1:3] and cols[1:3].others == {1: True}
    assert cols[3:1].samples() == []
    with pytest.raises(ValueError):
        cols[::2]
    with pytest.raises(IndexError):
        cols[4]
    assert cols == samples and cols != samples[:3]
    assert "4 samples" in repr(cols)


def test_bad_columns() -> None:
    with pytest.raises(ValueError):
        HisColumns(TZ, None, array("d", [1.0]), array("d"))
    empty = HisColumns.empty(TZ, "kW")
    assert len(empty) == 0 and empty.samples() == [] and empty.unit == "kW"
