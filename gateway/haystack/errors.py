"""Errors raised by the pure Haystack layer.

::

    HaystackError
    ├── ParseError        malformed input to a decoder (line and column, 1-based)
    │   └── FilterError   malformed filter text (position in the filter)
    └── UnknownTimeZoneError  a zone name that is neither a Haystack city nor IANA

Every decoder raises ``ParseError`` (or a subclass) for any malformed input and nothing else.
"""

from __future__ import annotations

__all__ = ["FilterError", "HaystackError", "ParseError", "UnknownTimeZoneError"]


class HaystackError(ValueError):
    """Base of the errors of the pure Haystack layer."""


class ParseError(HaystackError):
    """Malformed input: ``msg`` at ``line`` and ``col`` (both 1-based)."""

    def __init__(self, msg: str, line: int = 1, col: int = 1) -> None:
        super().__init__(f"{msg} (line {line}, column {col})")
        self.msg = msg
        self.line = line
        self.col = col

    @classmethod
    def at(cls, msg: str, text: str, pos: int) -> ParseError:
        """An error at character offset ``pos`` of ``text`` (line and column computed)."""
        pos = max(0, min(pos, len(text)))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return cls(msg, line, col)


class FilterError(ParseError):
    """A filter that cannot be parsed; ``pos`` is the 0-based offset in the filter text."""

    def __init__(self, msg: str, pos: int = 0, text: str = "") -> None:
        line = text.count("\n", 0, pos) + 1 if text else 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1 if text else pos + 1
        super().__init__(msg, line, col)
        self.pos = pos
        self.text = text


class UnknownTimeZoneError(HaystackError):
    """A time zone name that maps to no known zone."""
