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
from collections.abc import Mapping, Sequence
from itertools import repeat
from operator import attrgetter, floordiv, itemgetter, sub
from typing import Final, TypeVar

from gateway.haystack.grid import Col, Grid
from gateway.haystack.hisrows import BuiltOnAccess
from gateway.haystack.kinds import Number, Value
from gateway.haystack.tz import hs_name, hs_tz

__all__ = [
    "HisInput",
    "KeyedNumbers",
    "NumberColumn",
    "his_input_grid",
    "keys_of",
    "keys_of_iso",
    "to_key",
]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US: Final = dt.timedelta(microseconds=1)
_tuple_new = tuple.__new__
_T = TypeVar("_T")
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


class NumberColumn(BuiltOnAccess[Value]):
    """Floats in one unit as a ``Sequence`` of Numbers, each made when asked for."""

    __slots__ = ("nums", "unit")

    def __init__(self, nums: Sequence[float], unit: str | None) -> None:
        self.nums = nums
        self.unit = unit

    def __len__(self) -> int:
        return len(self.nums)

    def _item(self, i: int) -> Value:
        return _tuple_new(Number, (self.nums[i], self.unit))

    def __eq__(self, other: object) -> bool:
        # Equal to any sequence of the same values, as the list it stands for would be.
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # (a mutable-looking sequence, as a list)


class KeyedNumbers(BuiltOnAccess[_T]):
    """Numbers in one unit at exact instants, held as columns: ``keys`` (microseconds since
    the epoch, as :func:`to_key` gives them), ``nums`` (the floats, in ``unit``) and ``tz``
    (the zone the instants are shown in). A subclass says what one item is (``_item``)."""

    __slots__ = ("keys", "nums", "tz", "unit")

    def __init__(self, keys: list[int], nums: list[float], unit: str | None, tz: dt.tzinfo):
        if len(keys) != len(nums):
            raise ValueError("keys and nums must have the same length")
        self.keys = keys
        self.nums = nums
        self.unit = unit
        self.tz = tz

    def __len__(self) -> int:
        return len(self.keys)

    def instant(self, i: int) -> dt.datetime:
        """The timestamp of item ``i``, in ``tz`` (exact to the microsecond)."""
        return (_EPOCH + self.keys[i] * _US).astimezone(self.tz)

    @property
    def values(self) -> NumberColumn:
        """The values as a column of Numbers made on access."""
        return NumberColumn(self.nums, self.unit)

    def numbers(self) -> list[Value]:
        """The values as Numbers (one tuple each: no row is built)."""
        return list(self.values)


class HisInput(KeyedNumbers[dict[str, Value]]):
    """Rows ``{"ts": DateTime, "val": Number}`` of a hisWrite request, held as columns.

    The ``keys`` are in request order; ``tz`` is the zone every timestamp was given in.
    """

    __slots__ = ()

    @property
    def tz_name(self) -> str:
        """The Haystack name of ``tz``."""
        return hs_name(self.tz)

    def _item(self, i: int) -> dict[str, Value]:
        return {"ts": self.instant(i), "val": _tuple_new(Number, (self.nums[i], self.unit))}

    def __repr__(self) -> str:
        return f"HisInput({len(self)} samples, {self.tz_name}, unit={self.unit!r})"


_COLS: Final = (Col("ts"), Col("val"))
# Instants a conversion to any zone cannot take out of range (others: the general reader).
_FIRST_KEY: Final = to_key(dt.datetime(1900, 1, 1, tzinfo=dt.UTC))
_LAST_KEY: Final = to_key(dt.datetime(2200, 1, 1, tzinfo=dt.UTC))


def his_input_grid(
    texts: list[str],
    nums: Sequence[float | int | str],
    unit: str | None,
    tz_name: str,
    meta: Mapping[str, Value],
) -> Grid | None:
    """The grid a codec's hisWrite reader gives: :class:`HisInput` rows made of ISO date-time
    ``texts`` (with their offsets) in zone ``tz_name`` and the numbers ``nums`` in ``unit``.

    None when an instant lies outside 1900-2200 (the general reader takes those); ValueError
    or HaystackError (an unknown zone) when the texts or numbers cannot be read.
    """
    keys = keys_of_iso(texts)
    if min(keys) < _FIRST_KEY or max(keys) >= _LAST_KEY:
        return None
    his = HisInput(keys, list(map(float, nums)), unit or None, hs_tz(tz_name))
    return Grid(_COLS, his, meta)
