"""JSON v4 (Hayson): the Haystack 4 JSON encoding, reader and writer.

Null, Bool, Str, List and Dict are native JSON; a finite Number without unit is a plain JSON
number; every other kind is an object tagged with ``_kind`` (``{"_kind":"ref","val":"a"}``). A
grid is ``{"_kind":"grid","meta":{"ver":"3.0",...},"cols":[{"name":..,"meta":{..}}],"rows":[..]}``.

Writer: always writes the top-level ``"_kind":"grid"`` and a DateTime's ``tz`` (phable needs
both). Unitless finite numbers are written as JSON floats (``72.0``). Row dicts are handed to the
serializer as they are, so a row cell for a column the grid does not declare is written too.

Reader: accepts a grid without ``_kind``, an explicit ``"_kind":"dict"``, a DateTime without
``tz`` (the spec's GMT), and ``{"_kind":"bin","mime":..}`` as ``XStr("Bin", mime)``. In Dicts
and meta, nulls are dropped and keys that are not tag names (``_kind``...) are ignored, as the
spec says; grid meta loses its ``ver``. Row cells are kept as parsed (a null cell stays
``None``). Anything else malformed raises ``ParseError`` with the line and column of the
offending value.

Speed: orjson writes the JSON, calling back here only for values that are not native JSON
(dispatch on ``value.__class__``, the frequent kinds first). Reading, a grid whose rows all have
one simple shape (a history, a uniform point list) goes through :mod:`json4_rows`, which reads
the rows with one regex pass and converts whole columns at once; any other document is parsed by
orjson and its row dicts are converted in place (only the cells that are not native JSON
change). The cyclic garbage collector is paused while a document is decoded (see
:func:`jsondoc.gc_paused`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any, Final

import orjson

from gateway.haystack.codecs.common import (
    format_datetime_iso,
    format_time,
    parse_date,
    parse_datetime,
    parse_time,
)
from gateway.haystack.codecs.json4_rows import decode_rows
from gateway.haystack.codecs.jsondoc import (
    NAME_OK,
    Invalid,
    dump,
    gc_paused,
    invalid_to_parse_error,
    load,
    member,
    read_cols,
    unexpected_error,
)
from gateway.haystack.errors import UnknownTimeZoneError
from gateway.haystack.grid import Col, Grid
from gateway.haystack.hisrows import HisRows, float_texts, iso_times
from gateway.haystack.kinds import (
    MARKER,
    NA,
    REMOVE,
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
from gateway.haystack.tz import UTC, hs_name, hs_tz

__all__ = ["decode_grid", "decode_val", "encode_grid", "encode_val", "from_json"]

Data = bytes | bytearray | memoryview | str

_tuple_new = tuple.__new__
_fromisoformat = dt.datetime.fromisoformat
_datetime_cls = dt.datetime

# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------

_MARKER_JSON: Final = {"_kind": "marker"}
_NA_JSON: Final = {"_kind": "na"}
_REMOVE_JSON: Final = {"_kind": "remove"}
_SPECIAL_FLOATS: Final = {math.inf: "INF", -math.inf: "-INF"}


def encode_grid(grid: Grid) -> bytes:
    """The grid as Hayson (UTF-8 JSON bytes)."""
    rows = grid.rows
    if type(rows) is HisRows and grid.col_names == ("ts", "val"):
        return _his_grid_json(grid, rows)
    return dump(_grid_json(grid), _default)


def _his_grid_json(grid: Grid, rows: HisRows) -> bytes:
    """A history grid written straight from its sample columns (see hisrows)."""
    head = dump(_grid_json(grid.with_rows(())), _default)
    assert head.endswith(b"[]}")
    columns = rows.columns
    ts_head = '{"ts":{"_kind":"dateTime","val":"'
    ts_tail = '","tz":' + dump(rows.tz_name, _default).decode() + '},"val":'
    unit = columns.unit
    texts = float_texts(columns.nums, None)
    if unit is None:
        vals = [t if t[-1].isdigit() else f'{{"_kind":"number","val":"{t}"}}' for t in texts]
    else:
        unit_json = dump(unit, _default).decode()
        vals = [
            f'{{"_kind":"number","val":{t},"unit":{unit_json}}}'
            if t[-1].isdigit()
            else f'{{"_kind":"number","val":"{t}","unit":{unit_json}}}'
            for t in texts
        ]
    for i, other in columns.others.items():
        vals[i] = "null" if other is None else dump(other, _default).decode()
    times = iso_times(columns.times, rows.tz)
    body = ",".join([ts_head + t + ts_tail + v + "}" for t, v in zip(times, vals, strict=True)])
    return head[:-3] + b"[" + body.encode() + b"]}"


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


def _grid_json(grid: Grid) -> dict[str, Any]:
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
    # Null cells are left out of the row objects: Hayson allows null, but some clients
    # (phable 0.1.29) cannot read it, and an absent key means the same thing.
    rows = [
        row if None not in row.values() else {k: v for k, v in row.items() if v is not None}
        for row in grid.rows
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

# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------

_REF_ID_OK: Final = re.compile(r"[A-Za-z0-9_:\-.~]+").fullmatch
_NONFINITE: Final = {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}


def decode_grid(data: Data) -> Grid:
    """A grid from Hayson bytes or text; ParseError when malformed."""
    with gc_paused():
        try:
            grid = _decode_uniform(data)
        except Exception:  # whatever the fast path stumbles on, the general reader reports
            grid = None
        if grid is not None:
            return grid
        doc = load(data)
        try:
            return _top_grid(doc, None)
        except Invalid as err:
            raise invalid_to_parse_error(err, data) from None
        except Exception as exc:  # the contract: only ParseError leaves a decoder
            raise unexpected_error(exc) from None


def _top_grid(doc: Any, rows: list[dict[str, Value]] | None) -> Grid:
    if doc.__class__ is not dict:
        raise Invalid("a grid must be a JSON object")
    kind = doc.get("_kind")
    if kind is not None and kind != "grid":
        err = Invalid(f"expected a grid, found _kind {kind!r}")
        err.path.append("_kind")
        raise err
    return _grid(doc, rows)


_ROWS_KEY: Final = '"rows"'
_FAST_MIN_CHARS: Final = 4096


def _decode_uniform(data: Data) -> Grid | None:
    """The grid through the fast row reader (json4_rows), or None to use the general reader.

    Applies when the top-level ``rows`` array is a run of same-shape compact rows and is the
    last member of the document; the rest of the document (meta, cols) is parsed as usual.
    """
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        if len(text) < _FAST_MIN_CHARS or (isinstance(data, str) and not _encodable(text)):
            return None
    except UnicodeDecodeError:
        return None
    key = text.find('"rows":')
    if key < 0:
        key = text.find(_ROWS_KEY)
        if key < 0:
            return None
    start = key + len(_ROWS_KEY)
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    if start >= len(text) or text[start] != ":":
        return None
    start += 1
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    if start >= len(text) or text[start] != "[":
        return None
    head = text[:key]
    # The key must be a member of the top-level object: only then does the text before it,
    # closed after an empty array, make a whole JSON document (this also checks that text).
    try:
        orjson.loads(head + '"rows":[]}')
    except orjson.JSONDecodeError:
        return None
    found = decode_rows(text, start)
    if found is None:
        return None
    rows, end = found
    tail = text[end:]
    if _ROWS_KEY in tail:
        return None  # a second "rows" member: let the general reader decide
    try:
        doc = orjson.loads(head + '"rows":[]' + tail)
        return _top_grid(doc, rows)
    except (orjson.JSONDecodeError, Invalid):
        return None  # the general reader reports it with its position


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_val(data: Data) -> Value:
    """One value from Hayson bytes or text; ParseError when malformed."""
    with gc_paused():
        doc = load(data)
        try:
            return from_json(doc)
        except Invalid as err:
            raise invalid_to_parse_error(err, data) from None
        except Exception as exc:  # the contract: only ParseError leaves a decoder
            raise unexpected_error(exc) from None


def from_json(obj: Any) -> Value:
    """The Haystack value of parsed JSON (as ``json.loads`` or orjson return it).

    Raises :class:`Invalid` for structural errors; the decoders turn it into ParseError.
    """
    conv = _CONV.get(obj.__class__)
    if conv is not None:
        return conv(obj)
    if obj is None or obj.__class__ is str or obj.__class__ is bool:
        return obj
    raise Invalid(f"not a JSON value: {obj.__class__.__name__}")


def _grid(obj: dict[str, Any], rows: list[dict[str, Value]] | None = None) -> Grid:
    meta = _meta(obj)
    meta.pop("ver", None)
    cols_json = member(obj, "cols", list, None)
    if rows is None:
        rows = member(obj, "rows", list, [])
        _rows(rows)
    cols = read_cols(cols_json, _meta) if cols_json is not None else _cols_of_rows(rows)
    return Grid(cols, tuple(rows), meta)


def _meta(obj: dict[str, Any]) -> dict[str, Value]:
    try:
        return _tags(member(obj, "meta", dict, {}))
    except Invalid as err:
        if err.path[-1:] != ["meta"]:
            err.path.append("meta")
        raise


def _cols_of_rows(rows: list[dict[str, Any]]) -> list[Col]:
    # A grid without "cols" (lenient): the union of the rows' tags, in order of appearance.
    names: dict[str, None] = {}
    for row in rows:
        for name in row:
            if NAME_OK(name):
                names[name] = None
    return [Col(name) for name in names]


def _rows(rows: list[Any]) -> None:
    """Convert the parsed rows in place (only cells that are not native JSON change)."""
    conv_of = _CONV.get
    for index, row in enumerate(rows):
        if row.__class__ is not dict:
            err = Invalid("a row must be a JSON object")
            err.path += [index, "rows"]
            raise err
        for name, val in row.items():
            conv = conv_of(val.__class__)
            if conv is not None:
                try:
                    # Replacing the value of an existing key never resizes the dict: safe
                    # while iterating.
                    row[name] = conv(val)
                except Invalid as err:
                    err.path += [name, index, "rows"]
                    raise


def _tags(obj: dict[str, Any]) -> dict[str, Value]:
    """Meta and Dict values: nulls dropped, keys that are not tag names ignored."""
    out: dict[str, Value] = {}
    conv_of = _CONV.get
    for name, val in obj.items():
        if val is None or not NAME_OK(name):
            continue
        conv = conv_of(val.__class__)
        if conv is None:
            out[name] = val
            continue
        try:
            out[name] = conv(val)
        except Invalid as err:
            err.path.append(name)
            raise
    return out


def _list(items: list[Any]) -> list[Value]:
    out = []
    conv_of = _CONV.get
    for index, val in enumerate(items):
        conv = conv_of(val.__class__)
        if conv is None:
            out.append(val)
            continue
        try:
            out.append(conv(val))
        except Invalid as err:
            err.path.append(index)
            raise
    return out


def _obj(obj: dict[str, Any]) -> Value:
    kind = obj.get("_kind")
    if kind is None:
        return _tags(obj)
    if kind == "marker":
        return MARKER
    decode = _KINDS.get(kind) if kind.__class__ is str else None
    if decode is None:
        err = Invalid(f"unknown _kind {kind!r}")
        err.path.append("_kind")
        raise err
    return decode(obj)


def _field(obj: dict[str, Any], key: str, kind: str) -> str:
    val: Any = obj.get(key)
    if val.__class__ is not str:
        err = Invalid(f"{kind} {key!r} must be a string, not {_json_type(val)}")
        err.path.append(key)
        raise err
    return val


def _json_type(val: Any) -> str:
    if val is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        val.__class__, "number"
    )


def _ref(obj: dict[str, Any]) -> Ref:
    ref_id = obj.get("val")
    if ref_id.__class__ is not str or not _REF_ID_OK(ref_id):
        err = Invalid(f"invalid ref id {ref_id!r}")
        err.path.append("val")
        raise err
    dis = obj.get("dis")
    if dis is not None and dis.__class__ is not str:
        err = Invalid("ref 'dis' must be a string")
        err.path.append("dis")
        raise err
    return _tuple_new(Ref, (ref_id, dis))


def _number(obj: dict[str, Any]) -> Number:
    val: Any = obj.get("val")
    cls = val.__class__
    if cls is not float:
        if cls is int:
            val = float(val)
        elif cls is str and val in _NONFINITE:
            val = _NONFINITE[val]
        else:
            err = Invalid(f"invalid number value {val!r}")
            err.path.append("val")
            raise err
    unit = obj.get("unit")
    if unit is not None and unit.__class__ is not str:
        err = Invalid("number 'unit' must be a string")
        err.path.append("unit")
        raise err
    return _tuple_new(Number, (val, unit or None))


_GMT: Final = "GMT"


def _datetime(obj: dict[str, Any]) -> dt.datetime:
    text = obj.get("val")
    tz_name = obj.get("tz")
    if text.__class__ is not str or (tz_name is not None and tz_name.__class__ is not str):
        err = Invalid("dateTime 'val' and 'tz' must be strings")
        err.path.append("val" if text.__class__ is not str else "tz")
        raise err
    try:
        if tz_name is None:
            # The spec: a dateTime without tz is in GMT.
            return parse_datetime(text, _GMT)
        # Fast path for the usual ISO text with offset; parse_datetime handles the rest.
        val = _fromisoformat(text)
        if val.tzinfo is not None:
            return val.astimezone(UTC if tz_name == "UTC" else hs_tz(tz_name))
        return parse_datetime(text, tz_name)
    except UnknownTimeZoneError:
        err = Invalid(f"unknown time zone {tz_name!r}")
        err.path.append("tz")
        raise err from None
    except (ValueError, OverflowError):
        try:
            return parse_datetime(text, tz_name or _GMT)
        except (ValueError, OverflowError) as exc:
            err = Invalid(f"invalid dateTime {text!r}: {exc}")
            err.path.append("val")
            raise err from None


def _date(obj: dict[str, Any]) -> dt.date:
    text = _field(obj, "val", "date")
    try:
        return parse_date(text)
    except ValueError:
        err = Invalid(f"invalid date {text!r}")
        err.path.append("val")
        raise err from None


def _time(obj: dict[str, Any]) -> dt.time:
    text = _field(obj, "val", "time")
    try:
        return parse_time(text)
    except ValueError:
        err = Invalid(f"invalid time {text!r}")
        err.path.append("val")
        raise err from None


def _coord(obj: dict[str, Any]) -> Coord:
    lat, lng = obj.get("lat"), obj.get("lng")
    if lat.__class__ not in (int, float) or lng.__class__ not in (int, float):
        raise Invalid("coord 'lat' and 'lng' must be numbers")
    try:
        return Coord(lat, lng)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _xstr(obj: dict[str, Any]) -> XStr:
    type_name = _field(obj, "type", "xstr")
    val = _field(obj, "val", "xstr")
    try:
        return XStr(type_name, val)
    except ValueError as exc:
        err = Invalid(str(exc))
        err.path.append("type")
        raise err from None


def _nested_grid(obj: dict[str, Any]) -> Grid:
    return _grid(obj)


_KINDS: Final[dict[str, Callable[[dict[str, Any]], Value]]] = {
    "ref": _ref,
    "number": _number,
    "dateTime": _datetime,
    "date": _date,
    "time": _time,
    "na": lambda _: NA,
    "remove": lambda _: REMOVE,
    "uri": lambda o: Uri(_field(o, "val", "uri")),
    "symbol": lambda o: Symbol(_field(o, "val", "symbol")),
    "coord": _coord,
    "xstr": _xstr,
    "bin": lambda o: XStr("Bin", _field(o, "mime", "bin")),
    "dict": _tags,
    "grid": _nested_grid,
}

#: Converters for the parsed JSON classes that are not already Haystack values.
_CONV: Final[dict[type, Callable[[Any], Value]]] = {
    dict: _obj,
    list: _list,
    float: lambda v: _tuple_new(Number, (v, None)),
    int: lambda v: _tuple_new(Number, (float(v), None)),
}
