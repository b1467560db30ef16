"""Fast path of the JSON v4 reader: the rows of a grid whose rows all have one compact shape.

History reads and uniform point lists are large grids whose rows share one shape: the same keys
in the same order, each holding the same kind. For those, this module reads the rows without
building a JSON object per cell:

1. The first row is parsed and turned into a template: a regular expression with one group per
   variable field (``{"ts":{"_kind":"dateTime","val":"(...)","tz":"(...)"},...}``). Only simple
   fields take part (strings without escapes, JSON numbers, ISO dates and date-times, ref ids);
   a first row with anything else (nested values, escapes, INF...) means no template. Compact
   JSON is tried first (its regex is about twice as fast), then JSON with whitespace.
2. ``findall`` captures every further row in one C-level pass. Its pattern is "a row, or the
   whole rest of the text", so the matches cover the text without a gap: every row before the
   rest matched the template, and the array is complete exactly when the rest starts with ``]``.
3. Each column is converted with C-level ``map`` calls (``fromisoformat``, ``astimezone``,
   ``float``, tuple construction), and the row dicts are built by a generated function whose
   body is one dict display (:func:`bulk.row_builder`).

Any surprise (a row of another shape, an escaped string, an impossible date, an unknown time
zone) returns ``None`` and the general reader takes over, so errors are always reported by the
general reader with their position. The results equal the general reader's (the tests decode
the same documents both ways).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, Final

from gateway.haystack.codecs.bulk import row_builder
from gateway.haystack.kinds import MARKER, NA, REMOVE, Number, Ref, Symbol, Uri, Value
from gateway.haystack.tz import UTC, hs_tz

__all__ = ["MIN_ROWS", "decode_rows"]

#: Below this many rows the template costs more than it saves.
MIN_ROWS: Final = 32

_S: Final = r'"([^"\\\x00-\x1f]*)"'  # a string without escapes or control characters
_S1: Final = r'"([^"\\\x00-\x1f]+)"'  # the same, not empty (units, zone names)
_NUM: Final = r"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
_ID: Final = r'"([A-Za-z0-9_:\-.~]+)"'
_DATETIME: Final = (
    r'"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?'
    r'(?:Z|[+-][0-9]{2}:[0-9]{2}))"'
)
_DATE: Final = r'"([0-9]{4}-[0-9]{2}-[0-9]{2})"'
_WS: Final = r"[ \t\r\n]*"
_SPACE: Final = "\x00"  # where a template allows whitespace; no regex here contains NUL
_NAME_OK: Final = re.compile(r"[a-z][a-zA-Z0-9_]*").fullmatch
_INF: Final = float("inf")
_NINF: Final = float("-inf")

_tuple_new = tuple.__new__
_first_row_decoder = json.JSONDecoder()

# A column converter gets the captured texts of its fields (one tuple per field, one entry per
# row) and returns the column's values.
_Fields = Sequence[tuple[str, ...]]
_Convert = Callable[[_Fields], Iterable[Value]]


class _NoTemplate(Exception):  # a signal, never leaves this module
    """The rows have a shape this fast path does not handle."""


def decode_rows(text: str, start: int) -> tuple[list[dict[str, Value]], int] | None:
    """The rows of the array that starts at ``text[start]`` (a ``[``), and the offset after it.

    ``None`` when the array is not a run of same-shape rows this module can read; the caller
    then uses the general reader.
    """
    try:
        first, _ = _first_row_decoder.raw_decode(text, _skip_ws(text, start + 1))
        names, members, converters = _template(first)
    except (ValueError, _NoTemplate, RecursionError):
        return None
    # Compact JSON (what orjson-based writers send) first: its regex is about twice as fast.
    for ws in ("", _WS):
        row_re = _obj_re(members, ws)
        head = re.compile(rf"\[{ws}{row_re}").match(text, start)
        if head is not None:
            break
    else:
        return None
    # After the first row, each match is a row (",{...}", its fields as groups) or, once no
    # row matches, the whole rest of the text (the last group). So the matches tile the text
    # without a gap: the rows are contiguous, and the array ends right after them exactly when
    # the rest starts with "]".
    # (The rest is "(?s:.+)": with DOTALL the regex engine jumps to the end in one step.)
    matches = re.compile(rf"{ws},{ws}{row_re}|((?s:.+))").findall(text, head.end())
    rest = matches.pop()[-1] if matches else ""
    if len(matches) + 1 < MIN_ROWS or not rest.lstrip(" \t\r\n").startswith("]"):
        return None
    matches.insert(0, (*head.groups(), ""))
    try:
        rows = _build_rows(names, converters, list(zip(*matches, strict=True))[:-1], len(matches))
    except (ValueError, OverflowError, KeyError, _NoTemplate):
        return None
    return rows, _skip_ws(text, len(text) - len(rest)) + 1


def _build_rows(
    names: tuple[str, ...],
    converters: list[tuple[_Convert, int]],
    fields: _Fields,
    n: int,
) -> list[dict[str, Value]]:
    columns: list[Iterable[Value]] = []
    group = 0
    for convert, width in converters:
        if width == 0:
            columns.append(repeat(next(iter(convert(())), None), n))
        else:
            columns.append(convert(fields[group : group + width]))
        group += width
    return list(map(row_builder(names), *columns))


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _template(first: Any) -> tuple[tuple[str, ...], list[str], list[tuple[_Convert, int]]]:
    """The member regexes (``"name":value``, :data:`_SPACE` where whitespace may go) and the
    column converters for rows shaped like ``first``."""
    if first.__class__ is not dict or not first:
        raise _NoTemplate
    names: list[str] = []
    members: list[str] = []
    converters: list[tuple[_Convert, int]] = []
    for name, val in first.items():
        if not _NAME_OK(name):
            raise _NoTemplate
        cell_re, convert, width = _cell(val)
        names.append(name)
        members.append(f'"{name}"{_SPACE}:{_SPACE}{cell_re}')
        converters.append((convert, width))
    return tuple(names), members, converters


def _cell(val: Any) -> tuple[str, _Convert, int]:
    """(regex, converter, number of groups) for a cell shaped like ``val``."""
    cls = val.__class__
    if cls is str:
        return _S, _col_str, 1
    if cls is float or cls is int:
        return _NUM, _col_plain_number, 1
    if cls is bool:
        return "(true|false)", _col_bool, 1
    if val is None:
        return "null", _const(None), 0
    if cls is dict and next(iter(val), None) == "_kind" and val["_kind"].__class__ is str:
        # Keys in the order our writer (and haystack-py's) uses; any other order: no template.
        shape = _KIND_SHAPES.get((val["_kind"], *list(val)[1:]))
        if shape is not None:
            fields, convert = shape
            members = [f'"_kind"{_SPACE}:{_SPACE}"{val["_kind"]}"']
            members += [f'"{key}"{_SPACE}:{_SPACE}{field_re}' for key, field_re in fields]
            return _obj_re(members, _SPACE), convert, len(fields)
    raise _NoTemplate


def _obj_re(members: list[str], ws: str) -> str:
    """The regex of an object with these member regexes, ``ws`` where whitespace may go.

    ``ws`` is either :data:`_SPACE` (a placeholder, for templates) or the final regex, which
    then also replaces the placeholders inside the members.
    """
    return (r"\{" + ws + f"{ws},{ws}".join(members) + ws + r"\}").replace(_SPACE, ws)


def _const(value: Value) -> _Convert:
    return lambda _fields: (value,)


def _col_str(fields: _Fields) -> Iterable[Value]:
    return fields[0]


def _col_bool(fields: _Fields) -> Iterable[Value]:
    return map(_BOOLS.__getitem__, fields[0])


_BOOLS: Final = {"true": True, "false": False}


def _floats(texts: tuple[str, ...]) -> list[float]:
    # orjson refuses numbers that overflow to infinity; so does this path (the general reader
    # then reports the error).
    floats = list(map(float, texts))
    if _INF in floats or _NINF in floats:
        raise _NoTemplate
    return floats


def _col_plain_number(fields: _Fields) -> Iterable[Value]:
    return map(_tuple_new, repeat(Number), zip(_floats(fields[0]), repeat(None)))


def _col_number(fields: _Fields) -> Iterable[Value]:
    # {"_kind":"number","val":<finite>,"unit":"..."}; the writer puts unitless ones plain.
    return map(_tuple_new, repeat(Number), zip(_floats(fields[0]), fields[1], strict=True))


def _col_ref(fields: _Fields) -> Iterable[Value]:
    return map(_tuple_new, repeat(Ref), zip(fields[0], repeat(None)))


def _col_ref_dis(fields: _Fields) -> Iterable[Value]:
    return map(_tuple_new, repeat(Ref), zip(fields[0], fields[1], strict=True))


def _col_datetime(fields: _Fields) -> Iterable[Value]:
    texts, tz_names = fields
    stamps = list(map(dt.datetime.fromisoformat, texts))
    zones = {name: UTC if name == "UTC" else hs_tz(name) for name in set(tz_names)}
    if len(zones) == 1:
        return list(map(dt.datetime.astimezone, stamps, repeat(zones[tz_names[0]])))
    return list(map(dt.datetime.astimezone, stamps, map(zones.__getitem__, tz_names)))


def _col_date(fields: _Fields) -> Iterable[Value]:
    return list(map(dt.date.fromisoformat, fields[0]))


def _col_uri(fields: _Fields) -> Iterable[Value]:
    return map(_tuple_new, repeat(Uri), zip(fields[0]))


def _col_symbol(fields: _Fields) -> Iterable[Value]:
    return map(_tuple_new, repeat(Symbol), zip(fields[0]))


# (kind, other keys in order) -> (field regexes in that order, converter).
_KIND_SHAPES: Final[dict[tuple[str, ...], tuple[tuple[tuple[str, str], ...], _Convert]]] = {
    ("marker",): ((), _const(MARKER)),
    ("na",): ((), _const(NA)),
    ("remove",): ((), _const(REMOVE)),
    ("ref", "val"): ((("val", _ID),), _col_ref),
    ("ref", "val", "dis"): ((("val", _ID), ("dis", _S)), _col_ref_dis),
    ("number", "val", "unit"): ((("val", _NUM), ("unit", _S1)), _col_number),
    ("dateTime", "val", "tz"): ((("val", _DATETIME), ("tz", _S1)), _col_datetime),
    ("date", "val"): ((("val", _DATE),), _col_date),
    ("uri", "val"): ((("val", _S),), _col_uri),
    ("symbol", "val"): ((("val", _S1),), _col_symbol),
}
