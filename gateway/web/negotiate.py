"""Content negotiation and request grids, per haystack.md §1.2 and §1.4 (pure helpers).

- Response format: ``*/*`` anywhere, or no Accept at all, gives Zinc; otherwise the first entry
  a codec writes (q-values are ignored, as Haxall and haystack-java do); none -> 406.
- The response Content-Type echoes what the client asked for (haystack-nclient decodes JSON
  only when it sees its vnd type).
- Request format: the Content-Type without parameters, except the JSON ``version``.
- GET query parameters become a one-row grid; each value is read as Zinc when the whole value
  parses, else kept as a Str.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from gateway.haystack.codecs import ZINC, Format, format_for
from gateway.haystack.codecs.zinc import decode_val
from gateway.haystack.errors import ParseError
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import Value

__all__ = ["content_type_for", "grid_from_query", "response_format"]

_ZINC_CONTENT_TYPE: Final = "text/zinc; charset=utf-8"
_CONTENT_TYPES: Final = {
    "zinc": _ZINC_CONTENT_TYPE,
    "json4": "application/json",
    "json3": "application/vnd.haystack+json;version=3",
    "trio": "text/trio; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}


@lru_cache(maxsize=256)
def response_format(accept: str | None) -> tuple[Format, str] | None:
    """The format to answer in and the Content-Type to send, or None (-> 406).

    Cached per Accept string: a client sends the same one on every request.
    """
    if not accept or not accept.strip():
        return ZINC, _ZINC_CONTENT_TYPE
    entries = [e.strip() for e in accept.split(",") if e.strip()]
    if any(e.split(";")[0].strip() == "*/*" for e in entries):
        return ZINC, _ZINC_CONTENT_TYPE
    for entry in entries:
        fmt = format_for(entry)
        if fmt is not None and fmt.can_write:
            return fmt, content_type_for(fmt, entry)
    return None


def content_type_for(fmt: Format, requested: str) -> str:
    """The Content-Type of a response in ``fmt`` for a client that asked for ``requested``."""
    base = requested.split(";", maxsplit=1)[0].strip().lower()
    if fmt.name == "json4" and base == "application/vnd.haystack+json":
        # echo the vnd type (with its version when the client gave one)
        return "application/vnd.haystack+json;version=4" if ";" in requested else base
    if fmt.name == "zinc" and base == "text/plain":
        return "text/plain; charset=utf-8"
    return _CONTENT_TYPES[fmt.name]


def grid_from_query(params: Iterable[tuple[str, str]]) -> Grid:
    """A one-row grid from GET query parameters (empty grid without parameters)."""
    row: dict[str, Value] = {}
    for name, text in params:
        row[name] = _query_value(text)
    if not row:
        return Grid.empty()
    return Grid.from_dict(row)


def _query_value(text: str) -> Value:
    if not text:
        return text
    try:
        return decode_val(text)
    except ParseError:
        return text
