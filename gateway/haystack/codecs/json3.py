"""JSON v3: the Haystack 3 JSON encoding (string prefixes), reader and writer.

Null, Bool, List and Dict are native JSON; every other value is a string with a one-letter type
prefix: ``m:`` Marker, ``z:`` NA, ``-:`` Remove, ``n:73.2 °F`` Number, ``r:id dis`` Ref, ``s:``
Str, ``u:`` Uri, ``d:`` Date, ``h:`` Time, ``t:2015-06-08T15:47:41-04:00 New_York`` DateTime,
``c:lat,lng`` Coord, ``x:Type:val`` XStr, ``y:`` Symbol. A grid is
``{"meta":{"ver":"3.0",..},"cols":[{"name":"dis","dis":"Equip Name"}],"rows":[..]}``: column meta
sits in the column object itself, so a column meta tag named ``name`` cannot be written.

Writer: a Str is prefixed with ``s:`` whenever it contains a colon (the spec requires it when the
second character is one; older readers want it for any colon). Remove is always ``-:`` (hszinc
reads ``x:`` as Remove). A DateTime always carries its zone name.

Reader: a string whose second character is not ``:`` is a Str, and so is one with an unknown
prefix letter. Also accepted: plain JSON numbers (as Numbers), ``b:mime`` (Bin, read as
``XStr("Bin", mime)``), ``x:`` alone as Remove (Haystack 2), a DateTime without zone name (``Z``
is UTC, an offset of whole hours ``GMT±h``), ``h:mm`` times and hex numbers (``n:0x1F``). A JSON
object is a nested grid when it has ``meta``, ``cols`` and ``rows``, else a Dict (nulls and keys
that are not tag names dropped). Malformed input raises ``ParseError`` with line and column.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from gateway.haystack.codecs.common import (
    format_datetime_iso,
    format_float,
    format_time,
    parse_date,
    parse_datetime,
    parse_time,
)
from gateway.haystack.codecs.jsondoc import (
    NAME_OK,
    Invalid,
    convert_rows,
    dump,
    gc_paused,
    invalid_to_parse_error,
    load,
    member,
    read_cols,
    unexpected_error,
)
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import (
    MARKER,
    NA,
    REMOVE,
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

__all__ = ["decode_grid", "decode_val", "encode_grid", "encode_val", "from_json", "to_json"]

Data = bytes | bytearray | memoryview | str

_tuple_new = tuple.__new__

# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


def encode_grid(grid: Grid) -> bytes:
    """The grid as JSON v3 (UTF-8 bytes)."""
    return dump(_grid_json(grid), _refuse)


def encode_val(val: Value) -> str:
    """One value as JSON v3 text."""
    return dump(to_json(val), _refuse).decode("utf-8")


def to_json(val: Value) -> Any:
    """The JSON v3 form of a value as plain Python JSON objects (str, list, dict...)."""
    enc = _ENCODERS.get(val.__class__)
    if enc is None:
        if val is None or val.__class__ is bool:
            return val
        return _subclass_json(val)
    return enc(val)


def _refuse(val: Any) -> Any:
    raise TypeError(f"not a Haystack value: {val.__class__.__name__}")


def _str_json(val: str) -> str:
    return "s:" + val if ":" in val else val


def _number_json(val: Number) -> str:
    v, unit = val
    return "n:" + format_float(v) + " " + unit if unit else "n:" + format_float(v)


def _ref_json(val: Ref) -> str:
    ref_id, dis = val
    return "r:" + ref_id if dis is None else "r:" + ref_id + " " + dis


def _datetime_json(val: dt.datetime) -> str:
    return "t:" + format_datetime_iso(val) + " " + hs_name(val.tzinfo)


def _tags_json(tags: Mapping[str, Value]) -> dict[str, Any]:
    return {name: to_json(v) for name, v in tags.items() if v is not None}


def _grid_json(grid: Grid) -> dict[str, Any]:
    meta: dict[str, Any] = {"ver": "3.0"}
    meta.update((k, to_json(v)) for k, v in grid.meta.items() if v is not None and k != "ver")
    cols: list[dict[str, Any]] = []
    for col in grid.cols:
        if "name" in col.meta and col.meta["name"] is not None:
            raise ValueError(f"column {col.name!r}: a meta tag 'name' cannot be written in JSON v3")
        cols.append({"name": col.name, **_tags_json(col.meta)})
    names = grid.col_names
    encoders = _ENCODERS
    rows: list[dict[str, Any]] = []
    for row in grid.rows:
        out: dict[str, Any] = {}
        for name in names:
            v = row.get(name)
            if v is None:
                continue
            cls = v.__class__
            if cls is str:
                out[name] = "s:" + v if ":" in v else v
                continue
            enc = encoders.get(cls)
            out[name] = enc(v) if enc is not None else to_json(v)
        rows.append(out)
    return {"meta": meta, "cols": cols, "rows": rows}


def _subclass_json(val: Any) -> Any:
    # Subclasses of the stdlib kinds and read-only mappings (a grid's meta...).
    if isinstance(val, dt.datetime):
        return _datetime_json(val)
    if isinstance(val, dt.date):
        return "d:" + val.isoformat()
    if isinstance(val, dt.time):
        return "h:" + format_time(val)
    if isinstance(val, Grid):
        return _grid_json(val)
    if isinstance(val, Mapping):
        return _tags_json(val)
    if isinstance(val, bool):
        return bool(val)
    raise TypeError(f"not a Haystack value: {val.__class__.__name__}")


_ENCODERS: Final[dict[type, Callable[[Any], Any]]] = {
    str: _str_json,
    Number: _number_json,
    Marker: lambda _: "m:",
    NAType: lambda _: "z:",
    RemoveType: lambda _: "-:",
    Ref: _ref_json,
    Uri: lambda v: "u:" + v[0],
    Symbol: lambda v: "y:" + v[0],
    dt.datetime: _datetime_json,
    dt.date: lambda v: "d:" + v.isoformat(),
    dt.time: lambda v: "h:" + format_time(v),
    Coord: lambda v: "c:" + format_float(v[0]) + "," + format_float(v[1]),
    XStr: lambda v: "x:" + v[0] + ":" + v[1],
    list: lambda v: [to_json(x) for x in v],
    dict: _tags_json,
    Grid: _grid_json,
}

# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------

_REF_ID_OK: Final = re.compile(r"[A-Za-z0-9_:\-.~]+").fullmatch
_NUMBER_RE: Final = re.compile(
    r"(-?INF|NaN|-?0x[0-9a-fA-F_]+|-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?)"
    r"(?: ?(\S.*))?",
    re.DOTALL,
)
_NONFINITE: Final = {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}


def decode_grid(data: Data) -> Grid:
    """A grid from JSON v3 bytes or text; ParseError when malformed."""
    with gc_paused():
        doc = load(data)
        try:
            if doc.__class__ is not dict:
                raise Invalid("a grid must be a JSON object")
            return _grid(doc)
        except Invalid as err:
            raise invalid_to_parse_error(err, data) from None
        except Exception as exc:  # the contract: only ParseError leaves a decoder
            raise unexpected_error(exc) from None


def decode_val(data: Data) -> Value:
    """One value from JSON v3 bytes or text; ParseError when malformed."""
    with gc_paused():
        doc = load(data)
        try:
            return from_json(doc)
        except Invalid as err:
            raise invalid_to_parse_error(err, data) from None
        except Exception as exc:  # the contract: only ParseError leaves a decoder
            raise unexpected_error(exc) from None


def from_json(obj: Any) -> Value:
    """The Haystack value of parsed JSON v3 (as ``json.loads`` or orjson return it).

    Raises :class:`~gateway.haystack.codecs.jsondoc.Invalid` for malformed values.
    """
    conv = _CONV.get(obj.__class__)
    if conv is not None:
        return conv(obj)
    if obj is None or obj.__class__ is bool:
        return obj
    raise Invalid(f"not a JSON value: {obj.__class__.__name__}")


def _grid(obj: dict[str, Any]) -> Grid:
    meta_json = member(obj, "meta", dict, {})
    try:
        meta = _tags(meta_json)
    except Invalid as err:
        err.path.append("meta")
        raise
    meta.pop("ver", None)
    cols = read_cols(
        member(obj, "cols", list, []),
        lambda col: _tags({k: v for k, v in col.items() if k != "name"}),
    )
    rows = member(obj, "rows", list, [])
    convert_rows(rows, _CONV.get)
    return Grid(cols, tuple(rows), meta)


def _tags(obj: dict[str, Any]) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for name, val in obj.items():
        if val is None or not NAME_OK(name):
            continue
        try:
            out[name] = from_json(val)
        except Invalid as err:
            err.path.append(name)
            raise
    return out


def _obj(obj: dict[str, Any]) -> Value:
    # Haxall's rule: an object with meta, cols and rows is a nested grid.
    if obj.get("meta") is not None and obj.get("cols") is not None and obj.get("rows") is not None:
        return _grid(obj)
    return _tags(obj)


def _list(items: list[Any]) -> list[Value]:
    out = []
    for index, val in enumerate(items):
        try:
            out.append(from_json(val))
        except Invalid as err:
            err.path.append(index)
            raise
    return out


def _str(s: str) -> Value:
    if len(s) < 2 or s[1] != ":":
        return s
    decode = _PREFIXES.get(s[0])
    if decode is None:
        return s  # not a type code: a Str that happens to have a colon second
    try:
        return decode(s)
    except (ValueError, OverflowError) as exc:
        raise Invalid(f"invalid value {s[:80]!r}: {exc}") from None


def _singleton(val: Value) -> Callable[[str], Value]:
    def decode(s: str) -> Value:
        if len(s) != 2:
            raise ValueError("nothing may follow the type code")
        return val

    return decode


def _number(s: str) -> Number:
    m = _NUMBER_RE.fullmatch(s, 2)
    if m is None:
        raise ValueError("not a number")
    text, unit = m.groups()
    if text in _NONFINITE:
        val = _NONFINITE[text]
    elif "x" in text:
        val = float(int(text.replace("_", ""), 16))
    else:
        val = float(text.replace("_", "") if "_" in text else text)
    return _tuple_new(Number, (val, unit))


def _ref(s: str) -> Ref:
    space = s.find(" ")
    ref_id = s[2:] if space < 0 else s[2:space]
    if ref_id.startswith("@"):
        ref_id = ref_id[1:]
    if not _REF_ID_OK(ref_id):
        raise ValueError("invalid ref id")
    return _tuple_new(Ref, (ref_id, None if space < 0 else s[space + 1 :]))


def _datetime(s: str) -> dt.datetime:
    space = s.find(" ")
    if space < 0:
        return parse_datetime(s[2:], None)  # "Z" is UTC, an offset GMT±h
    return parse_datetime(s[2:space], s[space + 1 :])


def _coord(s: str) -> Coord:
    lat, sep, lng = s[2:].partition(",")
    if not sep:
        raise ValueError("a coord is lat,lng")
    return Coord(float(lat), float(lng))


def _xstr(s: str) -> Value:
    if len(s) == 2:
        return REMOVE  # Haystack 2 wrote Remove as "x:"
    colon = s.find(":", 2)
    if colon < 0:
        raise ValueError("an XStr is x:Type:value")
    return XStr(s[2:colon], s[colon + 1 :])


def _symbol(s: str) -> Symbol:
    if len(s) == 2:
        raise ValueError("empty symbol")
    return Symbol(s[2:])


_PREFIXES: Final[dict[str, Callable[[str], Value]]] = {
    "m": _singleton(MARKER),
    "z": _singleton(NA),
    "-": _singleton(REMOVE),
    "n": _number,
    "r": _ref,
    "s": lambda s: s[2:],
    "u": lambda s: Uri(s[2:]),
    "d": lambda s: parse_date(s[2:]),
    "h": lambda s: parse_time(s[2:]),
    "t": _datetime,
    "c": _coord,
    "x": _xstr,
    "y": _symbol,
    "b": lambda s: XStr("Bin", s[2:]),
}

_CONV: Final[dict[type, Callable[[Any], Value]]] = {
    str: _str,
    dict: _obj,
    list: _list,
    float: lambda v: _tuple_new(Number, (v, None)),
    int: lambda v: _tuple_new(Number, (float(v), None)),
}
