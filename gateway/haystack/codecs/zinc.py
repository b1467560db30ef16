"""Zinc: the Haystack grid text format, reader and writer.

Reader: ``decode_grid(text)`` for a whole document, ``decode_val(text)`` for one value, and
``scan_val(text, pos)`` for one value inside other text (the Trio reader and the filter parser use
it). The reader is lenient where real writers are sloppy: empty cells are null, ``Z`` without a
zone name, ``+00:00 UTC``, ``1.0E5``, CRLF line ends, trailing blank lines, ``h:mm`` times, 1-9
fraction digits, ``ver:"2.0"`` and the old ``Bin("...")``. Anything malformed raises
:class:`ParseError` with line and column; no other exception escapes.

Writer: ``encode_grid(grid)``, ``encode_grid_iter(grid)`` (UTF-8 chunks, for long responses) and
``encode_val(val)``, from :mod:`zinc_write`.

Speed: a long run of rows with one simple form per column (a history, a uniform point list, a
list of ids) is read by :mod:`zinc_rows` with one regex pass and whole-column conversions. Other
rows that hold no nested values or escapes are split with ``str.split`` and each cell is parsed
by first-character dispatch; the rest go through the general scanner. All paths give the same
values, and errors are always reported by the general ones, with their position.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Final

from gateway.haystack.codecs.common import parse_datetime, parse_time
from gateway.haystack.codecs.jsondoc import gc_paused
from gateway.haystack.codecs.zinc_rows import MIN_RUN, read_run
from gateway.haystack.codecs.zinc_write import ID_RE as _ID_RE
from gateway.haystack.codecs.zinc_write import NAME_RE as _NAME_RE
from gateway.haystack.codecs.zinc_write import UNIT_CHARS as _UNIT_CHARS
from gateway.haystack.codecs.zinc_write import encode_grid, encode_grid_iter, encode_val
from gateway.haystack.errors import HaystackError, ParseError
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

__all__ = [
    "decode_grid",
    "decode_val",
    "encode_grid",
    "encode_grid_iter",
    "encode_val",
    "scan_val",
]

_tuple_new = tuple.__new__
_NUMBER_NAN: Final = Number(math.nan)
_NUMBER_INF: Final = Number(math.inf)
_NUMBER_NINF: Final = Number(-math.inf)

# Whole-cell constants (also the keywords the scanner recognises).
_KEYWORDS: Final[dict[str, Value]] = {
    "N": None,
    "M": MARKER,
    "R": REMOVE,
    "NA": NA,
    "T": True,
    "F": False,
    "INF": _NUMBER_INF,
    "-INF": _NUMBER_NINF,
    "NaN": _NUMBER_NAN,
}

_WORD_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE: Final = re.compile(
    r"(-?(?:0x[0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?))"
    rf"([{_UNIT_CHARS}][{_UNIT_CHARS}0-9]*)?"
)
_DATETIME_RE: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2}(?::[0-9]{2})?))(?: ([A-Z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*))?"
)
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_RE: Final = re.compile(r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?")
_STR_PLAIN_RE: Final = re.compile(r'"([^"\\\n]*)"')
_SPACE_RE: Final = re.compile(r"[ \t]*")

_ESCAPES: Final = {
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    '"': '"',
    "\\": "\\",
    "$": "$",
    "`": "`",
}


class _Err(Exception):
    """Internal: a parse failure at ``pos`` (turned into ParseError with line/column)."""

    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.pos = pos


# ---------------------------------------------------------------------------------------------
# Scanner: one value at a position
# ---------------------------------------------------------------------------------------------


def scan_val(text: str, pos: int = 0) -> tuple[Value, int]:
    """Parse one Zinc value starting exactly at ``pos``; return it and the offset after it."""
    try:
        return _scan(text, pos)
    except _Err as exc:
        raise ParseError.at(exc.msg, text, exc.pos) from None
    except RecursionError:
        raise ParseError.at("value nested too deeply", text, pos) from None


def decode_val(text: str) -> Value:
    """Parse a text that holds exactly one Zinc value (spaces around it are allowed)."""
    start = _SPACE_RE.match(text, 0).end()  # type: ignore[union-attr]
    val, end = scan_val(text, start)
    end = _SPACE_RE.match(text, end).end()  # type: ignore[union-attr]
    if end != len(text):
        raise ParseError.at("unexpected text after the value", text, end)
    return val


def _scan(text: str, pos: int) -> tuple[Value, int]:
    if pos >= len(text):
        raise _Err("expected a value, found the end of the text", pos)
    ch = text[pos]
    handler = _DISPATCH.get(ch)
    if handler is None:
        if ch >= "\x80" or ch.isalpha():
            handler = _scan_word
        else:
            raise _Err(f"unexpected character {ch!r}", pos)
    return handler(text, pos)


def _scan_str(text: str, pos: int) -> tuple[str, int]:
    m = _STR_PLAIN_RE.match(text, pos)
    if m is not None:
        return m.group(1), m.end()
    return _scan_escaped(text, pos, '"')


def _scan_escaped(text: str, pos: int, quote: str) -> tuple[str, int]:
    """A quoted string with backslash escapes; ``quote`` is ``"`` (Str) or a backtick (Uri)."""
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while True:
        j = i
        while j < n and text[j] != quote and text[j] != "\\" and text[j] != "\n":
            j += 1
        out.append(text[i:j])
        if j >= n or text[j] == "\n":
            raise _Err("unterminated string" if quote == '"' else "unterminated uri", pos)
        if text[j] == quote:
            return "".join(out), j + 1
        # backslash
        if j + 1 >= n:
            raise _Err("unterminated string", pos)
        esc = text[j + 1]
        if esc == "u":
            code = _hex4(text, j)
            i = j + 6
            if 0xD800 <= code <= 0xDBFF and text.startswith("\\u", i):
                low = _hex4(text, i)
                if 0xDC00 <= low <= 0xDFFF:
                    # a UTF-16 pair written by a JSON-minded writer: one code point
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
            if 0xD800 <= code <= 0xDFFF:
                raise _Err("unpaired surrogate in \\u escape", j)
            out.append(chr(code))
            continue
        if quote == "`" and esc not in "`\\":
            # Uri: a backslash before anything but a backtick or a backslash is kept.
            out.append("\\" + esc)
            i = j + 2
            continue
        rep = _ESCAPES.get(esc)
        if rep is None:
            raise _Err(f"invalid escape \\{esc}", j)
        out.append(rep)
        i = j + 2


def _hex4(text: str, j: int) -> int:
    """The code of the ``\\uXXXX`` escape whose backslash is at ``j``."""
    digits = text[j + 2 : j + 6]
    if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise _Err("invalid \\u escape: four hex digits expected", j)
    return int(digits, 16)


def _scan_str_val(text: str, pos: int) -> tuple[Value, int]:
    return _scan_str(text, pos)


def _scan_uri(text: str, pos: int) -> tuple[Value, int]:
    val, end = _scan_escaped(text, pos, "`")
    return _tuple_new(Uri, (val,)), end


def _scan_ref(text: str, pos: int) -> tuple[Value, int]:
    m = _ID_RE.match(text, pos + 1)
    if m is None:
        raise _Err("invalid ref: expected an id after @", pos)
    end = m.end()
    dis = None
    # Haystack 3 form: @id "dis"
    if text.startswith(' "', end):
        dis, end = _scan_str(text, end + 1)
    return _tuple_new(Ref, (m.group(), dis)), end


def _scan_symbol(text: str, pos: int) -> tuple[Value, int]:
    m = _ID_RE.match(text, pos + 1)
    if m is None:
        raise _Err("invalid symbol: expected a name after ^", pos)
    return _tuple_new(Symbol, (m.group(),)), m.end()


def _scan_digits(text: str, pos: int) -> tuple[Value, int]:
    # Digit-led: DateTime, Date, Time or Number (in that order of specificity).
    if text.startswith("-INF", pos):
        return _NUMBER_NINF, pos + 4
    m = _DATETIME_RE.match(text, pos)
    if m is not None:
        iso, _offset, tz_name = m.groups()
        try:
            return parse_datetime(iso, tz_name), m.end()
        except (ValueError, HaystackError) as exc:
            raise _Err(f"invalid date-time: {exc}", pos) from None
    m = _DATE_RE.match(text, pos)
    if m is not None:
        try:
            return dt.date.fromisoformat(m.group()), m.end()
        except ValueError:
            raise _Err(f"invalid date {m.group()!r}", pos) from None
    m = _TIME_RE.match(text, pos)
    if m is not None and not _time_tail(text, m.end()):
        try:
            return parse_time(m.group()), m.end()
        except ValueError:
            raise _Err(f"invalid time {m.group()!r}", pos) from None
    m = _NUMBER_RE.match(text, pos)
    if m is None:
        raise _Err("invalid number", pos)
    num, unit = m.groups()
    try:
        if "x" in num:
            val = float(int(num.replace("_", ""), 16))
        else:
            val = float(num.replace("_", "") if "_" in num else num)
    except ValueError:
        raise _Err(f"invalid number {num!r}", pos) from None
    return _tuple_new(Number, (val, unit)), m.end()


def _time_tail(text: str, end: int) -> bool:
    # "12:30" is a time; "12:30xyz" is not a valid token either way.
    return end < len(text) and (text[end].isalnum() or text[end] in "._")


def _scan_word(text: str, pos: int) -> tuple[Value, int]:
    m = _WORD_RE.match(text, pos)
    if m is None:
        raise _Err(f"unexpected character {text[pos]!r}", pos)
    word = m.group()
    end = m.end()
    if word in _KEYWORDS:
        return _KEYWORDS[word], end
    if word == "C" and text.startswith("(", end):
        return _scan_coord(text, pos, end)
    if word[0].isupper() and text.startswith("(", end):
        return _scan_xstr(text, pos, word, end)
    raise _Err(f"unexpected word {word!r}", pos)


def _scan_coord(text: str, pos: int, paren: int) -> tuple[Value, int]:
    close = text.find(")", paren)
    if close < 0:
        raise _Err("unterminated coord", pos)
    parts = text[paren + 1 : close].split(",")
    if len(parts) != 2:
        raise _Err("a coord needs two numbers: C(lat,lng)", pos)
    try:
        return Coord(float(parts[0]), float(parts[1])), close + 1
    except ValueError as exc:
        raise _Err(f"invalid coord: {exc}", pos) from None


def _scan_xstr(text: str, pos: int, type_name: str, paren: int) -> tuple[Value, int]:
    if type_name == "Bin" and not text.startswith('"', paren + 1):
        # Haystack 2 wrote Bin(text/plain) without quotes.
        close = text.find(")", paren)
        if close < 0 or "\n" in text[paren:close]:
            raise _Err("unterminated Bin(...)", pos)
        return XStr("Bin", text[paren + 1 : close]), close + 1
    if not text.startswith('"', paren + 1):
        raise _Err(f"{type_name}(...) needs a quoted string", pos)
    val, end = _scan_str(text, paren + 1)
    if not text.startswith(")", end):
        raise _Err(f"unterminated {type_name}(...)", pos)
    return XStr(type_name, val), end + 1


def _skip_space(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    return pos


def _skip_space_nl(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\n":
        pos += 1
    return pos


def _scan_list(text: str, pos: int) -> tuple[Value, int]:
    items: list[Value] = []
    i = _skip_space_nl(text, pos + 1)
    while True:
        if i >= len(text):
            raise _Err("unterminated list", pos)
        if text[i] == "]":
            return items, i + 1
        val, i = _scan(text, i)
        items.append(val)
        i = _skip_space_nl(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_space_nl(text, i + 1)
        elif i < len(text) and text[i] != "]":
            raise _Err("expected , or ] in list", i)


def _scan_dict(text: str, pos: int) -> tuple[Value, int]:
    tags, end = _scan_tags(text, pos + 1, "}")
    return tags, end


def _scan_tags(text: str, pos: int, close: str | None) -> tuple[dict[str, Value], int]:
    """Tags ``name`` or ``name:val`` separated by spaces or commas, up to ``close``.

    With ``close=None`` (grid meta, column meta) the tags end at a newline or a comma that
    is not followed by a tag, which is left for the caller.
    """
    tags: dict[str, Value] = {}
    i = pos
    n = len(text)
    while True:
        i = _skip_space(text, i) if close is None else _skip_space_nl(text, i)
        if i >= n:
            if close is None:
                return tags, i
            raise _Err("unterminated dict", pos - 1)
        ch = text[i]
        if close is not None and ch == close:
            return tags, i + 1
        if close is None and ch in ",\n":
            return tags, i
        if close is not None and ch == ",":
            i += 1
            continue
        m = _NAME_RE.match(text, i)
        if m is None:
            raise _Err(f"expected a tag name, found {ch!r}", i)
        name = m.group()
        i = m.end()
        if i < n and text[i] == ":":
            val, i = _scan(text, _skip_space(text, i + 1))
            tags[name] = val
        else:
            tags[name] = MARKER


def _scan_nested_grid(text: str, pos: int) -> tuple[Value, int]:
    if not text.startswith("<<", pos):
        raise _Err("unexpected character '<'", pos)
    grid, end = _read_grid(text, _skip_space_nl(text, pos + 2), nested=True)
    return grid, end


_DISPATCH: Final[dict[str, Callable[[str, int], tuple[Value, int]]]] = {
    '"': _scan_str_val,
    "`": _scan_uri,
    "@": _scan_ref,
    "^": _scan_symbol,
    "[": _scan_list,
    "{": _scan_dict,
    "<": _scan_nested_grid,
    "-": _scan_digits,
    **dict.fromkeys("0123456789", _scan_digits),
}

# ---------------------------------------------------------------------------------------------
# Grid reader
# ---------------------------------------------------------------------------------------------

# Characters that send a row to the general scanner: nested values, escapes, uris, parens.
_SLOW_ROW_RE: Final = re.compile(r"[\[{<(`\\]")
_MISSING: Final = object()


def decode_grid(data: str | bytes) -> Grid:
    """Read a whole Zinc document into a Grid."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not UTF-8: {exc.reason} at byte {exc.start}", 1, 1) from None
    elif isinstance(data, str):
        text = data
    else:
        raise ParseError(f"cannot read Zinc from {type(data).__name__}", 1, 1)
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        with gc_paused():  # a grid is many new acyclic objects (see jsondoc.gc_paused)
            grid, end = _read_grid(text, _skip_space_nl(text, 0), nested=False)
    except _Err as exc:
        raise ParseError.at(exc.msg, text, exc.pos) from None
    except RecursionError:
        raise ParseError("grid nested too deeply", 1, 1) from None
    rest = _skip_space_nl(text, end)
    if rest < len(text):
        raise ParseError.at("unexpected text after the grid", text, rest)
    return grid


def _read_grid(text: str, pos: int, *, nested: bool) -> tuple[Grid, int]:
    i = pos
    if not text.startswith("ver:", i):
        raise _Err('a grid starts with ver:"3.0"', i)
    ver, i = _scan(text, i + 4)
    if ver not in ("3.0", "2.0"):
        raise _Err(f'unsupported Zinc version {encode_val(ver)}: expected ver:"3.0"', pos + 4)
    meta, i = _scan_tags(text, i, None)
    i = _expect_newline(text, i)
    cols, i = _read_cols(text, i)
    names = [c.name for c in cols]
    if nested:
        rows, i = _read_nested_rows(text, i, names, pos)
    else:
        rows, i = _read_rows(text, i, names)
    return Grid(cols, tuple(rows), meta), i


def _read_rows(text: str, pos: int, names: list[str]) -> tuple[list[dict[str, Value]], int]:
    """The rows of a top-level grid, from ``pos`` to a blank line or the end.

    Runs of rows of one form go through :func:`zinc_rows.read_run`; after a run, the line
    that ended it is read here, and the next run starts after it. Once a run comes out short
    (no template, or rows of changing forms), the rest is read line by line.
    """
    rows: list[dict[str, Value]] = []
    n = len(text)
    while _has_lines(text, pos, MIN_RUN):
        run, pos = read_run(text, pos, names)
        rows += run
        if len(run) < MIN_RUN or pos >= n:
            break
        nl = text.find("\n", pos)
        line = text[pos : nl if nl >= 0 else n]
        if not line or line.isspace():
            return rows, pos
        row = _simple_row(line, names)
        if row is None:
            row, pos = _read_row_slow(text, pos, names)
        else:
            pos = n if nl < 0 else nl + 1
        rows.append(row)
    rest, end = _read_rows_by_line(text, pos, names)
    return rows + rest if rows else rest, end


def _has_lines(text: str, pos: int, count: int) -> bool:
    """Whether ``count`` more lines end after ``pos`` (fewer: no run worth a template)."""
    for _ in range(count):
        pos = text.find("\n", pos) + 1
        if not pos:
            return False
    return True


def _read_rows_by_line(text: str, pos: int, names: list[str]) -> tuple[list[dict[str, Value]], int]:
    rows: list[dict[str, Value]] = []
    append = rows.append
    lines = text[pos:].split("\n")
    offset = pos  # absolute offset of lines[index]
    index = 0
    count = len(lines)
    while index < count:
        line = lines[index]
        if not line or line.isspace():
            break  # a blank line ends the grid; the caller checks the rest
        row = _simple_row(line, names)
        if row is None:
            row, end = _read_row_slow(text, offset, names)
            # continue with the line that starts at `end` (a nested grid spans lines)
            index += text.count("\n", offset, end)
            if end >= len(text) or text[end - 1] != "\n":
                index += 1
            offset = end
        else:
            offset += len(line) + 1
            index += 1
        append(row)
    return rows, min(offset, len(text))


def _read_nested_rows(
    text: str, pos: int, names: list[str], grid_pos: int
) -> tuple[list[dict[str, Value]], int]:
    rows: list[dict[str, Value]] = []
    i = pos
    n = len(text)
    while i < n:
        j = _skip_space_nl(text, i)
        if text.startswith(">>", j):
            return rows, j + 2
        nl = text.find("\n", i)
        if nl < 0:
            nl = n
        line = text[i:nl]
        if not line.strip():
            i = nl + 1
            continue
        row = _simple_row(line, names)
        if row is None:
            row, i = _read_row_slow(text, i, names)
        else:
            i = nl + 1
        rows.append(row)
    raise _Err("unterminated nested grid (missing >>)", grid_pos)


def _simple_row(line: str, names: list[str]) -> dict[str, Value] | None:
    """A row without nesting or escapes, or None when the general scanner must read it.

    Cells are split on commas (after checking that no string holds one) and each cell is
    parsed whole by its first character. Errors here also return None, so the general
    scanner, which knows the positions, reports them.
    """
    if _SLOW_ROW_RE.search(line) is not None:
        return None
    if '"' in line:
        parts = line.split('"')
        if not len(parts) % 2 or "," in "".join(parts[1::2]):
            return None  # unterminated string, or a comma inside one
    cells = line.split(",")
    if len(cells) != len(names):
        return None
    row: dict[str, Value] = {}
    keywords = _CELL_KEYWORDS
    parsers = _CELL_PARSERS
    try:
        for name, cell in zip(names, cells, strict=True):
            val = keywords.get(cell, _MISSING)
            if val is _MISSING:
                val = parsers.get(cell[0], _cell_general)(cell)
            if val is not None:
                row[name] = val
    except (_Err, ValueError, HaystackError):
        return None
    return row


def _cell_str(cell: str) -> Value:
    if cell[-1] != '"' or cell.count('"') != 2 or "\n" in cell:
        raise _Err("bad string", 0)
    return cell[1:-1]


def _cell_ref(cell: str) -> Value:
    space = cell.find(" ")
    if space < 0:
        ref_id, dis = cell[1:], None
    else:
        ref_id = cell[1:space]
        if not cell.startswith('"', space + 1) or cell[-1] != '"' or space + 2 > len(cell) - 1:
            raise _Err("bad ref", 0)
        dis = cell[space + 2 : -1]
    if _ID_RE.fullmatch(ref_id) is None:
        raise _Err("bad ref", 0)
    return _tuple_new(Ref, (ref_id, dis))


_NUMBER_FULL_RE: Final = re.compile(
    r"(-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?)"
    rf"([{_UNIT_CHARS}][{_UNIT_CHARS}0-9]*)?"
)


def _cell_digits(cell: str) -> Value:
    if len(cell) >= 10 and cell[4] == "-":
        if len(cell) == 10:
            return dt.date.fromisoformat(cell)
        space = cell.find(" ")
        if space < 0:
            return parse_datetime(cell, None)
        return parse_datetime(cell[:space], cell[space + 1 :])
    if cell[1:3].find(":") >= 0:
        return parse_time(cell)
    m = _NUMBER_FULL_RE.fullmatch(cell)
    if m is None:
        raise _Err("bad number", 0)
    num, unit = m.groups()
    return _tuple_new(Number, (float(num), unit))


def _cell_general(cell: str) -> Value:
    # Leading/trailing spaces, symbols, uncommon words: the general scanner, whole cell.
    c = cell.strip(" \t")
    if not c:
        return None
    if c in _KEYWORDS:
        return _KEYWORDS[c]
    val, end = _scan(c, 0)
    if end != len(c):
        raise _Err("unexpected text in cell", end)
    return val


_CELL_KEYWORDS: Final[dict[str, Value]] = {**_KEYWORDS, "": None}
_CELL_PARSERS: Final[dict[str, Callable[[str], Value]]] = {
    '"': _cell_str,
    "@": _cell_ref,
    "-": _cell_digits,
    **dict.fromkeys("0123456789", _cell_digits),
    " ": _cell_general,
    "\t": _cell_general,
    "^": _cell_general,
    **dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZ", _cell_general),
}


def _read_row_slow(text: str, pos: int, names: list[str]) -> tuple[dict[str, Value], int]:
    row: dict[str, Value] = {}
    i = pos
    n = len(text)
    for index, name in enumerate(names):
        i = _skip_space(text, i)
        if i < n and text[i] not in ",\n":
            val, i = _scan(text, i)
            row[name] = val
            i = _skip_space(text, i)
        last = index == len(names) - 1
        if last:
            if i < n and text[i] != "\n":
                raise _Err("expected the end of the row", i)
            return row, min(i + 1, n)
        if i >= n or text[i] != ",":
            raise _Err(f"row has fewer cells than the grid's {len(names)} columns", i)
        i += 1
    raise _Err("grid without columns", pos)


def _expect_newline(text: str, i: int) -> int:
    i = _skip_space(text, i)
    if i < len(text) and text[i] == "\n":
        return i + 1
    if i >= len(text):
        raise _Err("unexpected end of grid: expected the column line", i)
    raise _Err(f"expected a newline, found {text[i]!r}", i)


# A column line of bare names (no column meta): split, no scanning.
_PLAIN_COLS_RE: Final = re.compile(r"[a-z][a-zA-Z0-9_]*(?:,[a-z][a-zA-Z0-9_]*)*")


def _read_cols(text: str, pos: int) -> tuple[list[Col], int]:
    nl = text.find("\n", pos)
    end = len(text) if nl < 0 else nl
    if _PLAIN_COLS_RE.fullmatch(text, pos, end) is not None:
        names = text[pos:end].split(",")
        if len(set(names)) == len(names):  # else the general loop reports the duplicate
            return [Col(name) for name in names], end if nl < 0 else nl + 1
    cols: list[Col] = []
    seen: set[str] = set()
    i = pos
    n = len(text)
    while True:
        i = _skip_space(text, i)
        m = _NAME_RE.match(text, i)
        if m is None:
            raise _Err("expected a column name", i)
        name = m.group()
        if name in seen:
            raise _Err(f"duplicate column {name!r}", i)
        seen.add(name)
        meta, i = _scan_tags(text, m.end(), None)
        cols.append(Col(name, meta))
        if i < n and text[i] == ",":
            i += 1
            continue
        if i >= n:
            return cols, i
        return cols, i + 1  # the newline
