"""The usual Zinc hisWrite request read straight into columns (:class:`HisInput`).

``read_his_write(text)`` takes a document of the form every client sends for one point::

    ver:"3.0" id:@p1
    ts,val
    2024-03-01T00:00:00+01:00 Paris,20.5°C
    ...

(meta on one line, the columns ``ts,val`` without meta, each row a DateTime in one zone and a
Number in one unit) and gives a grid whose rows are a :class:`HisInput`: the exact time keys
and the floats, without a datetime, Number or dict per sample. Anything else (another column,
a null, a NaN, a second zone or unit, a date beyond the common years, CR line ends...) gives
None, and the general reader reads the document (and reports what is wrong with it). Both give
the same samples; a test compares them on generated documents.
"""

from __future__ import annotations

import re
from typing import Final

from gateway.haystack.codecs.zinc import decode_grid
from gateway.haystack.codecs.zinc_rows import DATETIME_GROUPS, NUMBER_GROUPS
from gateway.haystack.errors import HaystackError
from gateway.haystack.grid import Grid
from gateway.haystack.hisinput import his_input_grid

__all__ = ["read_his_write"]

# One row, in the run reader's cell forms: a DateTime (ISO text with its offset, the zone
# name), a comma, a Number (digits, unit), a newline.
_ROW: Final = re.compile(DATETIME_GROUPS + "," + NUMBER_GROUPS + r"\n")


def read_his_write(data: str | bytes) -> Grid | None:
    """The grid of a one-point hisWrite document with :class:`HisInput` rows, or None when
    the document is not of that form (see the module docstring)."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        text = data
    head_end = text.find("\n")
    cols_end = text.find("\n", head_end + 1)
    if head_end < 0 or cols_end < 0 or text[head_end + 1 : cols_end] != "ts,val":
        return None
    head = text[:head_end]
    if "<<" in head or "\r" in text:
        return None  # a nested grid in the meta, CR line ends: the general reader
    body = text[cols_end + 1 :].rstrip("\n") + "\n"
    rows = _ROW.findall(body)
    if not rows:
        return None
    texts, zones, nums, units = zip(*rows, strict=True)
    # The rows cover the body exactly (no text skipped between two matches): three separators
    # a row plus the four fields.
    covered = 3 * len(rows) + sum(map(len, texts)) + sum(map(len, zones))
    covered += sum(map(len, nums)) + sum(map(len, units))
    if covered != len(body) or len(set(zones)) != 1 or len(set(units)) != 1:
        return None
    try:
        meta = decode_grid(head + "\nempty\n").meta
        return his_input_grid(list(texts), nums, units[0], zones[0], meta)
    except (HaystackError, ValueError):
        return None  # the general reader says what is wrong
