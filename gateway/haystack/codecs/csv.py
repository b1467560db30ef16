"""CSV export of a grid (write only; haystack.md §4.5).

- Header: each column's display name (its ``dis`` meta when that is a Str, else its name). All
  other grid and column meta is dropped, except that an error grid (meta ``err``) is written as
  one row of its meta (``err,dis,errTrace``): an error must not read as an empty answer.
- Cells: Marker ``✓`` (U+2713), null empty, Ref ``@id dis``, Bool ``true``/``false``, Str and Uri
  raw; every other kind in its Zinc form (``2000ft²``, ``2024-03-01T08:12:05-05:00 New_York``,
  ``NA``, ``[1,2]``).
- Quoting per RFC 4180 with Python's ``csv`` module (``QUOTE_MINIMAL``: a field is quoted when
  it holds a comma, a double quote, CR or LF; a quote inside is doubled). Records end with CRLF,
  as RFC 4180 specifies; line breaks inside a quoted field are kept as they are.

``encode_grid`` returns text; the codec entry point encodes it as UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any, Final

from gateway.haystack.grid import Grid, error_record_grid
from gateway.haystack.kinds import Marker, Ref, Uri, Value

__all__ = ["cell_text", "encode_grid"]

CHECK_MARK: Final = "\u2713"


def encode_grid(grid: Grid) -> str:
    """The grid as CSV text (CRLF line ends)."""
    if grid.is_error:
        grid = error_record_grid(grid)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_header(col.name, col.meta.get("dis")) for col in grid.cols])
    names = grid.col_names
    zinc = _zinc_encode_val()
    cell = _CELLS.get
    for row in grid.rows:
        line = []
        for name in names:
            val = row.get(name)
            to_text = cell(val.__class__)
            line.append(to_text(val) if to_text is not None else zinc(val))
        writer.writerow(line)
    return out.getvalue()


def cell_text(val: Value) -> str:
    """The CSV text of one cell (before quoting)."""
    to_text = _CELLS.get(val.__class__)
    return to_text(val) if to_text is not None else _zinc_encode_val()(val)


def _header(name: str, dis: Value) -> str:
    return dis if dis.__class__ is str and dis else name


def _ref_text(val: Ref) -> str:
    ref_id, dis = val
    return "@" + ref_id if dis is None else "@" + ref_id + " " + dis


def _zinc_encode_val() -> Callable[[Value], str]:
    # Imported here: the Zinc codec is the larger module and CSV is rarely used.
    from gateway.haystack.codecs.zinc import encode_val

    return encode_val


_CELLS: Final[dict[type, Callable[[Any], str]]] = {
    type(None): lambda _: "",
    Marker: lambda _: CHECK_MARK,
    bool: lambda v: "true" if v else "false",
    str: lambda v: v,
    Uri: lambda v: v[0],
    Ref: _ref_text,
}
