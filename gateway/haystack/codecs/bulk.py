"""Whole columns at once: floats and date-times formatted in bulk, rows built in bulk.

A 100,000-row history spends most of its encoding time turning numbers and timestamps into
text. One value at a time, that is a ``repr`` plus a loop iteration per float and an
``isoformat`` per timestamp, which looks the zone's offset up again for every value. Here:

- :func:`float_reprs`: one ``orjson.dumps`` of the whole list (Ryu, in C) gives the same
  digits as ``repr``; only where the two spell a float differently (exponents, tiny values,
  NaN and infinities) does ``repr`` run, and then for the whole column;
- :func:`zinc_floats`: the same texts with Zinc's spelling (``20``, not ``20.0``), by one
  ``replace`` over the joined texts;
- :func:`datetime_texts`: date-times that share one zone and are whole seconds are written from
  their wall-clock distance to 1970-01-01 in that zone (one subtraction each, which for equal
  zones ignores the offsets), with the date and the time of day from tables and the UTC offset
  from one ``utcoffset`` per value mapped to its text.

Every function returns exactly what the one-value-at-a-time writers give (the tests compare
them), or ``None`` where its conditions do not hold, and the caller then writes the values one
at a time. The readers' fast paths build their row dicts with :func:`row_builder`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter, sub
from typing import Final, TypeVar

import orjson

__all__ = [
    "datetime_texts",
    "float_reprs",
    "interleave",
    "local_second_texts",
    "offset_text",
    "row_builder",
    "zinc_floats",
]

_HM: Final = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))
_SS: Final = tuple(f"{s:02d}" for s in range(60))
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_days_of: Final = attrgetter("days")
_tzinfo_of: Final = attrgetter("tzinfo")
_micro_of: Final = attrgetter("microsecond")
_datetime_cls: Final = dt.datetime
_T = TypeVar("_T", str, bytes)


def float_reprs(nums: Sequence[float]) -> list[str] | None:
    """``repr`` of every float, or None when one is NaN or infinite.

    orjson and ``repr`` print the same shortest digits; they differ only in when they use an
    exponent (``1e-05`` against ``0.00001``, ``1e-07`` against ``1e-7``) and in NaN and
    infinities (orjson writes ``null``). Any sign of those sends the column through ``repr``.
    """
    if not nums:
        return []
    floats = nums if nums.__class__ is list else list(nums)
    try:
        raw = orjson.dumps(floats)
    except TypeError:
        return None  # not floats after all: the caller writes them one by one
    if b"e" in raw or b"n" in raw or b"0.0000" in raw:
        if not all(map(math.isfinite, floats)):
            return None
        return list(map(repr, floats))
    return raw[1:-1].decode().split(",")


def zinc_floats(nums: Sequence[float], unit: str = "") -> list[str] | None:
    """Zinc texts of finite floats with ``unit`` appended (``20kW``, ``20.5kW``); None when a
    float is NaN or infinite (Zinc writes those without a unit, one at a time)."""
    texts = float_reprs(nums)
    if not texts:
        return texts
    # Every text ends with its ".0" when the float is whole and never has ".0," elsewhere,
    # so one replace over the joined texts strips exactly the ".0" ends.
    joined = (",".join(texts) + ",").replace(".0,", ",")
    if unit:
        joined = joined.replace(",", unit + ",")  # a valid unit holds no comma
    return joined[:-1].split(",")


def offset_text(seconds: int) -> str:
    """``-05:00`` (``+05:30``, ``-04:56:02`` for old local mean times): as ``isoformat``."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return text + f":{secs:02d}" if secs else text


def local_second_texts(wholes: Sequence[int], tail: str) -> list[str]:
    """``YYYY-MM-DDThh:mm:ss`` + ``tail`` for whole local seconds since 1970 (ascending or not)."""
    first_day, last_day = min(wholes) // 86400, max(wholes) // 86400
    dates = [
        dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
        for day in range(first_day, last_day + 1)
    ]
    hm, ss = _HM, _SS
    return [dates[w // 86400 - first_day] + hm[w % 86400 // 60] + ss[w % 60] + tail for w in wholes]


def datetime_texts(
    vals: Sequence[object], suffix: str = "", utc_z: bool = False
) -> list[str] | None:
    """ISO texts with offset of aware date-times, each followed by ``suffix``; ``utc_z``
    writes a zero offset as ``Z``. The texts ``isoformat`` gives, computed in bulk.

    None unless every value is a ``datetime`` (not a subclass) of one zone and a whole second.
    """
    if not vals or set(map(type, vals)) != {_datetime_cls}:
        return None
    zones = set(map(_tzinfo_of, vals))
    if len(zones) != 1 or any(map(_micro_of, vals)):
        return None
    (zone,) = zones
    if zone is None:
        return None
    stamps: Sequence[dt.datetime] = vals  # type: ignore[assignment]
    # Both sides in the same zone: the difference is the wall-clock one (offsets ignored).
    deltas = list(map(sub, stamps, repeat(_datetime_cls(1970, 1, 1, tzinfo=zone))))
    offsets = list(map(_datetime_cls.utcoffset, stamps))
    tails: dict[object, str] = {}
    for off in set(offsets):
        if off is None or off.microseconds:
            return None
        secs = int(off.total_seconds())
        tails[off] = ("Z" if utc_z and secs == 0 else offset_text(secs)) + suffix
    dates = {
        d: dt.date.fromordinal(_EPOCH_ORDINAL + d).isoformat() + "T"
        for d in set(map(_days_of, deltas))
    }
    hm, ss = _HM, _SS
    return [
        dates[d.days] + hm[s // 60] + ss[s % 60] + tails[o]
        for d, o in zip(deltas, offsets, strict=True)
        for s in (d.seconds,)
    ]


def row_builder(names: tuple[str, ...]) -> Callable[..., dict[str, object]]:
    """A function of one argument per column that returns the row dict.

    Generated like the stdlib generates dataclass methods: a dict display builds a row about
    twice as fast as ``dict(zip(names, values))``. The names must be tag names (letters,
    digits and ``_``: the callers check), so the generated source is only names and ``repr``s.
    """
    if not all(name.isidentifier() for name in names):
        raise ValueError(f"not tag names: {names!r}")
    params = ", ".join(f"v{i}" for i in range(len(names)))
    items = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    return eval(f"lambda {params}: {{{items}}}", {})  # type: ignore[no-any-return]


def interleave(pieces: Sequence[_T | list[_T]], count: int) -> _T:
    """The concatenation, row by row, of ``count`` rows: row ``i`` is every piece's ``i``-th
    text, a constant piece (a ``str`` or ``bytes``, not a list) the same in every row.

    The pieces go into one list by slice assignment (no object per row), which one join turns
    into the text. ``count`` must be at least 1.
    """
    width = len(pieces)
    sample = pieces[0]
    empty = (sample[0] if isinstance(sample, list) else sample)[:0]
    out: list[_T] = [empty] * (width * count)
    for index, piece in enumerate(pieces):
        out[index::width] = piece if isinstance(piece, list) else [piece] * count
    return empty.join(out)
