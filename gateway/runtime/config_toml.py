"""Reading ``gateway.toml`` with line numbers: a key index and typed getters that collect problems.

:mod:`tomllib` parses the file but tells no line for a key. :func:`key_lines` scans the text
and maps every dotted key path (``("server", "tls", "certificate")``) to the line that defines
it; a path it cannot place (a key inside an inline table, say) falls back to its longest
placed prefix, so every problem still names a line near the cause.

:class:`TomlTable` is a view of one table that hands out typed values (``text``, ``integer``,
``number``, ``flag``, ``duration``, ``choice``, ``texts``, ``table``) and records a
:class:`Problem` for each value of the wrong type or out of range, returning the default so
that loading goes on and *every* problem of the file is reported in one pass.
:meth:`TomlTable.finish` reports the keys nobody asked for, with a "did you mean" when one is
close to a known key.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from gateway.haystack.codecs.zinc import decode_val
from gateway.haystack.errors import ParseError
from gateway.haystack.kinds import Number
from gateway.points.durations import TIME_UNITS

__all__ = ["Problem", "TomlDocument", "TomlTable", "did_you_mean", "key_lines"]

T = TypeVar("T")
KeyPath = tuple[str, ...]

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_LINE_COL: Final = re.compile(r"\(at line (\d+), column (\d+)\)")
_MISSING: Final = object()


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One configuration problem: where it is (file, 1-based line, key or tag) and what."""

    file: str
    line: int
    key: str | None
    message: str

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{self.file}:{self.line}:{key} {self.message}"


def did_you_mean(name: str, known: Iterable[str], cutoff: float = 0.75) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to ``name``, else ``""``."""
    candidates = list(known)
    same_case = [k for k in candidates if k.lower() == name.lower()]
    close = same_case or difflib.get_close_matches(name, candidates, n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- line index ---------------------------------------------------------------------------


def _split_key(text: str) -> tuple[KeyPath, int] | None:
    """A dotted key at the start of ``text``: its parts and the offset after it."""
    parts: list[str] = []
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        quote = text[i]
        if quote in "\"'":
            end = text.find(quote, i + 1)
            while quote == '"' and end > 0 and text[end - 1] == "\\":
                end = text.find(quote, end + 1)
            if end < 0:
                return None
            raw = text[i + 1 : end]
            parts.append(raw if quote == "'" else _unescape(raw))
            i = end + 1
        else:
            match = _BARE_KEY.match(text, i)
            if match is None:
                return None
            parts.append(match.group())
            i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ".":
            i += 1
            continue
        return tuple(parts), i


def _unescape(raw: str) -> str:
    try:
        val = tomllib.loads(f'k = "{raw}"')["k"]
    except tomllib.TOMLDecodeError:
        return raw
    return val if isinstance(val, str) else raw


def _scan_value(text: str, depth: int, in_string: str | None) -> tuple[int, str | None]:
    """Bracket depth and open multi-line string after the value text of one line."""
    i = 0
    n = len(text)
    while i < n:
        if in_string is not None:
            end = text.find(in_string, i)
            if end < 0:
                return depth, in_string
            i = end + 3
            in_string = None
            continue
        ch = text[i]
        if ch == "#":
            break
        if text.startswith(('"""', "'''"), i):
            in_string = text[i : i + 3]
            i += 3
            continue
        if ch in "\"'":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if ch == '"' and text[end] == "\\" else 1
            i = end + 1
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return max(depth, 0), in_string


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every table header and key of a TOML text, by dotted path, with its 1-based line."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    depth = 0
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None or depth > 0:
            depth, in_string = _scan_value(line, depth, in_string)
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            array = stripped.startswith("[[")
            found = _split_key(stripped[2 if array else 1 :])
            if found is not None:
                table = found[0]
                lines.setdefault(table, number)
            continue
        found = _split_key(line)
        if found is None:
            continue
        path, end = found
        rest = line[end:]
        if not rest.lstrip().startswith("="):
            continue
        full = table + path
        lines.setdefault(full, number)
        for cut in range(len(table) + 1, len(full)):  # dotted keys define their parents
            lines.setdefault(full[:cut], number)
        depth, in_string = _scan_value(rest.lstrip()[1:], 0, None)
    return lines


# -- typed access -------------------------------------------------------------------------


class TomlDocument:
    """A parsed TOML file, its line index and the problems found in it so far."""

    def __init__(self, text: str, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.lines = key_lines(text)
        self.data: dict[str, Any] = {}
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = _LINE_COL.search(str(exc))
            line = int(match.group(1)) if match else 1
            message = _LINE_COL.sub("", str(exc)).strip()
            self.problem(line, None, f"not valid TOML: {message}")

    def problem(self, line: int, key: str | None, message: str) -> None:
        """Record a problem at ``line``."""
        self.problems.append(Problem(self.source, line, key, message))

    def line_of(self, path: KeyPath) -> int:
        """The line defining ``path`` (or its longest defined prefix; 1 for none)."""
        for cut in range(len(path), 0, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return 1

    def root(self) -> TomlTable:
        """The top-level table."""
        return TomlTable(self, (), self.data)


class TomlTable:
    """One table of the document; getters record problems and fall back to defaults."""

    def __init__(self, doc: TomlDocument, path: KeyPath, data: Mapping[str, Any]) -> None:
        self.doc = doc
        self.path = path
        self.data = data
        self.asked: set[str] = set()

    def name(self, key: str | None = None) -> str:
        """The dotted name of this table or of one of its keys."""
        return ".".join((*self.path, key) if key else self.path) or "(top level)"

    def line(self, key: str | None = None) -> int:
        """The line of ``key`` (or of this table)."""
        return self.doc.line_of((*self.path, key) if key else self.path)

    def problem(self, key: str | None, message: str) -> None:
        """Record a problem about ``key`` of this table (or the table itself)."""
        self.doc.problem(self.line(key), self.name(key) if key else self.name(), message)

    def has(self, key: str) -> bool:
        """Whether the file sets ``key`` here."""
        self.asked.add(key)
        return key in self.data

    def _get(self, key: str, check: Callable[[Any], T | None], wanted: str, default: T) -> T:
        self.asked.add(key)
        raw = self.data.get(key, _MISSING)
        if raw is _MISSING:
            return default
        val = check(raw)
        if val is None:
            self.problem(key, f"must be {wanted}, not {_show(raw)}")
            return default
        return val

    def text(self, key: str, default: str) -> str:
        """A string."""
        return self._get(key, lambda v: v if isinstance(v, str) else None, "a string", default)

    def optional_text(self, key: str) -> str | None:
        """A string, or None when absent."""
        got: str | None = self._get(
            key, lambda v: v if isinstance(v, str) else None, "a string", None
        )
        return got

    def flag(self, key: str, default: bool) -> bool:
        """A boolean (``true``/``false``)."""
        return self._get(
            key, lambda v: v if isinstance(v, bool) else None, "true or false", default
        )

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        """An integer in ``low..high``."""

        def check(v: Any) -> int | None:
            ok = isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
            return v if ok else None

        return self._get(key, check, f"an integer in {low}..{high}", default)

    def number(self, key: str, default: float | None, low: float) -> float | None:
        """A number (int or float) of at least ``low``; absent gives ``default``."""

        def check(v: Any) -> float | None:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and v >= low
            return float(v) if ok else None

        return self._get(key, check, f"a number of at least {low:g}", default)

    def duration(self, key: str, default: float | None) -> float | None:
        """Seconds, from an integer (seconds) or a string with a unit (``"30min"``, ``"8h"``)."""
        units = ", ".join(TIME_UNITS)
        return self._get(key, _seconds, f'seconds, or a string like "30min" ({units})', default)

    def choice(self, key: str, default: str, allowed: Iterable[str]) -> str:
        """One string of ``allowed``."""
        options = list(allowed)
        self.asked.add(key)
        raw = self.data.get(key, _MISSING)
        if raw is _MISSING:
            return default
        if isinstance(raw, str) and raw in options:
            return raw
        hint = did_you_mean(raw, options) if isinstance(raw, str) else ""
        self.problem(key, f"must be one of {', '.join(options)}, not {_show(raw)}{hint}")
        return default

    def texts(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A list of strings."""

        def check(v: Any) -> tuple[str, ...] | None:
            ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
            return tuple(v) if ok else None

        return self._get(key, check, "a list of strings", default)

    def table(self, key: str) -> TomlTable:
        """A sub-table (empty when absent, or when the key is not a table: a problem)."""
        self.asked.add(key)
        raw = self.data.get(key, {})
        if not isinstance(raw, dict):
            self.problem(key, f"must be a table ([{self.name(key)}]), not {_show(raw)}")
            raw = {}
        return TomlTable(self.doc, (*self.path, key), raw)

    def finish(self) -> None:
        """Report every key of this table that no getter asked for."""
        known = sorted(self.asked)
        for key in self.data:
            if key in self.asked:
                continue
            hint = did_you_mean(key, known)
            where = f"[{self.name()}]" if self.path else "the top level"
            self.problem(key, f"unknown key in {where}{hint}")


def _show(val: Any) -> str:
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, str):
        return repr(val)
    if isinstance(val, dict):
        return "a table"
    if isinstance(val, list):
        return "a list"
    return str(val)


def _seconds(val: Any) -> float | None:
    if isinstance(val, bool):
        return None
    if isinstance(val, int | float):
        return float(val) if val > 0 else None
    if not isinstance(val, str):
        return None
    try:
        num = decode_val(val.strip())
    except ParseError:
        return None
    if not isinstance(num, Number) or num.unit not in TIME_UNITS or not num.val > 0:
        return None
    return num.val * TIME_UNITS[num.unit]
