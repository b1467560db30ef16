"""Haystack codecs behind one entry point: ``encode(grid, mime)`` and ``decode(data, mime)``.

The MIME table (haystack.md §1.4):

=============================================  ==========  =====  =====
media type                                     format      read   write
=============================================  ==========  =====  =====
``text/zinc`` (also ``text/plain``, legacy)    Zinc        yes    yes
``application/json``                           JSON v4     yes    yes
``application/vnd.haystack+json``              JSON v4     yes    yes
``application/vnd.haystack+json;version=4``    JSON v4     yes    yes
``application/vnd.haystack+json;version=3``    JSON v3     yes    yes
``text/trio``                                  Trio        yes    yes
``text/csv``                                   CSV         no     yes
=============================================  ==========  =====  =====

Media types match without their parameters (``text/zinc; charset=utf-8``), except the JSON
``version`` parameter. Every decoder raises only :class:`ParseError` for malformed input.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from gateway.haystack.errors import ParseError
from gateway.haystack.grid import Grid

__all__ = [
    "FORMATS",
    "Format",
    "UnsupportedFormatError",
    "decode",
    "encode",
    "format_for",
]


class UnsupportedFormatError(ValueError):
    """A media type no codec reads (or writes)."""


@dataclass(frozen=True, slots=True)
class Format:
    """One wire format: its canonical media type and what it can do."""

    name: str  # "zinc", "json4", "json3", "trio", "csv"
    mime: str  # canonical media type, without parameters except the JSON version
    module: str  # codec module under gateway.haystack.codecs
    can_read: bool
    can_write: bool

    def encode(self, grid: Grid) -> bytes:
        """The grid in this format, as UTF-8 bytes."""
        if not self.can_write:
            raise UnsupportedFormatError(f"{self.mime} cannot be written")
        out = _codec(self.module).encode_grid(grid)
        return out.encode("utf-8") if isinstance(out, str) else bytes(out)

    def encode_iter(self, grid: Grid) -> Iterator[bytes]:
        """The grid in this format as UTF-8 chunks (for streaming a large response).

        A codec module may offer ``encode_grid_iter(grid)`` to write a large grid in pieces
        without holding the whole document; otherwise the document comes as one chunk.
        """
        if not self.can_write:
            raise UnsupportedFormatError(f"{self.mime} cannot be written")
        chunks = getattr(_codec(self.module), "encode_grid_iter", None)
        if chunks is None:
            yield self.encode(grid)
            return
        for chunk in chunks(grid):
            yield chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)

    def decode(self, data: bytes | str) -> Grid:
        """A grid read from this format; ParseError when malformed."""
        if not self.can_read:
            raise UnsupportedFormatError(f"{self.mime} cannot be read")
        grid = _codec(self.module).decode_grid(data)
        assert isinstance(grid, Grid)
        return grid


ZINC: Final = Format("zinc", "text/zinc", "zinc", True, True)
JSON4: Final = Format("json4", "application/vnd.haystack+json;version=4", "json4", True, True)
JSON3: Final = Format("json3", "application/vnd.haystack+json;version=3", "json3", True, True)
TRIO: Final = Format("trio", "text/trio", "trio", True, True)
CSV: Final = Format("csv", "text/csv", "csv", False, True)

#: Every format, in the order the ``formats`` op lists them.
FORMATS: Final = (ZINC, JSON4, JSON3, TRIO, CSV)

_BY_TYPE: Final[dict[str, Format]] = {
    "text/zinc": ZINC,
    "text/plain": ZINC,
    "application/json": JSON4,
    "application/vnd.haystack+json": JSON4,
    "text/trio": TRIO,
    "text/csv": CSV,
}


def format_for(media_type: str) -> Format | None:
    """The format for a media type as it appears in Accept or Content-Type, or None.

    ``application/vnd.haystack+json;version=3`` selects JSON v3; any other ``version`` of the
    vnd type is unknown. Other parameters (charset, q) are ignored.
    """
    base, _, params = media_type.partition(";")
    base = base.strip().lower()
    fmt = _BY_TYPE.get(base)
    if fmt is None or base != "application/vnd.haystack+json" or not params:
        return fmt
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "version":
            version = value.strip().strip('"')
            if version == "3":
                return JSON3
            if version == "4":
                return JSON4
            return None
    return fmt


def _codec(module: str) -> _CodecModule:
    mod = _MODULES.get(module)
    if mod is None:
        mod = _MODULES[module] = importlib.import_module(f"gateway.haystack.codecs.{module}")
    return mod  # type: ignore[return-value]


class _CodecModule:
    encode_grid: Callable[[Grid], str | bytes]
    decode_grid: Callable[[bytes | str], Grid]


_MODULES: dict[str, object] = {}


def encode(grid: Grid, mime: str = "text/zinc") -> bytes:
    """``grid`` written in the format of ``mime``; UnsupportedFormatError if none writes it."""
    fmt = format_for(mime)
    if fmt is None or not fmt.can_write:
        raise UnsupportedFormatError(f"no codec writes {mime!r}")
    return fmt.encode(grid)


def decode(data: bytes | str, mime: str = "text/zinc") -> Grid:
    """A grid read from ``data`` in the format of ``mime``.

    UnsupportedFormatError if no codec reads ``mime``; ParseError if ``data`` is malformed.
    """
    fmt = format_for(mime)
    if fmt is None or not fmt.can_read:
        raise UnsupportedFormatError(f"no codec reads {mime!r}")
    try:
        return fmt.decode(data)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("input nested too deeply", 1, 1) from None
