"""``prepare_samples``: the column fast path gives exactly what the general loop gives."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.haystack.kinds import NA, Number, Value
from gateway.haystack.tz import hs_tz
from gateway.storage.base import StorageError
from gateway.storage.history import KeyedSamples, PreparedSamples, prepare_samples, to_us

_ZONES = [hs_tz("New_York"), hs_tz("UTC"), hs_tz("Kolkata"), dt.timezone(dt.timedelta(hours=-3))]
_VALUES = st.one_of(
    st.builds(Number, st.floats(allow_nan=True), st.sampled_from([None, "kW", "°F"])),
    st.booleans(),
    st.text(max_size=3),
    st.just(NA),
    st.none(),
)
_TIMES = st.builds(
    lambda us, zone: (
        dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    ).astimezone(zone),
    st.integers(-(10**15), 10**15),
    st.sampled_from(_ZONES),
)


def _general(samples: list[tuple[dt.datetime, Value]]) -> PreparedSamples:
    return prepare_samples(iter(samples))  # not a list: the general loop


def _same(a: PreparedSamples, b: PreparedSamples) -> None:
    assert a.keys == b.keys
    assert a.tz is b.tz
    assert len(a.vals) == len(b.vals)
    for x, y in zip(a.vals, b.vals, strict=True):
        assert x.__class__ is y.__class__
        assert x == y or x != x  # NaN Numbers compare unequal to themselves


@given(st.lists(st.tuples(_TIMES, _VALUES), max_size=30))
def test_any_batch_matches_the_general_loop(samples: list[tuple[dt.datetime, Value]]) -> None:
    _same(prepare_samples(samples), _general(samples))


@given(st.lists(st.tuples(_TIMES, _VALUES.filter(lambda v: v is not None)), max_size=30))
def test_ascending_batches_take_the_fast_path(samples: list[tuple[dt.datetime, Value]]) -> None:
    by_key = {to_us(ts): (ts, val) for ts, val in samples}
    ordered = [by_key[k] for k in sorted(by_key)]
    fast = prepare_samples(ordered)
    _same(fast, _general(ordered))
    assert fast.keys == sorted(by_key)


def test_unsorted_duplicates_and_nulls_fall_back() -> None:
    zone = hs_tz("New_York")
    t = [dt.datetime(2024, 3, 10, h, tzinfo=zone) for h in range(4)]
    batch = prepare_samples(
        [(t[2], Number(2.0)), (t[0], Number(0.0)), (t[2], Number(2.5)), (t[1], None)]
    )
    assert batch.keys == [to_us(t[0]), to_us(t[2])]
    assert batch.vals == [Number(0.0), Number(2.5)]


@pytest.mark.parametrize("ts", [dt.datetime(2024, 1, 1), "2024-01-01T00:00:00Z"])
def test_a_bad_timestamp_is_refused_by_either_path(ts: object) -> None:
    good = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(StorageError, match="aware DateTime"):
        prepare_samples([(good, Number(1.0)), (ts, Number(2.0))])  # type: ignore[list-item]


def test_keyed_samples_are_taken_as_columns() -> None:
    zone = hs_tz("New_York")
    start = dt.datetime(2024, 3, 10, 5, tzinfo=dt.UTC)  # midnight EST, hours before 3am EDT
    t = [(start + dt.timedelta(hours=h)).astimezone(zone) for h in range(4)]
    keyed = KeyedSamples([to_us(x) for x in t], [1.0, 2.0, 3.0, 4.0], "kW", zone)
    assert len(keyed) == 4 and keyed[1] == (t[1], Number(2.0, "kW"))
    assert keyed[2:] == [(t[2], Number(3.0, "kW")), (t[3], Number(4.0, "kW"))]
    assert keyed[3][0].utcoffset() == t[3].utcoffset()  # across the spring change
    batch = prepare_samples(keyed)
    assert batch.keys == keyed.keys and batch.nums == keyed.nums and batch.unit == "kW"
    assert batch.vals == [Number(v, "kW") for v in (1.0, 2.0, 3.0, 4.0)]
    assert batch[2:].keys == batch.keys[2:] and batch[2:].nums == [3.0, 4.0]
    _same(batch, _general(list(keyed)))


def test_keyed_samples_out_of_order_are_sorted_and_deduplicated() -> None:
    zone = hs_tz("UTC")
    keyed = KeyedSamples([30, 10, 30, 20], [1.0, 2.0, 3.0, 4.0], None, zone)
    batch = prepare_samples(keyed)
    assert batch.keys == [10, 20, 30]
    assert batch.vals == [Number(2.0), Number(4.0), Number(3.0)]  # the last one given wins
    assert batch.nums is None  # the general loop: no float column
    with pytest.raises(ValueError):
        KeyedSamples([1], [], None, zone)
