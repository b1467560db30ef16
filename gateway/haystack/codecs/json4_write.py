"""The JSON v4 (Hayson) writer: ``encode_grid``, ``encode_grid_iter`` and ``encode_val``.

:mod:`gateway.haystack.codecs.json4` re-exports these (it is the module to import). The writer
always writes the top-level ``"_kind":"grid"`` and a DateTime's ``tz`` (phable needs both).
Unitless finite numbers are JSON floats (``72.0``). Null cells are left out of the row objects
(phable cannot read JSON null). Row dicts are handed to the serializer as they are, so a row
cell for a column the grid does not declare is written too.

Speed. The general writer hands the row dicts to orjson, which calls back here (``_default``)
for every value that is not native JSON: about ten calls per row of a point list. Null cells
are found in its output (``"name":null``): only then are the rows written again without them.
Two kinds of large grid are written from whole columns instead:

- a *uniform* grid (:func:`encode_uniform`): every row holds every column, and each column one
  kind written one way (Markers; Strs; Refs all with or all without a display string; finite
  Numbers in one unit; date-times of one zone, whole seconds; Bools). The texts of a column
  come from one ``orjson.dumps`` of its plain values (the ids, the floats...), split apart, and
  the document is one join of every row's pieces and the constant text between them (a column
  whose cells are all equal, such as a run of Markers, is constant text too);
- a history read (:func:`his_body`): the rows of a :class:`HisRows` from its sample columns,
  a slice at a time, so that :func:`encode_grid_iter` streams a long history in chunks.

Both write exactly the general writer's text for the same grid, except that a row's keys come
in column order (the tests compare the two).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from operator import add, is_, itemgetter
from typing import Any, Final

import orjson

from gateway.haystack.codecs.bulk import datetime_texts, interleave
from gateway.haystack.codecs.common import format_datetime_iso, format_time
from gateway.haystack.codecs.jsondoc import dump
from gateway.haystack.errors import HaystackError
from gateway.haystack.grid import Grid
from gateway.haystack.hisrows import HisRows, chunk_nums, iso_times
from gateway.haystack.kinds import (
    MARKER,
    Coord,
    NAType,
    Number,
    Ref,
    RemoveType,
    Symbol,
    Uri,
    Value,
    XStr,
)
from gateway.haystack.tz import UTC, hs_name

__all__ = [
    "MIN_ROWS",
    "encode_grid",
    "encode_grid_iter",
    "encode_uniform",
    "encode_val",
    "his_body",
]

_datetime_cls = dt.datetime

# -- the general writer ----------------------------------------------------------------------

_MARKER_JSON: Final = {"_kind": "marker"}
_NA_JSON: Final = {"_kind": "na"}
_REMOVE_JSON: Final = {"_kind": "remove"}
_SPECIAL_FLOATS: Final = {math.inf: "INF", -math.inf: "-INF"}


def encode_grid(grid: Grid) -> bytes:
    """The grid as Hayson (UTF-8 JSON bytes)."""
    rows = grid.rows
    if type(rows) is HisRows and grid.col_names == ("ts", "val"):
        head = _his_head(grid)
        others = sorted(rows.columns.others)
        text = his_body(rows, 0, len(rows), others, head=head.decode(), tail="]}")
        return text.encode()
    if len(rows) >= MIN_ROWS:
        out = encode_uniform(grid)
        if out is not None:
            return out
    out = dump(_grid_json(grid, strip=False), _default)
    if b":null" in out:
        # A null cell somewhere (or that text inside a string): write again, leaving the
        # null cells out of the rows. Checking the output costs far less than every row.
        out = dump(_grid_json(grid), _default)
    return out


def encode_grid_iter(grid: Grid) -> Iterator[bytes]:
    """The grid as Hayson in UTF-8 chunks; they join to exactly ``encode_grid(grid)``.

    A history read (:class:`HisRows`) comes in chunks of about 64 KiB written from its sample
    columns, so a long history never exists as one document; any other grid in one chunk.
    """
    rows = grid.rows
    if type(rows) is HisRows and grid.col_names == ("ts", "val"):
        yield from _his_chunks(grid, rows)
    else:
        yield encode_grid(grid)


# About 64 KiB of JSON: a history row with a unit is about 120 bytes.
_HIS_CHUNK_ROWS: Final = 540


def _his_chunks(grid: Grid, rows: HisRows) -> Iterator[bytes]:
    """A history grid written straight from its sample columns, a chunk at a time."""
    others = sorted(rows.columns.others)
    yield _his_head(grid)
    step = _HIS_CHUNK_ROWS
    for lo in range(0, len(rows), step):
        yield his_body(rows, lo, min(lo + step, len(rows)), others).encode()
    yield b"]}"


def _his_head(grid: Grid) -> bytes:
    """The document of a grid up to its first row: ``{"_kind":"grid",...,"rows":[``."""
    head = dump(_grid_json(grid.with_rows(())), _default)
    assert head.endswith(b"[]}")
    return head[:-2]


def _dump_val(val: Value) -> bytes:
    return dump(val, _default)


def encode_val(val: Value) -> str:
    """One value as Hayson text."""
    return dump(val, _default).decode("utf-8")


def _default(val: Any) -> Any:
    # Called by orjson for every value that is not native JSON. The frequent kinds are tested
    # first, inline; the rest go through the class table.
    if val is MARKER:
        return _MARKER_JSON
    cls = val.__class__
    if cls is Number:
        v, unit = val
        if unit is None and v - v == 0.0:  # finite: inf - inf and nan - nan are nan
            return v
        return _number_json(v, unit)
    if cls is Ref:
        ref_id, dis = val
        if dis is None:
            return {"_kind": "ref", "val": ref_id}
        return {"_kind": "ref", "val": ref_id, "dis": dis}
    if cls is _datetime_cls and val.microsecond == 0:
        # History timestamps: whole seconds in a named zone (isoformat is then the same text
        # as format_datetime_iso, which also handles fractions and UTC's "Z").
        tz = val.tzinfo
        if tz is not UTC and tz is not None:
            return {"_kind": "dateTime", "val": val.isoformat(), "tz": hs_name(tz)}
    enc = _ENCODERS.get(cls)
    if enc is None:
        return _default_subclass(val)
    return enc(val)


def _number_json(v: float, unit: str | None) -> dict[str, Any]:
    if v - v != 0.0:
        text = "NaN" if v != v else _SPECIAL_FLOATS[v]
        return (
            {"_kind": "number", "val": text, "unit": unit}
            if unit
            else {"_kind": "number", "val": text}
        )
    return {"_kind": "number", "val": v, "unit": unit}


def _datetime_json(val: dt.datetime) -> dict[str, Any]:
    return {"_kind": "dateTime", "val": format_datetime_iso(val), "tz": hs_name(val.tzinfo)}


def _grid_json(grid: Grid, *, strip: bool = True) -> dict[str, Any]:
    meta = {"ver": "3.0"}
    meta.update((k, v) for k, v in grid.meta.items() if v is not None and k != "ver")
    cols: list[dict[str, Any]] = []
    for col in grid.cols:
        if col.meta:
            cols.append(
                {"name": col.name, "meta": {k: v for k, v in col.meta.items() if v is not None}}
            )
        else:
            cols.append({"name": col.name})
    # Null cells are left out of the row objects (``strip``): Hayson allows null, but some
    # clients (phable 0.1.29) cannot read it, and an absent key means the same thing. The
    # test is by identity: ``None in row.values()`` would call a Ref's or Number's __eq__.
    rows: Sequence[dict[str, Value]] = grid.rows
    if strip:
        rows = [
            {k: v for k, v in row.items() if v is not None}
            if any(map(is_, row.values(), repeat(None)))
            else row
            for row in rows
        ]
    return {"_kind": "grid", "meta": meta, "cols": cols, "rows": rows}


def _default_subclass(val: Any) -> Any:
    # Subclasses of the stdlib kinds (a datetime subclass from another library...).
    if isinstance(val, dt.datetime):
        return _datetime_json(val)
    if isinstance(val, dt.date):
        return {"_kind": "date", "val": val.isoformat()}
    if isinstance(val, dt.time):
        return {"_kind": "time", "val": format_time(val)}
    if isinstance(val, Grid):
        return _grid_json(val)
    raise TypeError(f"not a Haystack value: {val.__class__.__name__}")


_ENCODERS: Final[dict[type, Callable[[Any], Any]]] = {
    NAType: lambda _: _NA_JSON,
    RemoveType: lambda _: _REMOVE_JSON,
    dt.datetime: _datetime_json,
    dt.date: lambda v: {"_kind": "date", "val": v.isoformat()},
    dt.time: lambda v: {"_kind": "time", "val": format_time(v)},
    Uri: lambda v: {"_kind": "uri", "val": v[0]},
    Symbol: lambda v: {"_kind": "symbol", "val": v[0]},
    Coord: lambda v: {"_kind": "coord", "lat": v[0], "lng": v[1]},
    XStr: lambda v: {"_kind": "xstr", "type": v[0], "val": v[1]},
    Grid: _grid_json,
    # Mappings that are not dicts (a grid's meta view, say) are written as objects.
    type(Grid().meta): dict,
}


# -- uniform grids ---------------------------------------------------------------------------

#: Below this many rows the general writer is as fast.
MIN_ROWS: Final = 16

_first: Final = itemgetter(0)
_second: Final = itemgetter(1)
_NONFINITE_TEXT: Final = {"nan": '"NaN"', "inf": '"INF"', "-inf": '"-INF"'}

# A column's text: constant bytes and lists of per-row bytes, in order.
_Parts = list[bytes | list[bytes]]


def _json(val: Any) -> str:
    return orjson.dumps(val).decode()


def encode_uniform(grid: Grid, head: bytes | None = None) -> bytes | None:
    """The document of a uniform grid, given ``head`` (the document of the same grid without
    rows, ending ``[]}``; written here when not given); None when the grid is not uniform."""
    rows = grid.rows
    names = grid.col_names
    count = len(rows)
    if count < MIN_ROWS or not names or set(map(len, rows)) != {len(names)}:
        return None  # (before the head is written: the usual answer for a sparse grid)
    if head is None:
        head = dump(_grid_json(grid.with_rows(())), _default)
    pieces: list[bytes | list[bytes]] = []
    const = b"{"
    for index, name in enumerate(names):
        try:
            # Every row has as many keys as there are columns and each column's name: the
            # rows hold exactly the columns.
            col = list(map(itemgetter(name), rows))
        except KeyError:
            return None
        parts = _column(col, count)
        if parts is None:
            return None
        const += (b"," if index else b"") + orjson.dumps(name) + b":"
        for part in parts:
            if isinstance(part, bytes):
                const += part
            else:
                pieces += [const, part]
                const = b""
    last = const + b"}"
    if not pieces:  # no column varies: every row the same
        return b"".join((head[:-3], b"[", b",".join(repeat(last, count)), b"]}"))
    first = pieces[0]
    assert isinstance(first, bytes)
    # The document's head before the first row, a comma before each other row, the end of
    # the document after the last: one join writes the whole document.
    pieces[0] = [head[:-3] + b"[" + first] + [b"," + first] * (count - 1)
    pieces.append([last] * (count - 1) + [last + b"]}"])
    return interleave(pieces, count)


def _column(col: list[Value], count: int) -> _Parts | None:
    """The parts of a column whose cells are all one kind written one way, else None."""
    if col[0] is MARKER:
        # Identity first: no __eq__ call on a marker column.
        return [b'{"_kind":"marker"}'] if col.count(MARKER) == count else None
    cls = col[0].__class__
    writer = _COLUMN_WRITERS.get(cls)
    # (counting in a list of the classes is quicker than a set of them)
    if writer is None or list(map(type, col)).count(cls) != count:
        return None
    try:
        return writer(col, count)
    except (orjson.JSONEncodeError, HaystackError):
        return None  # the general writer raises the error


def _strs(vals: list[Any]) -> list[bytes]:
    """The JSON texts of strings, without their quotes: orjson's, split at ``","`` (inside
    a JSON string a quote is always escaped, so that sequence only separates two strings)."""
    return orjson.dumps(vals)[2:-2].split(b'","')


def _col_str(col: list[Value], count: int) -> _Parts:
    if col.count(col[0]) == count:
        return [orjson.dumps(col[0])]
    return [b'"', _strs(col), b'"']


def _col_bool(col: list[Value], count: int) -> _Parts:
    texts = orjson.dumps(col)[1:-1].split(b",")
    return [texts[0]] if col.count(col[0]) == count else [texts]


def _col_ref(col: list[Value], count: int) -> _Parts | None:
    ids = _strs(list(map(_first, col)))
    dises = list(map(_second, col))
    no_dis = dises.count(None)
    if no_dis == count:
        return [b'{"_kind":"ref","val":"', ids, b'"}']
    if no_dis:
        return None
    return [b'{"_kind":"ref","val":"', ids, b'","dis":"', _strs(dises), b'"}']


def _col_number(col: list[Value], count: int) -> _Parts | None:
    units = set(map(_second, col))
    if len(units) != 1:
        return None
    raw = orjson.dumps(list(map(_first, col)))
    if b"n" in raw:  # null: NaN or an infinity, written as a string
        return None
    texts = raw[1:-1].split(b",")
    unit = units.pop()
    if unit is None:
        return [texts]
    return [b'{"_kind":"number","val":', texts, b',"unit":' + orjson.dumps(unit) + b"}"]


def _col_datetime(col: list[Value], count: int) -> _Parts | None:
    zone = col[0].tzinfo
    texts = datetime_texts(col, utc_z=zone is UTC)
    if texts is None:
        return None
    tail = b'","tz":' + orjson.dumps(hs_name(zone)) + b"}"
    # ASCII texts without newlines: encoded at once, split again.
    return [b'{"_kind":"dateTime","val":"', "\n".join(texts).encode().split(b"\n"), tail]


_COLUMN_WRITERS: Final[dict[type, Callable[[list[Value], int], _Parts | None]]] = {
    str: _col_str,
    bool: _col_bool,
    Ref: _col_ref,
    Number: _col_number,
    dt.datetime: _col_datetime,
}


def his_body(
    rows: HisRows,
    lo: int,
    hi: int,
    others: list[int],
    *,
    head: str = "",
    tail: str = "",
) -> str:
    """The row objects of samples ``lo`` to ``hi`` of a history, each but the document's
    first (``lo == 0``) after a comma; ``head`` before the first, ``tail`` after the last.

    ``others`` are the sorted indexes of the samples that are not Numbers in the unit, written
    by the general writer.
    """
    count = hi - lo
    if count <= 0:
        return head + tail
    columns = rows.columns
    nums, inside = chunk_nums(columns, lo, hi, others)
    texts = _float_json(nums)
    unit = columns.unit
    # Each value with the text before it: a null sample leaves "val" out of its row.
    if unit is None:
        vals = [
            ',"val":' + (t if t[-1].isdigit() else '{"_kind":"number","val":' + t + "}")
            for t in texts
        ]
    else:
        pre, post = ',"val":{"_kind":"number","val":', ',"unit":' + _json(unit) + "}"
        vals = list(map(add, map(add, repeat(pre), texts), repeat(post)))
    for i in inside:
        other = columns.others[i]
        vals[i - lo] = "" if other is None else ',"val":' + _dump_val(other).decode()
    times = iso_times(columns.times[lo:hi], rows.tz)
    row_head = '{"ts":{"_kind":"dateTime","val":"'
    heads = [head + ("" if lo == 0 else ",") + row_head] + ["," + row_head] * (count - 1)
    tails = ["}"] * (count - 1) + ["}" + tail]
    ts_tail = '","tz":' + _json(rows.tz_name) + "}"
    pieces: list[str | list[str]] = [heads, times, ts_tail, vals, tails]
    return interleave(pieces, count)


def _float_json(nums: Sequence[float]) -> list[str]:
    """orjson's text of each float (what the general writer writes), NaN and infinities as
    their Hayson strings (``"NaN"``, with the quotes)."""
    if not nums:
        return []
    floats = list(nums)
    raw = orjson.dumps(floats)
    texts = raw[1:-1].decode().split(",")
    if b"n" in raw:  # orjson's null: NaN or an infinity
        for i, text in enumerate(texts):
            if text == "null":
                texts[i] = _NONFINITE_TEXT[repr(floats[i])]
    return texts
