"""History samples: time keys, batch preparation, and the in-memory history of ``memory.py``.

Both adapters key a sample by its instant in integer microseconds since the epoch (exact for
every ``datetime``; the zone does not matter for ordering) and return timestamps in the zone of
the latest write to the point, which the ops layer has checked to be the point's ``tz``.

A batch to write is prepared once (:func:`prepare_samples`): null values skipped, one sample per
instant with the last one given winning, sorted. Numbers are kept compactly: a point's samples
share one unit (the first Number written sets it), so a sample is stored as a bare float and
becomes a ``Number`` again on read; a sample in another unit, or of another kind, is kept as is.
"""

from __future__ import annotations

import datetime as dt
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter, itemgetter, lt
from typing import Final

from gateway.haystack.codecs.jsondoc import gc_paused
from gateway.haystack.hisinput import KeyedNumbers, keys_of, to_key
from gateway.haystack.kinds import Coord, NAType, Number, Value
from gateway.storage.base import HisSample, StorageError
from gateway.storage.hiscolumns import HisColumns
from gateway.storage.index import check_value

__all__ = [
    "MAX_US",
    "MIN_US",
    "KeyedSamples",
    "MemoryHistory",
    "PreparedSamples",
    "bound_us",
    "from_us",
    "prepare_samples",
    "to_us",
]

#: Bounds of the keys (SQLite's INTEGER range); an open range end maps to them.
MIN_US: Final = -(2**63)
MAX_US: Final = 2**63 - 1
_tuple_new = tuple.__new__
# The kinds a history holds (Haxall's); any other Haystack value is accepted but checked.
_HIS_KINDS: Final = frozenset({Number, bool, str, Coord, NAType})
_fromts = dt.datetime.fromtimestamp
_first = itemgetter(0)
_second = itemgetter(1)
_tzinfo = attrgetter("tzinfo")
_NAN: Final = float("nan")
# Inserting one by one (memmove) beats rebuilding the tail for batches up to this size.
_SMALL_BATCH: Final = 64


#: The key of an aware timestamp: microseconds since 1970-01-01T00:00Z (exact).
to_us = to_key


def from_us(us: int, tz: dt.tzinfo) -> dt.datetime:
    """The timestamp of a key, in ``tz``."""
    return _fromts(us / 1e6, tz)


def bound_us(ts: dt.datetime | None, default: int) -> int:
    """The key of a range end (``default`` when open); refuses naive times."""
    if ts is None:
        return default
    if not isinstance(ts, dt.datetime) or ts.tzinfo is None:
        raise StorageError("a history range needs aware DateTimes")
    return to_us(ts)


@dataclass(slots=True)
class PreparedSamples:
    """A batch ready to store: sorted distinct keys, their values, the batch's zone."""

    keys: list[int]
    vals: Sequence[Value]  # (a list, or a NumberColumn made on access)
    tz: dt.tzinfo | None
    # When every value is a Number in one unit: their floats, and that unit (a store may
    # take the column instead of looking at each value).
    nums: list[float] | None = None
    unit: str | None = None

    def __getitem__(self, index: slice) -> PreparedSamples:
        """The samples of a slice (of the keys)."""
        nums = None if self.nums is None else self.nums[index]
        return PreparedSamples(self.keys[index], self.vals[index], self.tz, nums, self.unit)


class KeyedSamples(KeyedNumbers[HisSample]):
    """Numbers in one unit given as exact time keys and floats (a hisWrite read as columns,
    :class:`gateway.haystack.hisinput.HisInput`): :func:`prepare_samples` takes the columns as
    they are. A ``Sequence`` of ``(datetime, Number)`` built on access for any other store."""

    __slots__ = ()

    def _item(self, i: int) -> HisSample:
        return self.instant(i), _tuple_new(Number, (self.nums[i], self.unit))


def prepare_samples(samples: Iterable[HisSample]) -> PreparedSamples:
    """Skip nulls, keep the last sample of each instant, sort by time."""
    if isinstance(samples, KeyedSamples) and samples.keys:
        keys = samples.keys
        if all(map(lt, keys, islice(keys, 1, None))):
            nums = list(samples.nums)
            return PreparedSamples(list(keys), samples.values, samples.tz, nums, samples.unit)
    if isinstance(samples, list) and len(samples) > 1:
        fast = _prepare_in_order(samples)
        if fast is not None:
            return fast
    by_key: dict[int, Value] = {}
    tz: dt.tzinfo | None = None
    for sample in samples:
        ts, val = sample
        if val is None:
            continue
        if not isinstance(ts, dt.datetime) or ts.tzinfo is None:
            raise StorageError(f"a history timestamp must be an aware DateTime, not {ts!r}")
        if val.__class__ not in _HIS_KINDS:
            check_value("val", val)
        by_key[to_us(ts)] = val
        tz = ts.tzinfo
    keys = sorted(by_key)
    return PreparedSamples(keys, [by_key[k] for k in keys], tz)


def _prepare_in_order(samples: list[HisSample]) -> PreparedSamples | None:
    """:func:`prepare_samples` for the usual batch, column by column in C: aware DateTimes
    in strictly ascending order, no null, only the kinds a history holds. None when the
    batch is anything else (the general loop then sorts, de-duplicates and names the
    offending sample)."""
    times = list(map(_first, samples))
    vals = list(map(_second, samples))
    if set(map(type, times)) != {dt.datetime} or not _HIS_KINDS.issuperset(map(type, vals)):
        return None
    if None in set(map(_tzinfo, times)):
        return None
    keys = keys_of(times)  # to_us in bulk
    if not all(map(lt, keys, islice(keys, 1, None))):
        return None
    return PreparedSamples(keys, vals, times[-1].tzinfo)


@dataclass(slots=True)
class _Series:
    """One point's samples: keys ascending, values as floats (series unit) or as given."""

    tz: dt.tzinfo
    unit: str | None = None
    has_unit: bool = False
    keys: array[int] = field(default_factory=lambda: array("q"))
    vals: list[Value] = field(default_factory=list)

    def encode(self, val: Value) -> Value:
        if val.__class__ is Number:
            if not self.has_unit:
                self.unit, self.has_unit = val[1], True
            if val[1] == self.unit:
                return val[0]
        return val


class MemoryHistory:
    """Samples of every point, in memory (the history of ``InMemoryAdapter``)."""

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def write(self, key: str, batch: PreparedSamples) -> None:
        """Store a prepared batch for a point."""
        if not batch.keys or batch.tz is None:
            return
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(batch.tz)
        series.tz = batch.tz
        vals = [series.encode(v) for v in batch.vals]
        keys = series.keys
        if not keys or batch.keys[0] > keys[-1]:
            keys.extend(batch.keys)
            series.vals.extend(vals)
        elif len(batch.keys) <= _SMALL_BATCH:
            for k, v in zip(batch.keys, vals, strict=True):
                i = bisect_left(keys, k)
                if i < len(keys) and keys[i] == k:
                    series.vals[i] = v
                else:
                    keys.insert(i, k)
                    series.vals.insert(i, v)
        else:
            i = bisect_left(keys, batch.keys[0])
            merged = dict(zip(keys[i:], series.vals[i:], strict=True))
            merged.update(zip(batch.keys, vals, strict=True))
            tail = sorted(merged)
            del keys[i:]
            del series.vals[i:]
            keys.extend(tail)
            series.vals.extend(merged[k] for k in tail)

    def read(self, key: str, start: int, end: int) -> list[HisSample]:
        """Samples with ``start <= key < end``, ordered."""
        series = self._series.get(key)
        if series is None:
            return []
        keys = series.keys
        i = bisect_left(keys, start)
        j = bisect_left(keys, end, i)
        tz = series.tz
        unit = series.unit
        with gc_paused():  # many new acyclic tuples: see HisColumns.samples
            return [
                (_fromts(k / 1e6, tz), _tuple_new(Number, (v, unit)) if v.__class__ is float else v)
                for k, v in zip(keys[i:j], series.vals[i:j], strict=True)
            ]

    def columns(self, key: str, start: int, end: int) -> HisColumns | None:
        """Samples with ``start <= key < end`` as columns; None without any history."""
        series = self._series.get(key)
        if series is None:
            return None
        keys = series.keys
        i = bisect_left(keys, start)
        j = bisect_left(keys, end, i)
        vals = series.vals[i:j]
        others = {n: v for n, v in enumerate(vals) if v.__class__ is not float}
        nums = array("d", [_NAN if n in others else v for n, v in enumerate(vals)])
        times = array("d", [k / 1e6 for k in keys[i:j]])
        return HisColumns(series.tz, series.unit, times, nums, others)

    def span(self, key: str) -> tuple[dt.datetime, dt.datetime] | None:
        """The first and last sample times, or None."""
        series = self._series.get(key)
        if series is None or not series.keys:
            return None
        return from_us(series.keys[0], series.tz), from_us(series.keys[-1], series.tz)

    def remove(self, keys: Sequence[str]) -> None:
        """Forget the history of points."""
        for key in keys:
            self._series.pop(key, None)

    def count(self, key: str) -> int:
        """How many samples a point has."""
        series = self._series.get(key)
        return 0 if series is None else len(series.keys)
