"""The Zinc writer: ``encode_grid``, ``encode_grid_iter`` and ``encode_val``.

:mod:`gateway.haystack.codecs.zinc` re-exports these (it is the module to import). Dicts are
written space-separated and strings escape ``$`` so that older readers (hszinc) read what we
write.

Speed: a grid is written column by column. Most columns hold one kind, and a column of one kind
is written in bulk (:mod:`bulk`: numbers through one ``orjson.dumps``, date-times from their
wall-clock seconds) or with one comprehension; any other column goes value by value through
``encode_val``. Every path writes the same text for the same value. A grid of a few rows
(a read by id, a watch poll of one record) skips the column machinery; a large grid whose rows
lack some columns (a watch of points of several kinds) is written a group of rows with the same
tags at a time, so that each group's columns are full. A history read
(:class:`HisRows`) is written straight from its sample columns, and ``encode_grid_iter`` writes
any grid in chunks of about 64 KiB, so a long history never has to exist as one string.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import add, itemgetter
from typing import Any, Final

from gateway.haystack.codecs.bulk import datetime_texts, interleave, zinc_floats
from gateway.haystack.codecs.common import format_datetime_iso, format_float, format_time
from gateway.haystack.errors import HaystackError
from gateway.haystack.grid import Col, Grid
from gateway.haystack.hisrows import HisRows, chunk_nums, float_texts, iso_times
from gateway.haystack.kinds import (
    MARKER,
    Coord,
    Marker,
    NAType,
    Number,
    Ref,
    RemoveType,
    Symbol,
    Uri,
    Value,
    XStr,
)
from gateway.haystack.tz import hs_name

__all__ = ["ID_RE", "NAME_RE", "UNIT_CHARS", "encode_grid", "encode_grid_iter", "encode_val"]

NAME_RE: Final = re.compile(r"[a-z][a-zA-Z0-9_]*")
ID_RE: Final = re.compile(r"[A-Za-z0-9_:\-.~]+")
# Unit characters: letters, % _ / $ and anything above 127 (°, ², ³, µ, Ω...).
UNIT_CHARS: Final = r"A-Za-z%_/$\u0080-\U0010ffff"
_UNIT_RE: Final = re.compile(rf"[{UNIT_CHARS}][{UNIT_CHARS}0-9]*\Z")

_STR_SPECIAL_RE: Final = re.compile(r'[\x00-\x1f"\\$\x7f\u2028\u2029]')
_STR_ESCAPE_MAP: Final = {
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    '"': '\\"',
    "\\": "\\\\",
    "$": "\\$",
}
_URI_SPECIAL_RE: Final = re.compile(r"[`\x00-\x1f\\]")
_valid_units: dict[str, bool] = {}
_first: Final = itemgetter(0)
_second: Final = itemgetter(1)

#: A chunk of ``encode_grid_iter`` holds about this many characters.
CHUNK_CHARS: Final = 64 * 1024
#: Grids of at most this many rows are written row by row.
_FEW_ROWS: Final = 4
#: A sparse grid of at least this many rows is written one group of rows of the same tags
#: at a time, unless its rows come in more than ``_MAX_SHAPES`` different sets of tags or
#: its groups average under ``_MIN_GROUP`` rows (a group's columns then cost more than the
#: cells they save: measured on reads of 100 points of ten kinds).
_GROUP_MIN_ROWS: Final = 128
_MAX_SHAPES: Final = 24
_MIN_GROUP: Final = 24


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    rep = _STR_ESCAPE_MAP.get(ch)
    return rep if rep is not None else f"\\u{ord(ch):04x}"


def _enc_str(val: str) -> str:
    if _STR_SPECIAL_RE.search(val) is None:
        return '"' + val + '"'
    return '"' + _STR_SPECIAL_RE.sub(_escape_char, val) + '"'


def _unit_ok(unit: str) -> bool:
    ok = _valid_units.get(unit)
    if ok is None:
        ok = _valid_units[unit] = _UNIT_RE.match(unit) is not None
    return ok


def _enc_number(val: Number) -> str:
    v, unit = val
    if unit is None:
        return format_float(v)
    if not _unit_ok(unit):
        raise ValueError(f"unit {unit!r} cannot be written in Zinc")
    if v != v or v in (math.inf, -math.inf):
        return format_float(v)  # INF/NaN take no unit in Zinc
    return format_float(v) + unit


def _enc_ref(val: Ref) -> str:
    ref_id, dis = val
    if ID_RE.fullmatch(ref_id) is None:
        raise ValueError(f"invalid ref id {ref_id!r}")
    if dis is None:
        return "@" + ref_id
    return "@" + ref_id + " " + _enc_str(dis)


def _enc_uri(val: Uri) -> str:
    text = val[0]
    if _URI_SPECIAL_RE.search(text) is None:
        return "`" + text + "`"
    out: list[str] = []
    for ch in text:
        if ch in "`\\":
            out.append("\\" + ch)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "`" + "".join(out) + "`"


def _enc_symbol(val: Symbol) -> str:
    if ID_RE.fullmatch(val[0]) is None:
        raise ValueError(f"invalid symbol {val[0]!r}")
    return "^" + val[0]


def _enc_datetime(val: dt.datetime) -> str:
    return format_datetime_iso(val) + " " + hs_name(val.tzinfo)


def _enc_date(val: dt.date) -> str:
    return val.isoformat()


def _enc_coord(val: Coord) -> str:
    return f"C({format_float(val[0])},{format_float(val[1])})"


def _enc_xstr(val: XStr) -> str:
    return val[0] + "(" + _enc_str(val[1]) + ")"


def _enc_list(val: list[Value]) -> str:
    return "[" + ",".join([encode_val(v) for v in val]) + "]"


def _enc_dict(val: Mapping[str, Value]) -> str:
    return "{" + _enc_meta(val) + "}"


def _enc_grid(val: Grid) -> str:
    return "<<\n" + encode_grid(val) + ">>"


def _enc_bool(val: bool) -> str:
    return "T" if val else "F"


_ENCODERS: Final[dict[type, Callable[[Any], str]]] = {
    str: _enc_str,
    Number: _enc_number,
    Ref: _enc_ref,
    Marker: lambda _: "M",
    NAType: lambda _: "NA",
    RemoveType: lambda _: "R",
    bool: _enc_bool,
    dt.datetime: _enc_datetime,
    dt.date: _enc_date,
    dt.time: format_time,
    Uri: _enc_uri,
    Symbol: _enc_symbol,
    Coord: _enc_coord,
    XStr: _enc_xstr,
    list: _enc_list,
    dict: _enc_dict,
    Grid: _enc_grid,
}


def encode_val(val: Value) -> str:
    """The Zinc text of one value (``N`` for null)."""
    if val is None:
        return "N"
    enc = _ENCODERS.get(val.__class__)
    if enc is None:
        enc = _encoder_for_subclass(val)
    return enc(val)


def _encoder_for_subclass(val: Value) -> Callable[[Any], str]:
    for cls, enc in _ENCODERS.items():
        if isinstance(val, cls) and not (cls is dt.date and isinstance(val, dt.datetime)):
            return enc
    raise TypeError(f"cannot write a {type(val).__name__} as a Haystack value")


def _check_name(name: str) -> None:
    if NAME_RE.fullmatch(name) is None:
        raise ValueError(f"invalid tag name {name!r}")


def _enc_meta(meta: Mapping[str, Value]) -> str:
    """Tags space-separated (a grid's or a column's meta, a Dict's inside): null tags left
    out, a Marker as its bare name."""
    parts = []
    for name, v in meta.items():
        if v is None:
            continue
        _check_name(name)
        parts.append(name if v is MARKER else name + ":" + encode_val(v))
    return " ".join(parts)


# -- grids ----------------------------------------------------------------------------------


def encode_grid(grid: Grid) -> str:
    """The Zinc document of a grid (ends with a newline)."""
    head, names = _head(grid)
    rows = grid.rows
    if _is_his(grid, rows):
        assert isinstance(rows, HisRows)
        return head + _his_text(rows, 0, len(rows), sorted(rows.columns.others))
    return head + _rows_text(rows, names, few=len(rows) <= _FEW_ROWS)


def encode_grid_iter(grid: Grid) -> Iterator[bytes]:
    """The Zinc document of a grid in UTF-8 chunks of about :data:`CHUNK_CHARS` characters.

    The chunks join to exactly ``encode_grid(grid)``; a history read is written from its
    sample columns a slice at a time, so the whole document never exists at once.
    """
    head, names = _head(grid)
    yield head.encode()
    rows = grid.rows
    if _is_his(grid, rows):
        assert isinstance(rows, HisRows)
        others = sorted(rows.columns.others)
        his = rows
        chunks = _slices(len(rows), lambda lo, hi: _his_text(his, lo, hi, others))
    else:
        few = len(rows) <= _FEW_ROWS  # encode_grid's rule: the same text
        chunks = _slices(len(rows), lambda lo, hi: _rows_text(rows[lo:hi], names, few=few))
    for text in chunks:
        yield text.encode()


def _slices(count: int, text_of: Callable[[int, int], str]) -> Iterator[str]:
    """``text_of(lo, hi)`` for consecutive slices of ``count`` rows, each slice sized after
    the previous one's text so that a chunk holds about :data:`CHUNK_CHARS` characters."""
    # A first slice of 1,024 rows writes most answers (a watch of 1,000 points) in one
    # piece: each slice pays the column machinery once (256 cost a 1,000-point watch ~4%).
    lo, step = 0, 1024
    while lo < count:
        hi = min(count, lo + step)
        text = text_of(lo, hi)
        yield text
        step = max(16, (hi - lo) * CHUNK_CHARS // max(1, len(text)))
        lo = hi


def _head(grid: Grid) -> tuple[str, list[str]]:
    """The version line and the column line (each with its newline), and the column names."""
    meta = grid.meta
    head = 'ver:"3.0"'
    meta_text = _enc_meta({k: v for k, v in meta.items() if k != "ver"}) if meta else ""
    if meta_text:
        head += " " + meta_text
    cols = grid.cols or (Col("empty"),)
    col_parts = []
    for col in cols:
        _check_name(col.name)
        col_parts.append(col.name + (" " + _enc_meta(col.meta) if col.meta else ""))
    return head + "\n" + ",".join(col_parts).rstrip() + "\n", [c.name for c in cols]


def _is_his(grid: Grid, rows: Sequence[dict[str, Value]]) -> bool:
    return type(rows) is HisRows and grid.col_names == ("ts", "val")


def _rows_text(rows: Sequence[Mapping[str, Value]], names: list[str], *, few: bool) -> str:
    """The row lines (each with its newline) of dict rows; ``few``: row by row."""
    if not rows:
        return ""
    null = "N" if len(names) == 1 else ""
    if few:
        # A read by id, a watch poll: the column machinery would cost more than it saves.
        return "".join(
            [
                ",".join([null if v is None else encode_val(v) for v in map(row.get, names)]) + "\n"
                for row in rows
            ]
        )
    if len(rows) >= _GROUP_MIN_ROWS and sum(map(len, rows)) < len(rows) * len(names):
        text = _sparse_rows_text(rows, names, null)
        if text is not None:
            return text
    columns = ([row.get(name) for row in rows] for name in names)
    return interleave(_row_pieces(columns, null), len(rows))


def _row_pieces(columns: Iterable[list[Value] | None], null: str) -> list[str | list[str]]:
    """The pieces of :func:`interleave` for rows of these columns (None: a column of nulls).

    Column by column: each column is constant text and lists of per-row texts; the text
    between two lists (separators, constant columns) is merged into one piece.
    """
    pieces: list[str | list[str]] = []
    const = ""
    for index, vals in enumerate(columns):
        if index:
            const += ","
        if vals is None:
            const += null
            continue
        for part in _column_parts(vals, null):
            if isinstance(part, str):
                const += part
            else:
                pieces += [const, part]
                const = ""
    pieces.append(const + "\n")
    return pieces


def _sparse_rows_text(
    rows: Sequence[Mapping[str, Value]], names: list[str], null: str
) -> str | None:
    """The row lines of rows that lack some columns (a watch of points of several kinds),
    written a group of rows with the same tags at a time: within a group every column is
    full, so a marker column is one constant and no cell is looked up in vain. None when the
    rows come in too many shapes for that to pay."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, shape in enumerate(map(tuple, rows)):
        members = groups.get(shape)
        if members is None:
            if len(groups) == _MAX_SHAPES:
                return None
            groups[shape] = [index]
        else:
            members.append(index)
    if len(groups) * _MIN_GROUP > len(rows):
        return None
    lines: list[str] = [""] * len(rows)
    for shape, members in groups.items():
        group = list(map(rows.__getitem__, members))
        present = [name for name in names if name in shape]
        columns: dict[str, list[Value]] = {}
        if len(present) == 1:
            columns[present[0]] = list(map(itemgetter(present[0]), group))
        elif present:
            cells = zip(*map(itemgetter(*present), group), strict=True)
            columns = dict(zip(present, map(list, cells), strict=True))
        pieces = _row_pieces(map(columns.get, names), null)
        count = len(group)
        texts = zip(*[p if isinstance(p, list) else repeat(p, count) for p in pieces], strict=True)
        deque(map(lines.__setitem__, members, map("".join, texts)), 0)
    return "".join(lines)


def _his_text(rows: HisRows, lo: int, hi: int, others: list[int]) -> str:
    """The lines of samples ``lo`` to ``hi`` of a history, straight from the sample columns;
    ``others`` are the sorted indexes of the samples that are not Numbers in the unit."""
    if hi <= lo:
        return ""
    columns = rows.columns
    unit = columns.unit
    if unit is not None and not _unit_ok(unit):
        raise ValueError(f"unit {unit!r} cannot be written in Zinc")
    times = iso_times(columns.times[lo:hi], rows.tz)
    nums, inside = chunk_nums(columns, lo, hi, others)
    vals = float_texts(nums, unit)
    for i in inside:
        other = columns.others[i]
        vals[i - lo] = "" if other is None else encode_val(other)
    pieces: list[str | list[str]] = [times, " " + rows.tz_name + ",", vals, "\n"]
    return interleave(pieces, hi - lo)


# -- columns of one kind --------------------------------------------------------------------


def _column_parts(vals: list[Value], null: str) -> list[str | list[str]]:
    """A column as constant texts and lists of per-row texts (their concatenation, row by
    row, is the column's text): quotes and ``@`` stay out of the per-row texts, a column of
    one value is one constant."""
    first = vals[0]
    cls = first.__class__
    if first is MARKER:
        if vals.count(MARKER) == len(vals):  # identity first: no __eq__ call per cell
            return ["M"]
    elif cls is str:
        if set(map(type, vals)) == {str}:
            if vals.count(first) == len(vals):
                return [_enc_str(first)]
            if _plain("".join(vals)):
                return ['"', vals, '"']
    elif cls is Ref:
        parts = _ref_parts(vals)
        if parts is not None:
            return parts
    return [_encode_column(vals, null)]


def _plain(text: str) -> bool:
    """Whether ``text`` holds nothing a Zinc string escapes (a quick test first)."""
    if text.isprintable():
        return '"' not in text and "\\" not in text and "$" not in text
    return _STR_SPECIAL_RE.search(text) is None


def _ref_parts(vals: list[Value]) -> list[str | list[str]] | None:
    if set(map(type, vals)) != {Ref}:
        return None
    ids = list(map(_first, vals))
    dises = list(map(_second, vals))
    if not all(ids) or ID_RE.fullmatch("".join(ids)) is None:
        return None
    no_dis = dises.count(None)
    if no_dis == len(vals):
        return ["@", ids]
    if no_dis or not _plain("".join(dises)):
        return None
    return ["@", ids, ' "', dises, '"']


def _encode_column(vals: list[Value], null: str) -> list[str]:
    # The first non-null value picks a list encoder; every list encoder copes with other
    # kinds in the column through encode_val, so no separate pass checks the kinds.
    for v in vals:
        if v is not None:
            return _COLUMN_ENCODERS.get(v.__class__, _col_any)(vals, null)
    return [null] * len(vals)


def _col_any(vals: list[Value], null: str) -> list[str]:
    return [null if v is None else encode_val(v) for v in vals]


def _col_marker(vals: list[Value], null: str) -> list[str]:
    if vals.count(MARKER) == len(vals):  # identity first: no __eq__ call on a marker column
        return ["M"] * len(vals)
    return ["M" if v is MARKER else (null if v is None else encode_val(v)) for v in vals]


def _col_str(vals: list[Value], null: str) -> list[str]:
    if set(map(type, vals)) == {str}:
        return list(map(_enc_str, vals))  # (_column_parts took the column if none escapes)
    plain = _STR_SPECIAL_RE.search("".join([v for v in vals if v.__class__ is str])) is None
    return [
        (f'"{v}"' if plain else _enc_str(v))
        if v.__class__ is str
        else (null if v is None else encode_val(v))
        for v in vals
    ]


def _col_number(vals: list[Value], null: str) -> list[str]:
    units: set[str | None] = set(map(_second, vals)) if set(map(type, vals)) == {Number} else set()
    for unit in units:
        if unit is not None and not _unit_ok(unit):
            raise ValueError(f"unit {unit!r} cannot be written in Zinc")
    if units:
        # Numbers only (no null, no other kind): in bulk, unless one is NaN or infinite.
        floats = list(map(_first, vals))
        if len(units) == 1:
            return float_texts(floats, units.pop())  # (a NaN or infinity one at a time)
        else:
            texts = zinc_floats(floats)
            if texts is not None:
                suffix = {u: u or "" for u in units}
                return list(map(add, texts, map(suffix.__getitem__, map(_second, vals))))
    return _col_number_each(vals, null)


def _col_number_each(vals: list[Value], null: str) -> list[str]:
    out: list[str] = []
    append = out.append
    for v in vals:
        if v.__class__ is not Number:
            append(null if v is None else encode_val(v))
            continue
        if v[1] is not None and not _unit_ok(v[1]):
            raise ValueError(f"unit {v[1]!r} cannot be written in Zinc")
        text = repr(v[0])
        if text[-2:] == ".0":
            append(text[:-2] if v[1] is None else text[:-2] + v[1])
        elif text[-1] in "nf":  # inf, nan: INF, -INF, NaN take no unit in Zinc
            append(format_float(v[0]))
        else:
            append(text if v[1] is None else text + v[1])
    return out


def _col_ref(vals: list[Value], null: str) -> list[str]:
    # (a column of Refs only, all with or all without dis, went through _ref_parts)
    refs = [v for v in vals if v.__class__ is Ref]
    ids = [v[0] for v in refs]
    if (
        not all(ids)
        or ID_RE.fullmatch("".join(ids)) is None
        or _STR_SPECIAL_RE.search("".join([v[1] for v in refs if v[1] is not None]))
    ):
        return _col_any(vals, null)
    return [
        ("@" + v[0] if v[1] is None else f'@{v[0]} "{v[1]}"')
        if v.__class__ is Ref
        else (null if v is None else encode_val(v))
        for v in vals
    ]


def _col_datetime(vals: list[Value], null: str) -> list[str]:
    first = vals[0]
    if isinstance(first, dt.datetime):
        try:
            name = hs_name(first.tzinfo)
        except HaystackError:
            name = None  # written one by one, which raises the error
        if name is not None:
            texts = datetime_texts(vals, " " + name, utc_z=name == "UTC")
            if texts is not None:
                return texts
    return _col_datetime_each(vals, null)


def _col_datetime_each(vals: list[Value], null: str) -> list[str]:
    suffixes: dict[object, str] = {}
    out: list[str] = []
    append = out.append
    for v in vals:
        if v.__class__ is not dt.datetime or v.microsecond:
            append(null if v is None else encode_val(v))
            continue
        tz = v.tzinfo
        suffix = suffixes.get(tz)
        if suffix is None:
            suffix = suffixes[tz] = " " + hs_name(tz)
        if suffix == " UTC":
            append(v.isoformat()[:-6] + "Z UTC")
        else:
            append(v.isoformat() + suffix)
    return out


_COLUMN_ENCODERS: Final[dict[type, Callable[[list[Value], str], list[str]]]] = {
    Marker: _col_marker,
    str: _col_str,
    Number: _col_number,
    Ref: _col_ref,
    dt.datetime: _col_datetime,
}
