"""Trio: Haystack records as hand-editable text, reader and writer.

A Trio document is a list of records separated by lines of three or more dashes. Each record
holds one tag per line: ``name: value`` with the value in Zinc syntax, or a bare ``name`` for a
Marker. Lines starting with ``//`` are comments. The point database of the appliance
(``/etc/hs-gateway/points/*.trio``) and the published Haystack defs are written this way.

What the reader accepts (the rules of the Trio chapter, read as leniently as Haxall does, since
these files are typed by people):

- ``true`` / ``false`` (and ``T`` / ``F``) are Bools; ``NA``, ``NaN``, ``INF``, ``R`` keywords.
- A value starting with a quote, a backtick, ``@``, ``^``, ``[``, ``{``, a digit or ``-``, or
  ending with ``)`` (Coord, XStr) is one Zinc value that must fill the rest of the line. Any other
  text is an unquoted Str (``dis: Site-3 Ahu-2``); a digit-led text with a space that is not a
  Zinc value is also a Str (``dis: 3rd Floor``), as Haxall reads it.
- ``name:`` at the end of a line starts a multi-line Str: the following indented (or blank)
  lines, with their common indentation removed, up to the first line that starts in column 1.
  Blank lines at its end are not part of it (Haxall keeps them as trailing newlines).
- ``name: Zinc:`` and ``name: Trio:`` start an indented block holding one Zinc value (a grid when
  it starts with ``ver:``) or one nested Trio record.
- ``name: [`` (or ``{``) starts a Zinc list (dict) continued on the indented lines below; lines
  inside it that start with ``//`` are comments, and the closing bracket may sit in column 1.

Everything malformed raises :class:`ParseError` with the line and column in the document.

The writer orders tags as Haxall does (``id``, ``name``, ``dis``, then the rest sorted), writes
strings without quotes when that reads back the same, multi-line strings as indented blocks and
grids (or collections holding grids) in ``Zinc:`` blocks. A record without tags cannot be
written in Trio, so such rows disappear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from gateway.haystack.codecs import zinc
from gateway.haystack.errors import ParseError
from gateway.haystack.grid import Grid, error_record_grid
from gateway.haystack.kinds import MARKER, NA, REMOVE, Number, Value

__all__ = ["decode_grid", "decode_records", "encode_grid", "encode_records"]

_NAME_RE: Final = re.compile(r"[a-z][a-zA-Z0-9_]*")
_SEPARATOR_RE: Final = re.compile(r"---+[ \t]*")
_INDENT: Final = " \t"
# First characters that make a value Zinc (digits and "-" are handled apart for leniency).
_ZINC_START: Final = frozenset('"`@^[{')
_DIGIT_START: Final = frozenset("0123456789-")
# A digit-led value that looks like a date or time is never demoted to a Str.
_TEMPORAL_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}:[0-9]{2}")
_KEYWORDS: Final[dict[str, Value]] = {
    "true": True,
    "false": False,
    "T": True,
    "F": False,
    "NA": NA,
    "NaN": Number(float("nan")),
    "INF": Number(float("inf")),
    "R": REMOVE,
}
_CLOSERS: Final = {"[": "]", "{": "}"}


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------


def decode_records(data: str | bytes) -> list[dict[str, Value]]:
    """Every record of a Trio document, in order."""
    text = _text_of(data)
    try:
        return _Reader(text.split("\n"), 0, 0).records()
    except RecursionError:
        raise ParseError("Trio blocks nested too deeply", 1, 1) from None


def decode_grid(data: str | bytes) -> Grid:
    """A Trio document as a grid: one row per record, columns in order of first appearance."""
    return Grid.from_rows(decode_records(data))


def _text_of(data: str | bytes) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            good = raw[: exc.start].decode("utf-8", "replace")
            line = good.count("\n") + 1
            col = len(good) - (good.rfind("\n") + 1) + 1
            raise ParseError(f"not UTF-8: {exc.reason}", line, col) from None
    elif isinstance(data, str):
        text = data
    else:
        raise ParseError(f"cannot read Trio from {type(data).__name__}", 1, 1)
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


class _Reader:
    """Reads records from lines; ``line0``/``col0`` place the lines inside the whole document.

    A nested ``Trio:`` block is read by another reader over its dedented lines, so its errors
    still point at the right line and column of the document.
    """

    __slots__ = ("col0", "index", "line0", "lines")

    def __init__(self, lines: list[str], line0: int, col0: int) -> None:
        self.lines = lines
        self.line0 = line0  # document line number of lines[0], minus one
        self.col0 = col0  # columns removed from the front of every line
        self.index = 0

    def error(self, msg: str, index: int, col: int = 1) -> ParseError:
        """A ParseError at ``lines[index]``, 1-based ``col`` within that line."""
        return ParseError(msg, self.line0 + index + 1, self.col0 + col)

    def records(self) -> list[dict[str, Value]]:
        records: list[dict[str, Value]] = []
        tags: dict[str, Value] = {}
        lines = self.lines
        while self.index < len(lines):
            index = self.index
            line = lines[index]
            self.index += 1
            if not line:
                continue
            first = line[0]
            if first == "-":
                if _SEPARATOR_RE.fullmatch(line) is None:
                    raise self.error("a record separator is a line of three or more dashes", index)
                if tags:
                    records.append(tags)
                    tags = {}
                continue
            stripped = line.lstrip(_INDENT)
            if not stripped or stripped.startswith("//"):
                continue
            if first in _INDENT:
                raise self.error("unexpected indentation: a tag starts in column 1", index)
            self.read_tag(line, index, tags)
        if tags:
            records.append(tags)
        return records

    def read_tag(self, line: str, index: int, tags: dict[str, Value]) -> None:
        """One ``name: value`` line (and the block that may follow it) into ``tags``."""
        colon = line.find(":")
        name = (line if colon < 0 else line[:colon]).rstrip(_INDENT)
        if _NAME_RE.fullmatch(name) is None:
            raise self.error(f"invalid tag name {name!r}", index)
        if name in tags:
            raise self.error(f"duplicate tag {name!r}", index)
        if colon < 0:
            tags[name] = MARKER
            return
        start = colon + 1
        while start < len(line) and line[start] in _INDENT:
            start += 1
        end = len(line.rstrip(_INDENT))
        tags[name] = self.read_value(line, start, max(start, end), index)

    def read_value(self, line: str, start: int, end: int, index: int) -> Value:
        """The value written at ``line[start:end]``, reading a block below it when it opens one."""
        text = line[start:end]
        if not text:
            return self.read_text_block()
        first = text[0]
        if first in _CLOSERS and len(text) == 1:
            return self.read_bracket_block(line, start, index)
        if first in _ZINC_START or text[-1] == ")":
            return self.scan_line(line, start, end, index)
        if first in _DIGIT_START:
            try:
                return self.scan_line(line, start, end, index)
            except ParseError:
                # Haxall reads digit-led text with a space as a Str ("3rd Floor"), but a
                # malformed date or time is an error worth reporting.
                if " " in text and _TEMPORAL_RE.match(text) is None:
                    return text
                raise
        keyword = _KEYWORDS.get(text, _KEYWORDS)
        if keyword is not _KEYWORDS:
            return keyword
        if text == "Zinc:":
            return self.read_zinc_block(index)
        if text == "Trio:":
            return self.read_trio_block(index)
        if text[-1] == ":":
            raise self.error(f"unknown block kind {text!r} (Zinc: or Trio:)", index, start + 1)
        return text

    def scan_line(self, line: str, start: int, end: int, index: int) -> Value:
        """One Zinc value that must fill ``line[start:end]``."""
        try:
            val, stop = zinc.scan_val(line, start)
        except ParseError as exc:
            raise self.error(exc.msg, index, exc.col) from None
        if stop != end:
            raise self.error("unexpected text after the value", index, stop + 1)
        return val

    def take_block(self) -> tuple[int, int]:
        """The index range of the indented (or blank) lines that follow the current tag."""
        first = self.index
        lines = self.lines
        i = first
        while i < len(lines) and (not lines[i] or lines[i][0] in _INDENT):
            i += 1
        self.index = i
        return first, i

    def dedent(self, first: int, stop: int) -> tuple[list[str], int]:
        """The block's lines without their common indentation or trailing blank lines."""
        lines = [line.rstrip(_INDENT) for line in self.lines[first:stop]]
        while lines and not lines[-1]:
            lines.pop()
        indent = min((len(line) - len(line.lstrip(_INDENT)) for line in lines if line), default=0)
        return [line[indent:] for line in lines], indent

    def read_text_block(self) -> str:
        first, stop = self.take_block()
        lines, _ = self.dedent(first, stop)
        return "\n".join(lines)

    def read_zinc_block(self, index: int) -> Value:
        first, stop = self.take_block()
        lines, indent = self.dedent(first, stop)
        if not lines:
            raise self.error("Zinc: needs an indented block below it", index)
        text = "\n".join(lines)
        try:
            if text.startswith("ver:"):
                return zinc.decode_grid(text)
            return zinc.decode_val(text)
        except ParseError as exc:
            line, col = self.line0 + first + exc.line, self.col0 + indent + exc.col
            raise ParseError(exc.msg, line, col) from None

    def read_trio_block(self, index: int) -> dict[str, Value]:
        first, stop = self.take_block()
        lines, indent = self.dedent(first, stop)
        records = _Reader(lines, self.line0 + first, self.col0 + indent).records()
        if len(records) != 1:
            raise self.error(f"Trio: needs one record below it, found {len(records)}", index)
        return records[0]

    def read_bracket_block(self, line: str, start: int, index: int) -> Value:
        """A Zinc list or dict opened at the end of the tag line and continued below it."""
        closer = _CLOSERS[line[start]]
        first, stop = self.take_block()
        lines = self.lines
        if stop < len(lines) and lines[stop].rstrip(_INDENT) == closer:
            stop += 1  # the closing bracket in column 1
            self.index = stop
        # Comment lines become blank lines, so that positions in the text stay true.
        body = ["" if ln.lstrip(_INDENT).startswith("//") else ln for ln in lines[first:stop]]
        text = "\n".join([line, *body])
        try:
            val, end = zinc.scan_val(text, start)
        except ParseError as exc:
            raise ParseError(exc.msg, self.line0 + index + exc.line, self.col0 + exc.col) from None
        if text[end:].strip(_INDENT + "\n"):
            rest = end + len(text[end:]) - len(text[end:].lstrip(_INDENT + "\n"))
            err = ParseError.at("unexpected text after the value", text, rest)
            raise ParseError(err.msg, self.line0 + index + err.line, self.col0 + err.col)
        return val


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------

# Text that a reader would take for something other than a Str when written without quotes.
_QUOTED_WORDS: Final = frozenset(
    ["true", "false", "T", "F", "M", "N", "NA", "NaN", "INF", "R", "Zinc", "Trio"]
)
_UNQUOTED_RE: Final = re.compile(r"[A-Za-z\u0080-\U0010ffff][A-Za-z0-9 _\-\u0080-\U0010ffff]*")
_FIRST_TAGS: Final = ("id", "name", "dis")


def encode_records(records: Iterable[Mapping[str, Value]]) -> str:
    """A Trio document of the records; tags whose value is None are left out."""
    out = [_encode_record(rec) for rec in records]
    return "---\n".join(text for text in out if text)


def encode_grid(grid: Grid) -> str:
    """A grid as Trio: one record per row; grid and column meta are dropped, except that an
    error grid is written as one record of its meta (``err``, ``dis``, ``errTrace``): an error
    must not read as an empty answer."""
    if grid.is_error:
        grid = error_record_grid(grid)
    return encode_records(grid.to_dicts())


def _encode_record(rec: Mapping[str, Value]) -> str:
    names = [n for n in _FIRST_TAGS if rec.get(n) is not None]
    names.extend(sorted(n for n, v in rec.items() if v is not None and n not in _FIRST_TAGS))
    lines: list[str] = []
    for name in names:
        if _NAME_RE.fullmatch(name) is None:
            raise ValueError(f"invalid tag name {name!r}")
        lines.append(_encode_tag(name, rec[name]))
    return "".join(lines)


def _encode_tag(name: str, val: Value) -> str:
    if val is MARKER:
        return name + "\n"
    if val is True or val is False:
        return f"{name}: {'true' if val else 'false'}\n"
    if isinstance(val, str):
        if "\n" not in val:
            if _unquoted_ok(val):
                return f"{name}: {val}\n"
            return f"{name}: {zinc.encode_val(val)}\n"
        if _block_ok(val):
            return f"{name}:\n" + _indent(val)
        return f"{name}: {zinc.encode_val(val)}\n"
    if _holds_grid(val):
        text = zinc.encode_grid(val) if isinstance(val, Grid) else zinc.encode_val(val)
        return f"{name}: Zinc:\n" + _indent(text.rstrip("\n"))
    return f"{name}: {zinc.encode_val(val)}\n"


def _indent(text: str) -> str:
    return "".join(("  " + line if line else "") + "\n" for line in text.split("\n"))


def _unquoted_ok(val: str) -> bool:
    """True when ``val`` written bare reads back as the same Str."""
    return (
        _UNQUOTED_RE.fullmatch(val) is not None
        and val[-1] != " "
        and val not in _QUOTED_WORDS
        and val.isprintable()
    )


def _block_ok(val: str) -> bool:
    """True when ``val`` written as an indented block reads back unchanged."""
    lines = val.split("\n")
    if not lines[-1] or not any(line and line[0] not in _INDENT for line in lines):
        return False  # a trailing newline or a common indentation would be lost
    return all(not line or (line.isprintable() and line[-1] != " ") for line in lines)


def _holds_grid(val: Value) -> bool:
    """True for a grid, or a list or dict with a grid somewhere inside (multi-line Zinc)."""
    if isinstance(val, Grid):
        return True
    if isinstance(val, list):
        return any(_holds_grid(v) for v in val)
    if isinstance(val, dict):
        return any(_holds_grid(v) for v in val.values())
    return False
