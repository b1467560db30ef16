"""The pure Haystack layer: kinds, grids, codecs, filters, time zones and defs.

Nothing here does I/O or imports trio, quart, hypercorn, sockets or sqlite; time comes in as an
argument. Everything else in the gateway builds on these modules.
"""

from gateway.haystack.errors import FilterError, HaystackError, ParseError, UnknownTimeZoneError
from gateway.haystack.grid import Col, Grid
from gateway.haystack.kinds import (
    MARKER,
    NA,
    REMOVE,
    Coord,
    Marker,
    NAType,
    Number,
    Ref,
    RemoveType,
    Symbol,
    Uri,
    Value,
    XStr,
    kind_name,
)

__all__ = [
    "MARKER",
    "NA",
    "REMOVE",
    "Col",
    "Coord",
    "FilterError",
    "Grid",
    "HaystackError",
    "Marker",
    "NAType",
    "Number",
    "ParseError",
    "Ref",
    "RemoveType",
    "Symbol",
    "UnknownTimeZoneError",
    "Uri",
    "Value",
    "XStr",
    "kind_name",
]
