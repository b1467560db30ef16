"""The samples of a hisWrite request as columns: exact time keys and floats, no row objects.

A hisWrite of 1,000 samples read row by row is 1,000 datetimes, Numbers and row dicts, which
the store then turns straight back into integer keys and floats. A codec that recognises the
usual request (one point, every row a DateTime in one zone and a Number in one unit) hands
over :class:`HisInput` instead: the rows as columns, with the keys already exact. It is a
``Sequence`` of ``{"ts", "val"}`` rows built on access, so code that reads the grid's rows
(an ops subclass, an error message naming a row) sees ordinary rows; the history op sees the
type and takes the columns.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import attrgetter, floordiv, itemgetter, sub
from typing import Final, overload

from gateway.haystack.kinds import Number, Value

__all__ = ["HisInput", "keys_of", "keys_of_iso", "to_key"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US: Final = dt.timedelta(microseconds=1)
_tuple_new = tuple.__new__
_NAIVE_EPOCH: Final = dt.datetime(1970, 1, 1)
_fromisoformat = dt.datetime.fromisoformat
_tzinfo = attrgetter("tzinfo")
_WALL_PART = itemgetter(slice(0, 19))  # 2024-03-01T00:00:00
_OFFSET_PART = itemgetter(slice(19, None))  # +01:00
_OFFSET_RE: Final = re.compile(r"[+-][0-9]{2}:[0-9]{2}")


def to_key(ts: dt.datetime) -> int:
    """The key of an aware timestamp: microseconds since 1970-01-01T00:00Z (exact)."""
    return (ts - _EPOCH) // _US


def keys_of(stamps: list[dt.datetime]) -> list[int]:
    """:func:`to_key` of aware timestamps, without a Python frame per timestamp."""
    return list(map(floordiv, map(sub, stamps, repeat(_EPOCH)), repeat(_US)))


def keys_of_iso(texts: list[str]) -> list[int]:
    """The keys of ISO date-times with a UTC offset (``2024-03-01T00:00:00+01:00``, what
    ``datetime.fromisoformat`` reads); ValueError for one without an offset or malformed.

    Whole seconds with a ``±hh:mm`` offset (the usual request) are read as local wall times
    plus a few distinct offsets: aware arithmetic would ask each timestamp for its offset.
    """
    if set(map(len, texts)) == {25}:
        offsets = list(map(_OFFSET_PART, texts))
        by_text = {text: _offset_us(text) for text in set(offsets)}
        if None not in by_text.values():
            walls = map(_fromisoformat, map(_WALL_PART, texts))
            since = map(floordiv, map(sub, walls, repeat(_NAIVE_EPOCH)), repeat(_US))
            return list(map(sub, since, map(by_text.__getitem__, offsets)))
    stamps = list(map(_fromisoformat, texts))
    if None in set(map(_tzinfo, stamps)):
        raise ValueError("a date-time without a UTC offset")
    return keys_of(stamps)


def _offset_us(text: str) -> int | None:
    """Microseconds east of UTC of an offset ``±hh:mm``; None for anything else."""
    if _OFFSET_RE.fullmatch(text) is None:
        return None
    offset = _fromisoformat("2000-01-01T00:00:00" + text).utcoffset()
    return None if offset is None else offset // _US


class HisInput(Sequence[dict[str, Value]]):
    """Rows ``{"ts": DateTime, "val": Number}`` held as columns.

    ``keys`` are the instants in microseconds since the epoch (as :func:`to_key` gives them),
    in request order; ``nums`` the values, all in ``unit``; ``tz`` the zone every timestamp
    was given in (``tz_name`` its Haystack name).
    """

    __slots__ = ("keys", "nums", "tz", "tz_name", "unit")

    def __init__(
        self, keys: list[int], nums: list[float], unit: str | None, tz: dt.tzinfo, tz_name: str
    ) -> None:
        if len(keys) != len(nums):
            raise ValueError("keys and nums must have the same length")
        self.keys = keys
        self.nums = nums
        self.unit = unit
        self.tz = tz
        self.tz_name = tz_name

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> dict[str, Value]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Value]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Value] | list[dict[str, Value]]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("hisWrite row index out of range")
        return self._row(index)

    def __iter__(self) -> Iterator[dict[str, Value]]:
        for i in range(len(self)):
            yield self._row(i)

    def _row(self, i: int) -> dict[str, Value]:
        ts = (_EPOCH + self.keys[i] * _US).astimezone(self.tz)
        return {"ts": ts, "val": _tuple_new(Number, (self.nums[i], self.unit))}

    def numbers(self) -> list[Number]:
        """The values as Numbers (one tuple each: no row is built)."""
        unit = self.unit
        return [_tuple_new(Number, (num, unit)) for num in self.nums]

    def __repr__(self) -> str:
        return f"HisInput({len(self)} samples, {self.tz_name}, unit={self.unit!r})"
