"""``HisColumns``: a point's history samples as columns, for reads of many samples.

``his_read`` returns a list of ``(datetime, Number)`` tuples: three objects per sample, two of
them tracked by the garbage collector, which for 100,000 samples costs more than reading them
from SQLite (and the collector's full passes also walk every record in memory). A
``HisColumns`` holds the same samples as

- ``times``: ``array('d')`` of epoch seconds, ascending (exact to the microsecond: a float
  resolves ~0.25 µs today, and ``datetime.fromtimestamp`` rounds to the microsecond);
- ``nums``: ``array('d')``, the value of every sample that is a Number in ``unit``;
- ``others``: ``{index: value}`` for the samples that are not (a Bool, a Str, NA, a Number in
  another unit...); ``nums`` holds NaN at those indexes;
- ``tz``: the zone the timestamps are shown in (the point's).

No per-sample object exists until asked for. It is a ``Sequence`` of ``(datetime, value)``
tuples too (built on access), so code written for ``his_read`` works unchanged; an encoder in a
hurry reads the columns: ``datetime.fromtimestamp(t, tz)`` makes a timestamp without any
GC-tracked object, and ``nums`` are bare floats.
"""

from __future__ import annotations

import datetime as dt
import math
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Final, overload

from gateway.haystack.codecs.jsondoc import gc_paused
from gateway.haystack.kinds import Number, Value

if TYPE_CHECKING:
    HisSample = tuple[dt.datetime, Value]

__all__ = ["HisColumns"]

_tuple_new = tuple.__new__
_fromts = dt.datetime.fromtimestamp
_NAN: Final = math.nan


class HisColumns(Sequence["tuple[dt.datetime, Value]"]):
    """Samples as columns (see the module docstring); immutable by convention."""

    __slots__ = ("nums", "others", "times", "tz", "unit")

    def __init__(
        self,
        tz: dt.tzinfo,
        unit: str | None,
        times: array[float],
        nums: array[float],
        others: Mapping[int, Value] | None = None,
    ) -> None:
        if len(times) != len(nums):
            raise ValueError("times and nums must have the same length")
        self.tz = tz
        self.unit = unit
        self.times = times
        self.nums = nums
        self.others: Mapping[int, Value] = others or {}

    @classmethod
    def empty(cls, tz: dt.tzinfo, unit: str | None = None) -> HisColumns:
        """No samples."""
        return cls(tz, unit, array("d"), array("d"))

    def __len__(self) -> int:
        return len(self.times)

    def value(self, i: int) -> Value:
        """The value of sample ``i``."""
        other = self.others.get(i if i >= 0 else i + len(self.times))
        if other is not None:
            return other
        return _tuple_new(Number, (self.nums[i], self.unit))

    def timestamp(self, i: int) -> dt.datetime:
        """The time of sample ``i`` in ``tz``."""
        return _fromts(self.times[i], self.tz)

    @overload
    def __getitem__(self, i: int) -> HisSample: ...
    @overload
    def __getitem__(self, i: slice) -> HisColumns: ...
    def __getitem__(self, i: int | slice) -> HisSample | HisColumns:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self.times))
            if step != 1:
                raise ValueError("HisColumns slices take no step")
            others = {k - start: v for k, v in self.others.items() if start <= k < stop}
            return HisColumns(self.tz, self.unit, self.times[i], self.nums[i], others)
        return (self.timestamp(i), self.value(i))

    def __iter__(self) -> Iterator[HisSample]:
        tz, unit, others = self.tz, self.unit, self.others
        for i, (t, v) in enumerate(zip(self.times, self.nums, strict=True)):
            val = others.get(i) if others else None
            yield (_fromts(t, tz), _tuple_new(Number, (v, unit)) if val is None else val)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HisColumns | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HisColumns({len(self)} samples, unit={self.unit!r}, tz={self.tz!r})"

    def timestamps(self) -> list[dt.datetime]:
        """Every timestamp, in ``tz``."""
        tz = self.tz
        return [_fromts(t, tz) for t in self.times]

    def values(self) -> list[Value]:
        """Every value (Numbers rebuilt with ``unit``)."""
        unit, others = self.unit, self.others
        if not others:
            return [_tuple_new(Number, (v, unit)) for v in self.nums]
        return [
            others[i] if i in others else _tuple_new(Number, (v, unit))
            for i, v in enumerate(self.nums)
        ]

    def samples(self) -> list[HisSample]:
        """The ``his_read`` form: ``[(datetime, value), ...]``."""
        tz, unit, others = self.tz, self.unit, self.others
        # Two new GC-tracked objects per sample and no cycle: the collector would only slow
        # the build down (see gc_paused).
        with gc_paused():
            if not others:
                return [
                    (_fromts(t, tz), _tuple_new(Number, (v, unit)))
                    for t, v in zip(self.times, self.nums, strict=True)
                ]
            return [
                (_fromts(t, tz), others[i] if i in others else _tuple_new(Number, (v, unit)))
                for i, (t, v) in enumerate(zip(self.times, self.nums, strict=True))
            ]

    @classmethod
    def from_samples(cls, samples: Sequence[HisSample], tz: dt.tzinfo) -> HisColumns:
        """Columns of ``(datetime, value)`` samples (the unit of the first Number is kept)."""
        times = array("d")
        nums = array("d")
        others: dict[int, Value] = {}
        unit: str | None = None
        has_unit = False
        for i, (ts, val) in enumerate(samples):
            times.append(ts.timestamp())
            if val.__class__ is Number:
                if not has_unit:
                    unit, has_unit = val[1], True
                if val[1] == unit and val[0] == val[0]:
                    nums.append(val[0])
                    continue
            nums.append(_NAN)
            others[i] = val
        return cls(tz, unit, times, nums, others)
