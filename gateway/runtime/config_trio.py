"""Trio files of the point database, read record by record so that every record knows its line.

:func:`gateway.haystack.codecs.trio.decode_records` returns records without positions. Here a
file is cut at its record separators (lines of three or more dashes in column 1 — the only
place the Trio reader takes them as separators, since every nested block is indented) and each
piece is decoded on its own. A record then carries its file, the line where its first tag is,
and the line of each top-level tag (a tag starts in column 1), which is what configuration
errors name. A piece that does not parse becomes a :class:`Problem` with the line and column
in the whole file, and reading goes on with the next record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from gateway.haystack.codecs.trio import decode_records
from gateway.haystack.errors import ParseError
from gateway.haystack.kinds import Value
from gateway.runtime.config_toml import Problem

__all__ = ["SourcedRecord", "read_trio"]

_SEPARATOR: Final = re.compile(r"---+[ \t]*")
_TAG_START: Final = re.compile(r"([a-z][A-Za-z0-9_]*)[ \t]*(?::|$)")


@dataclass(frozen=True, slots=True)
class SourcedRecord:
    """A record of a configuration file, with where it and each of its tags were written."""

    rec: Mapping[str, Value]
    file: str
    line: int
    tag_lines: Mapping[str, int] = field(default_factory=dict)

    def line_of(self, tag: str | None) -> int:
        """The line of ``tag`` (the record's first line when the tag is not written here)."""
        if tag is None:
            return self.line
        return self.tag_lines.get(tag, self.line)

    def problem(self, tag: str | None, message: str) -> Problem:
        """A problem about ``tag`` of this record."""
        return Problem(self.file, self.line_of(tag), tag, message)


def read_trio(text: str, source: str) -> tuple[list[SourcedRecord], list[Problem]]:
    """The records of a Trio text (``source`` names the file) and the problems reading it."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    records: list[SourcedRecord] = []
    problems: list[Problem] = []
    start = 0
    for index in range(len(lines) + 1):
        if index < len(lines) and not _SEPARATOR.fullmatch(lines[index]):
            continue
        if index > start:
            _read_piece(lines[start:index], start, source, records, problems)
        start = index + 1
    return records, problems


def _read_piece(
    piece: list[str],
    start: int,
    source: str,
    records: list[SourcedRecord],
    problems: list[Problem],
) -> None:
    """Decode the record in ``piece``, whose first line is line ``start + 1`` of the file."""
    try:
        decoded = decode_records("\n".join(piece))
    except ParseError as exc:
        line = start + exc.line
        problems.append(
            Problem(source, line, None, f"cannot read Trio: {exc.msg} (column {exc.col})")
        )
        return
    if not decoded:
        return  # comments and blank lines only
    tag_lines: dict[str, int] = {}
    for offset, text in enumerate(piece):
        match = _TAG_START.match(text)
        if match is not None:
            tag_lines.setdefault(match.group(1), start + offset + 1)
    first = min(tag_lines.values(), default=start + 1)
    # One piece holds one record (the separators were cut away), so decoded has one item.
    records.append(
        SourcedRecord(MappingProxyType(decoded[0]), source, first, MappingProxyType(tag_lines))
    )
