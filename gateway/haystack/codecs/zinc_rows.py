"""Fast path of the Zinc reader: runs of rows whose cells have one simple form per column.

A history (``ts,val``: a date-time with its zone, a Number with its unit), a uniform point
list, the ids of a read or a watch subscription (one column of Refs): large grids are long runs
of rows that, column by column, hold one kind written one way. For those, this module:

1. infers a row template from the first row's cells (by their first character): a regex with
   one group per variable field. Only simple forms take part: Refs with or without a display
   string, Strs without escapes, Numbers with or without a unit, Dates, DateTimes with a zone
   name, Markers, Bools and empty cells; a first row with anything else means no template;
2. captures the rows with ``findall`` over a window of lines. The pattern is "a row, or the
   rest of the window", so the matches tile the window without a gap: the rows before the rest
   all fit the template. Windows double while every line fits, so the line that does not fit
   costs at most the window it ends;
3. converts each column with C-level ``map`` calls (``fromisoformat`` and ``astimezone`` with
   one zone look-up per zone name, ``float``, tuple construction) and builds the row dicts with
   a generated function (:func:`bulk.row_builder`).

The first line that does not fit, and a window whose values a converter refuses (an impossible
date, an unknown zone, a fraction ``fromisoformat`` does not take), are left to the general
reader, which gives the same values for what this module reads and reports errors with their
position (the tests decode the same documents both ways).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Final

from gateway.haystack.codecs.bulk import row_builder
from gateway.haystack.codecs.zinc_write import ID_RE, UNIT_CHARS
from gateway.haystack.errors import HaystackError
from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.haystack.tz import UTC, hs_tz

__all__ = ["DATETIME_GROUPS", "MIN_RUN", "NUMBER_GROUPS", "read_run"]

#: Fewer rows than this are not worth a template.
MIN_RUN: Final = 16

_U: Final = UNIT_CHARS  # the general reader's unit and id characters
_ID: Final = rf"({ID_RE.pattern})"
_STR: Final = r'"([^"\\\n]*)"'
# A unit never starts with "_" here: after a digit the general reader takes "_" as a digit
# separator ("1_000", even "0_"), so such a cell is left to it.
_U_FIRST: Final = UNIT_CHARS.replace("_", "")
NUMBER_GROUPS: Final = rf"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)((?:[{_U_FIRST}][{_U}0-9]*)?)"
_DATE: Final = r"([0-9]{4}-[0-9]{2}-[0-9]{2})"
DATETIME_GROUPS: Final = (
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})) ([A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*)"
)
_DATETIME_CELL: Final = re.compile(DATETIME_GROUPS + r"\Z")
_FIRST_WINDOW: Final = 8 * 1024
_MAX_WINDOW: Final = 1024 * 1024

_tuple_new = tuple.__new__
_fromisoformat = dt.datetime.fromisoformat
_astimezone = dt.datetime.astimezone
_date_fromisoformat = dt.date.fromisoformat

_Fields = Sequence[tuple[str, ...]]  # the captured texts of a column's groups, one per row
_Convert = Callable[[_Fields], Iterable[Value]]


def read_run(text: str, pos: int, names: list[str]) -> tuple[list[dict[str, Value]], int]:
    """The rows from ``pos`` (the start of a row line) that fit the first one's template, and
    the offset after them; no rows (and ``pos``) when there is no template."""
    nl = text.find("\n", pos)
    template = _template(text[pos : nl if nl >= 0 else len(text)], names)
    if template is None:
        return [], pos
    row_re, converters, kept = template
    # A row, or the rest of the window: the matches tile the window.
    pattern = re.compile(row_re + r"\n|((?s:.+))")
    build = row_builder(kept)
    rows: list[dict[str, Value]] = []
    window = _FIRST_WINDOW
    n = len(text)
    while pos < n:
        end = text.find("\n", pos + window)
        end = n if end < 0 else end + 1
        matches = pattern.findall(text, pos, end)
        rest = matches.pop()[-1] if matches and matches[-1][-1] else ""
        if matches:
            try:
                columns = _columns(converters, list(zip(*matches, strict=True)), len(matches))
            except (ValueError, OverflowError, HaystackError):
                break  # the general reader reads (or rejects) these rows
            if len(kept) == 1:  # ids (a read, a watchSub): no call per row
                key = kept[0]
                rows += [{key: v} for v in columns[0]]
            else:
                rows += map(build, *columns)
        if rest:
            return rows, end - len(rest)
        pos = end
        window = min(window * 2, _MAX_WINDOW)
    return rows, pos


def _template(
    line: str, names: list[str]
) -> tuple[str, list[tuple[_Convert, int]], tuple[str, ...]] | None:
    """The row regex, the column converters (with their number of groups) and the names of
    the columns that hold values, for rows written like ``line``; None if no template fits."""
    if '"' in line:
        # Commas inside strings do not separate cells: only the cells' forms matter here.
        pieces = line.split('"')
        pieces[1::2] = [piece.replace(",", ";") for piece in pieces[1::2]]
        line = '"'.join(pieces)
    cells = line.split(",")
    if len(cells) != len(names) or not line:
        return None
    parts: list[str] = []
    converters: list[tuple[_Convert, int]] = []
    kept: list[str] = []
    for name, cell in zip(names, cells, strict=True):
        found = _cell(cell)
        if found is None:
            return None
        cell_re, convert, width = found
        parts.append(cell_re)
        if convert is not None:
            converters.append((convert, width))
            kept.append(name)
    if not any(width for _, width in converters):
        return None  # nothing to capture: a run of constants is left to the general reader
    return ",".join(parts), converters, tuple(kept)


def _cell(cell: str) -> tuple[str, _Convert | None, int] | None:
    """(regex, converter or None for a null cell, number of groups) of a cell like ``cell``."""
    if cell in _CONSTANTS:
        return _CONSTANTS[cell]
    first = cell[0]
    if first == '"':
        return _STR, _col_str, 1
    if first == "@":
        if " " in cell:
            return rf"@{_ID} {_STR}", _col_ref_dis, 2
        return rf"@{_ID}", _col_ref, 1
    if first in "-0123456789":
        if len(cell) == 10 and cell[4] == "-":
            return _DATE, _col_date, 1
        if len(cell) > 10 and cell[4] == "-":
            if _DATETIME_CELL.match(cell) is None:
                return None
            return DATETIME_GROUPS, _col_datetime, 2
        if ":" in cell:
            return None  # a time
        return NUMBER_GROUPS, _col_number, 2
    return None


def _const(value: Value) -> _Convert:
    return lambda _fields: repeat(value)


_BOOLS: Final = {"T": True, "F": False}
_CONSTANTS: Final[dict[str, tuple[str, _Convert | None, int]]] = {
    "": ("", None, 0),
    "N": ("N", None, 0),
    "M": ("M", _const(MARKER), 0),
    "T": ("([TF])", lambda fields: map(_BOOLS.__getitem__, fields[0]), 1),
    "F": ("([TF])", lambda fields: map(_BOOLS.__getitem__, fields[0]), 1),
}


def _columns(
    converters: list[tuple[_Convert, int]], fields: _Fields, n: int
) -> list[Iterable[Value]]:
    columns: list[Iterable[Value]] = []
    group = 0
    for convert, width in converters:
        if width:
            columns.append(convert(fields[group : group + width]))
            group += width
        else:
            columns.append(repeat(next(iter(convert(()))), n))
    return columns


def _col_str(fields: _Fields) -> Iterable[Value]:
    return fields[0]


def _col_ref(fields: _Fields) -> Iterable[Value]:
    return list(map(_tuple_new, repeat(Ref), zip(fields[0], repeat(None))))


def _col_ref_dis(fields: _Fields) -> Iterable[Value]:
    return list(map(_tuple_new, repeat(Ref), zip(fields[0], fields[1], strict=True)))


def _col_number(fields: _Fields) -> Iterable[Value]:
    texts, units = fields
    floats = list(map(float, texts))
    unit_of = {u: u or None for u in set(units)}
    if len(unit_of) == 1:
        pairs = zip(floats, repeat(unit_of[units[0]]))
    else:
        pairs = zip(floats, map(unit_of.__getitem__, units), strict=True)
    return list(map(_tuple_new, repeat(Number), pairs))


def _col_date(fields: _Fields) -> Iterable[Value]:
    return list(map(_date_fromisoformat, fields[0]))


def _col_datetime(fields: _Fields) -> Iterable[Value]:
    texts, tz_names = fields
    stamps = list(map(_fromisoformat, texts))
    zones = {name: UTC if name == "UTC" else hs_tz(name) for name in set(tz_names)}
    if len(zones) == 1:
        return list(map(_astimezone, stamps, repeat(zones[tz_names[0]])))
    return list(map(_astimezone, stamps, map(zones.__getitem__, tz_names)))
