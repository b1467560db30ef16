"""JSON v4 (Hayson): the Haystack 4 JSON encoding, reader and writer.

Null, Bool, Str, List and Dict are native JSON; a finite Number without unit is a plain JSON
number; every other kind is an object tagged with ``_kind`` (``{"_kind":"ref","val":"a"}``). A
grid is ``{"_kind":"grid","meta":{"ver":"3.0",...},"cols":[{"name":..,"meta":{..}}],"rows":[..]}``.

Writer: ``encode_grid``, ``encode_grid_iter`` (UTF-8 chunks, for long responses) and
``encode_val``, from :mod:`json4_write`.

Reader: accepts a grid without ``_kind``, an explicit ``"_kind":"dict"``, a DateTime without
``tz`` (the spec's GMT), and ``{"_kind":"bin","mime":..}`` as ``XStr("Bin", mime)``. In Dicts
and meta, nulls are dropped and keys that are not tag names (``_kind``...) are ignored, as the
spec says; grid meta loses its ``ver``. Row cells are kept as parsed (a null cell stays
``None``). Anything else malformed raises ``ParseError`` with the line and column of the
offending value.

Speed: a grid whose rows all have one simple shape (a history, a uniform point list) goes
through :mod:`json4_rows`, which reads the rows with one regex pass and converts whole columns at
once; any other document is parsed by orjson and its row dicts are converted in place (only the
cells that are not native JSON change). The cyclic garbage collector is paused while a document
is decoded (see :func:`jsondoc.gc_paused`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any, Final

import orjson

from gateway.haystack.codecs.common import (
    parse_date,
    parse_datetime,
    parse_time,
)
from gateway.haystack.codecs.json4_rows import decode_rows
from gateway.haystack.codecs.json4_write import encode_grid, encode_grid_iter, encode_val
from gateway.haystack.codecs.jsondoc import (
    NAME_OK,
    Invalid,
    convert_rows,
    gc_paused,
    invalid_to_parse_error,
    load,
    member,
    read_cols,
    unexpected_error,
)
from gateway.haystack.errors import UnknownTimeZoneError
from gateway.haystack.grid import Col, Grid
from gateway.haystack.kinds import (
    MARKER,
    NA,
    REMOVE,
    Coord,
    Number,
    Ref,
    Symbol,
    Uri,
    Value,
    XStr,
)
from gateway.haystack.tz import UTC, hs_tz

__all__ = [
    "decode_grid",
    "decode_val",
    "encode_grid",
    "encode_grid_iter",
    "encode_val",
    "from_json",
    "grid_meta",
]

Data = bytes | bytearray | memoryview | str

_tuple_new = tuple.__new__
_fromisoformat = dt.datetime.fromisoformat
_datetime_cls = dt.datetime

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
    meta = grid_meta(obj)
    cols_json = member(obj, "cols", list, None)
    if rows is None:
        rows = member(obj, "rows", list, [])
        convert_rows(rows, _CONV.get)
    cols = read_cols(cols_json, _meta) if cols_json is not None else _cols_of_rows(rows)
    return Grid(cols, tuple(rows), meta)


def grid_meta(doc: dict[str, Any]) -> dict[str, Value]:
    """The meta of a parsed grid document as the reader gives it (``ver`` dropped);
    ``jsondoc.Invalid`` when malformed."""
    meta = _meta(doc)
    meta.pop("ver", None)
    return meta


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
