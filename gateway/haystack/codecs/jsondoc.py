"""The JSON layer under the Haystack JSON codecs (v3 and v4): parsing, writing, error positions.

Both codecs parse the whole document with ``orjson`` (C speed, strict RFC 8259, depth limit 1024)
and then turn the plain JSON objects into Haystack values. A malformed document is reported as a
``ParseError`` with orjson's line and column; a well-formed document with the wrong structure (a
row that is not an object, an unknown ``_kind``, a bad date...) is reported by the codec through
:class:`Invalid`, whose JSON path this module maps back to a line and column of the text, so the
fast path never tracks positions.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import orjson

from gateway.haystack.errors import ParseError
from gateway.haystack.grid import Col

__all__ = [
    "Invalid",
    "dump",
    "gc_paused",
    "invalid_to_parse_error",
    "load",
    "locate",
    "unexpected_error",
]


class Invalid(Exception):  # internal signal, never escapes a decoder
    """A structural error found while converting parsed JSON (caught and mapped by the codec).

    ``path`` is filled in on the way up (innermost first) by the containers that hold the bad
    value; the try blocks that do it cost nothing until something fails.
    """

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg
        self.path: list[str | int] = []


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a document is converted.

    A decoded grid is hundreds of thousands of new, acyclic containers (row dicts, Number and
    Ref tuples); the generational collector would traverse them again and again while they are
    built (a third of the decode time of a 100,000-row history). Nothing a decoder builds is
    cyclic, so pausing loses nothing; the collector runs as usual afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: A valid Haystack tag name.
NAME_OK: Final = re.compile(r"[a-z][a-zA-Z0-9_]*").fullmatch


def member(obj: dict[str, Any], key: str, cls: type, default: Any) -> Any:
    """``obj[key]`` when it is of JSON type ``cls`` (``default`` when absent), else Invalid."""
    val = obj.get(key)
    if val is None:
        return default
    if val.__class__ is not cls:
        err = Invalid(f"{key!r} must be a JSON {'object' if cls is dict else 'array'}")
        err.path.append(key)
        raise err
    return val


def read_cols(
    cols_json: list[Any], meta_of: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[Col]:
    """The columns of a grid's ``cols`` array; ``meta_of`` reads a column object's meta."""
    cols: list[Col] = []
    seen: set[str] = set()
    for index, col in enumerate(cols_json):
        try:
            if col.__class__ is not dict:
                raise Invalid("a column must be a JSON object")
            name = col.get("name")
            if name.__class__ is not str or not NAME_OK(name):
                raise Invalid(f"invalid column name {name!r}")
            if name in seen:
                raise Invalid(f"duplicate column {name!r}")
            seen.add(name)
            cols.append(Col(name, meta_of(col)))
        except Invalid as err:
            err.path += [index, "cols"]
            raise
    return cols


def convert_rows(rows: list[Any], conv_of: Callable[[type], Callable[[Any], Any] | None]) -> None:
    """Convert parsed rows in place: each cell whose JSON type ``conv_of`` maps is replaced.

    Replacing the value of an existing key never resizes a dict, so it is safe while
    iterating; an error names the row and the cell.
    """
    for index, row in enumerate(rows):
        if row.__class__ is not dict:
            err = Invalid("a row must be a JSON object")
            err.path += [index, "rows"]
            raise err
        for name, val in row.items():
            conv = conv_of(val.__class__)
            if conv is not None:
                try:
                    row[name] = conv(val)
                except Invalid as err:
                    err.path += [name, index, "rows"]
                    raise


def load(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse a JSON document; ParseError (line, column) when it is not valid JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _decode_error(data, exc) from None
    except TypeError:
        raise ParseError(f"cannot decode JSON from {data.__class__.__name__}") from None


def _decode_error(
    data: bytes | bytearray | memoryview | str, exc: orjson.JSONDecodeError
) -> ParseError:
    # orjson reports encoding errors at offset 0; find the real offending byte or character.
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as uerr:
            return ParseError.at("text is not valid UTF-8 (lone surrogate)", data, uerr.start)
    else:
        raw = bytes(data)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uerr:
            text = raw[: uerr.start].decode("utf-8", "replace")
            return ParseError.at("input is not valid UTF-8", text, len(text))
    return ParseError(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno)


def dump(obj: Any, default: Callable[[Any], Any]) -> bytes:
    """Serialize with a ``default`` hook for the Haystack kinds (dates and times included).

    An error raised by the hook comes out as itself (TypeError for a value that is not a
    Haystack value, ValueError for one that cannot be written); orjson's own refusals (a str
    with a lone surrogate, a non-str dict key, nesting deeper than it allows) as ValueError.
    """
    try:
        return orjson.dumps(obj, default=default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, (TypeError, ValueError)):
            raise cause from None
        raise ValueError(f"cannot write JSON: {exc}") from None


def invalid_to_parse_error(err: Invalid, data: bytes | bytearray | memoryview | str) -> ParseError:
    """The ParseError for a structural error, positioned at the offending value."""
    path = list(reversed(err.path))
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    msg = f"{err.msg} at {where}" if where else err.msg
    try:
        pos = locate(text, path)
    except Exception:  # a best-effort position must never hide the real error
        pos = 0
    return ParseError.at(msg, text, pos)


def unexpected_error(exc: BaseException) -> ParseError:
    """The ParseError for an error no codec check anticipated (deep nesting, overflow...)."""
    if isinstance(exc, RecursionError):
        return ParseError("values nested too deeply")
    return ParseError(f"invalid Haystack JSON: {exc.__class__.__name__}: {exc}")


# -- mapping a JSON path to an offset of the text (error path only) --------------------------

_WS: Final = re.compile(r"[ \t\r\n]*")
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR: Final = re.compile(r"[^,\]\}\s]+")


def locate(text: str, path: list[str | int]) -> int:
    """Offset of the value at ``path`` (object keys and array indexes) in valid JSON text.

    Stops at the deepest part of the path it can find; 0 when the text is not what it expects.
    """
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    for step in path:
        found = _find_member(text, pos, step)
        if found is None:
            return pos
        pos = found
    return pos


def _find_member(text: str, pos: int, step: str | int) -> int | None:
    """Offset of member ``step`` of the object or array starting at ``pos``."""
    if pos >= len(text):
        return None
    opener = text[pos]
    if opener not in "[{" or (opener == "[") != isinstance(step, int):
        return None
    pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    index = 0
    while pos < len(text) and text[pos] not in "]}":
        if opener == "{":
            m = _STRING.match(text, pos)
            if m is None:
                return None
            key = orjson.loads(m.group())
            pos = _WS.match(text, m.end()).end()  # type: ignore[union-attr]
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]  # the colon
            if key == step:
                return pos
        elif index == step:
            return pos
        pos = _skip_value(text, pos)
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
        index += 1
    return None


_SKIPPER: Final = json.JSONDecoder()


def _skip_value(text: str, pos: int) -> int:
    """Offset just after the value starting at ``pos``."""
    try:
        return _SKIPPER.raw_decode(text, pos)[1]  # C speed: errors in large documents
    except (ValueError, RecursionError):
        return _skip_value_slow(text, pos)


def _skip_value_slow(text: str, pos: int) -> int:
    # Iterative, so any depth; for what the stdlib scanner refuses (NaN is fine there).
    depth = 0
    n = len(text)
    while pos < n:
        c = text[pos]
        if c == '"':
            m = _STRING.match(text, pos)
            pos = m.end() if m else n
        elif c in "[{":
            depth += 1
            pos += 1
        elif c in "]}":
            depth -= 1
            pos += 1
        elif c in ", \t\r\n:":
            if depth == 0:
                return pos
            pos += 1
        else:
            m = _SCALAR.match(text, pos)
            pos = m.end() if m else pos + 1
        if depth == 0:
            return pos
    return pos
