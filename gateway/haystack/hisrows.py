"""History samples as grid rows without a Python object per sample.

A hisRead of 100,000 samples would build 100,000 datetimes, Numbers and row dicts only for the
codec to turn them straight back into text. ``HisRows`` instead wraps the columns a store
reads (epoch seconds and floats) and is a ``Sequence`` of ``{"ts": ..., "val": ...}`` rows
built on access, so any code can read it as ordinary grid rows, while the Zinc and JSON writers
see the type and write the text directly from the columns (``iso_times`` formats the
timestamps in bulk: one UTC offset per daylight-saving segment, cached date strings).
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, Protocol, TypeVar, overload

from gateway.haystack.codecs.bulk import local_second_texts, offset_text, zinc_floats
from gateway.haystack.codecs.common import format_float
from gateway.haystack.kinds import Number, Value
from gateway.haystack.tz import hs_name

__all__ = ["BuiltOnAccess", "HisRows", "SampleColumns", "chunk_nums", "float_texts", "iso_times"]

_tuple_new = tuple.__new__
_T = TypeVar("_T")
_fromts = dt.datetime.fromtimestamp
# Daylight-saving transitions are months apart: sampling the offset every 6 hours finds each.
_OFFSET_PROBE: Final = 6 * 3600


class SampleColumns(Protocol):
    """What a store hands over: timestamps and values as columns (see storage.hiscolumns)."""

    @property
    def tz(self) -> dt.tzinfo: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def times(self) -> Sequence[float]: ...  # epoch seconds, ascending
    @property
    def nums(self) -> Sequence[float]: ...  # the Number values in ``unit``
    @property
    def others(self) -> Mapping[int, Value]: ...  # index -> any other value


class BuiltOnAccess(Sequence[_T]):
    """A read-only ``Sequence`` over columns whose items are made by ``_item(i)`` when they
    are asked for, and not kept (a subclass gives ``__len__`` and ``_item``)."""

    __slots__ = ()

    def __len__(self) -> int:
        raise NotImplementedError

    def _item(self, i: int) -> _T:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...
    def __getitem__(self, index: int | slice) -> _T | list[_T]:
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._item(index)

    def __iter__(self) -> Iterator[_T]:
        return map(self._item, range(len(self)))


class HisRows(BuiltOnAccess[dict[str, Value]]):
    """The rows ``{"ts", "val"}`` of a history grid, backed by sample columns."""

    __slots__ = ("columns", "tz")

    def __init__(self, columns: SampleColumns, tz: dt.tzinfo | None = None) -> None:
        self.columns = columns
        self.tz = tz or columns.tz

    def __len__(self) -> int:
        return len(self.columns.times)

    def _item(self, i: int) -> dict[str, Value]:
        return {"ts": _fromts(self.columns.times[i], self.tz), "val": self.value(i)}

    def value(self, i: int) -> Value:
        """The value of sample ``i``."""
        other = self.columns.others.get(i)
        if other is not None:
            return other
        return _tuple_new(Number, (self.columns.nums[i], self.columns.unit))

    @property
    def tz_name(self) -> str:
        """The Haystack name of the zone the timestamps are written in."""
        return hs_name(self.tz)


def _offset(t: float, tz: dt.tzinfo) -> int:
    delta = _fromts(t, tz).utcoffset()
    return 0 if delta is None else int(delta.total_seconds())


def _segments(times: Sequence[float], tz: dt.tzinfo) -> list[tuple[int, int]]:
    """``(index, offset)`` pairs: from sample ``index`` on, the UTC offset is ``offset``.

    Samples are taken in windows of 6 hours; a window whose first and last samples share an
    offset holds no transition (transitions are months apart), else the transition second
    is found by bisection. Two offset look-ups per window, however many samples it holds.
    """
    segments: list[tuple[int, int]] = []
    count = len(times)
    i = 0
    while i < count:
        first = times[i]
        j = bisect_right(times, first + _OFFSET_PROBE, i)  # samples i..j-1 in this window
        off_first, off_last = _offset(first, tz), _offset(times[j - 1], tz)
        if not segments or segments[-1][1] != off_first:
            segments.append((i, off_first))
        if off_last != off_first:
            # The change falls on a whole second in (first, last]: find it.
            lo, hi = math.floor(first), math.ceil(times[j - 1])
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(mid, tz) == off_last:
                    hi = mid
                else:
                    lo = mid
            segments.append((bisect_left(times, hi, i, j), off_last))
        i = j
    return segments


def iso_times(times: Sequence[float], tz: dt.tzinfo) -> list[str]:
    """ISO text with offset (no zone name) of epoch times, as shown in ``tz``.

    The same text ``common.format_datetime_iso`` gives for ``datetime.fromtimestamp(t, tz)``.
    """
    if not times:
        return []
    segments = _segments(times, tz)
    utc = hs_name(tz) == "UTC"
    out: list[str] = []
    bounds = [start for start, _ in segments[1:]] + [len(times)]
    index = 0
    for (_, off), end in zip(segments, bounds, strict=True):
        out.extend(_segment_iso(times[index:end], off, "Z" if utc else offset_text(off), tz))
        index = end
    return out


def _segment_iso(times: Sequence[float], off: int, off_text: str, tz: dt.tzinfo) -> list[str]:
    """ISO texts of samples that share one UTC offset."""
    locals_ = [t + off for t in times]
    wholes = list(map(int, locals_))
    if off % 60 or locals_ != wholes:
        # fractions of a second, or an old local-mean-time offset: the exact slow way
        return [_slow_iso(t, tz, off_text == "Z") for t in times]
    return local_second_texts(wholes, off_text)


def _slow_iso(t: float, tz: dt.tzinfo, utc: bool) -> str:
    from gateway.haystack.codecs.common import format_datetime_iso

    value = _fromts(t, tz)
    text = format_datetime_iso(value)
    if utc and text.endswith("+00:00"):
        return text[:-6] + "Z"
    return text


def chunk_nums(
    columns: SampleColumns, lo: int, hi: int, others: list[int]
) -> tuple[Sequence[float], list[int]]:
    """The floats of samples ``lo`` to ``hi``, and which of ``others`` (the sorted indexes of
    the samples that are not Numbers in the unit) fall among them.

    Those samples hold 0.0 here, not the NaN a store keeps in their place: a writer puts
    their own text there, and a NaN would send the whole chunk's floats through the
    one-at-a-time formatting.
    """
    nums = columns.nums[lo:hi]
    inside = others[bisect_left(others, lo) : bisect_left(others, hi)]
    if inside:
        nums = list(nums)
        for i in inside:
            nums[i - lo] = 0.0
    return nums, inside


def float_texts(nums: Sequence[float], unit: str | None) -> list[str]:
    """Zinc-style texts of floats with a unit suffix (``20kW``, ``20.5kW``; NaN without it)."""
    fast = zinc_floats(nums, unit or "")  # every float finite: one orjson pass
    if fast is not None:
        return fast
    texts = list(map(repr, nums))
    suffix = unit or ""
    out = [t[:-2] + suffix if t[-2:] == ".0" else t + suffix for t in texts]
    if not math.isfinite(sum(nums)):
        # some sample is NaN or infinite (a sum that overflowed only costs this loop)
        for i, t in enumerate(texts):
            if t[-1] in "nf":  # nan, inf, -inf take no unit
                out[i] = format_float(nums[i])
    return out
