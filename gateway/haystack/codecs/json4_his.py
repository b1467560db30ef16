"""The usual JSON v4 (Hayson) hisWrite request read straight into columns (:class:`HisInput`).

The counterpart of :mod:`zinc_his` for Hayson: a grid with the columns ``ts`` and ``val``
(no column meta) whose every row is ``{"ts": {"_kind": "dateTime", "val": ..., "tz": ...},
"val": Number}`` with one zone and one unit (a Number object, or a bare JSON number when
unitless) becomes a grid of :class:`HisInput` rows, after one orjson parse and column-wide
checks. Anything else gives None, and the general reader reads the document (and reports what
is wrong with it); both give the same samples (a test compares them on generated documents).
"""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, Final

import orjson

from gateway.haystack.codecs.json4 import grid_meta
from gateway.haystack.codecs.jsondoc import Invalid
from gateway.haystack.errors import HaystackError
from gateway.haystack.grid import Grid
from gateway.haystack.hisinput import his_input_grid

__all__ = ["read_his_write"]

_COLS_JSON: Final = [{"name": "ts"}, {"name": "val"}]
_kind = itemgetter("_kind")
_val = itemgetter("val")
_ts = itemgetter("ts")
_tzinfo = attrgetter("tzinfo")


def read_his_write(data: str | bytes) -> Grid | None:
    """The grid of a one-point hisWrite document with :class:`HisInput` rows, or None when
    the document is not of that form (see the module docstring)."""
    try:
        doc = orjson.loads(data)
        return _read(doc)
    except (HaystackError, Invalid, KeyError, TypeError, ValueError, OverflowError):
        return None  # a bad meta, an unknown zone...: the general reader says what is wrong


def _read(doc: Any) -> Grid | None:
    if doc.__class__ is not dict or doc.get("_kind", "grid") != "grid":
        return None
    rows = doc.get("rows")
    if doc.get("cols") != _COLS_JSON or rows.__class__ is not list or not rows:
        return None
    if set(map(type, rows)) != {dict} or set(map(len, rows)) != {2}:
        return None
    stamps = list(map(_ts, rows))
    vals = list(map(_val, rows))
    # The timestamps: dateTime objects with a text and a zone name, one zone for all.
    if set(map(type, stamps)) != {dict} or set(map(_kind, stamps)) != {"dateTime"}:
        return None
    texts = list(map(_val, stamps))
    zones = set(map(dict.get, stamps, repeat("tz")))
    if set(map(type, texts)) != {str} or len(zones) != 1:
        return None
    (tz_name,) = zones
    if tz_name.__class__ is not str:
        return None  # no zone: the spec's GMT, for the general reader
    # The values: Number objects in one unit, or bare JSON numbers.
    types = set(map(type, vals))
    if types == {dict}:
        if set(map(_kind, vals)) != {"number"}:
            return None
        nums = list(map(_val, vals))
        units = set(map(dict.get, vals, repeat("unit")))
        if len(units) != 1:
            return None
        (unit,) = units
        if unit is not None and unit.__class__ is not str:
            return None
    elif types <= {float, int}:
        nums, unit = vals, None
    else:
        return None
    if not {float, int}.issuperset(map(type, nums)):
        return None  # "NaN", "INF", a bool...: the general reader
    # (ValueError for a local time: the general reader places it)
    return his_input_grid(texts, nums, unit, tz_name, grid_meta(doc))
