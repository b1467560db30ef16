"""Hypothesis strategies for Haystack values and grids, shared by every codec's tests.

Everything generated here can be written and read back by every codec of the project, per the
spec, unless a parameter asks for more:

- ``nonfinite_units=True`` adds INF/-INF/NaN *with* a unit (JSON carries the unit, Zinc has
  no syntax for it);
- ``col_meta_name=True`` lets column meta use the tag ``name`` (JSON v3 inlines column meta
  in the column object, whose ``name`` is the column's own name).

Never generated, because no codec could keep them: strings with lone surrogates (not UTF-8),
grid meta named ``ver`` (the version line/field), Dict values that are None (None means "tag
absent"), Dicts holding ``meta``, ``cols`` and ``rows`` at once (JSON v3 reads those as a grid),
grids without columns (Zinc writes the column ``empty``), DateTimes that do not exist in their
zone (spring-forward gaps), DateTimes whose zone has no Haystack name, and XStr types that
Zinc reads as keywords (``T``, ``NA``, ``C``...).

Also here, for every decoder's tests: :func:`mutations` (damaged copies of a valid document),
:func:`assert_only_parse_errors` and :func:`scaling_ratio` (a linear-time check that does not
assert on absolute time).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from gateway.haystack import (
    MARKER,
    NA,
    REMOVE,
    Col,
    Coord,
    Grid,
    Number,
    Ref,
    Symbol,
    Uri,
    XStr,
)
from gateway.haystack.hisinput import HisInput, to_key
from gateway.haystack.tz import hs_name, hs_tz

__all__ = [
    "UNITS",
    "ZONES",
    "assert_only_parse_errors",
    "coords",
    "datetimes",
    "grids",
    "mutations",
    "numbers",
    "ref_ids",
    "refs",
    "scalars",
    "scaling_ratio",
    "strs",
    "symbols",
    "tag_names",
    "times",
    "uniform_grids",
    "uris",
    "values",
    "xstrs",
]

#: Units as real data has them: non-ASCII symbols, %, /, digits after the first character.
UNITS = ("°F", "°C", "%", "%RH", "m³/h", "kW", "kWh", "ft²", "cfm", "inH₂O", "ppm", "s", "min", "$")

#: Zones with a Haystack name: UTC, a POSIX-signed fixed offset, DST zones, a half-hour zone.
ZONES = ("UTC", "GMT+5", "GMT-3", "New_York", "Chicago", "London", "Sydney", "Kolkata")

# Characters every text codec must escape or carry with care.
_SPECIAL_CHARS = (
    '"',
    "\\",
    "$",
    "`",
    "'",
    ":",
    ",",
    " ",
    "\n",
    "\r",
    "\t",
    "\b",
    "\f",
    "\x00",
    "\x1f",
    "\x7f",
    "\u2028",
    "\u2029",
    "°",
    "é",
    "✓",
    "\ufeff",
    "𝄞",  # outside the BMP
    "😀",
)
# Strings that look like JSON v3 values or Zinc keywords.
_TRICKY_STRS = ("m:", "n:12 kW", "s:", "s:x", "r:abc", "x:", "-:", "t:2024", "M", "N", "NA", "T")

_TEXT_CHARS = st.one_of(
    st.sampled_from(_SPECIAL_CHARS),
    st.characters(exclude_categories=("Cs",)),  # no lone surrogates: not UTF-8
)


def tag_names() -> st.SearchStrategy[str]:
    """Tag names: ``[a-z][a-zA-Z0-9_]*``, short."""
    return st.from_regex(r"[a-z][a-zA-Z0-9_]{0,7}", fullmatch=True)


def strs(max_size: int = 16) -> st.SearchStrategy[str]:
    """Str values with escape-worthy, non-ASCII and non-BMP characters."""
    return st.one_of(st.text(_TEXT_CHARS, max_size=max_size), st.sampled_from(_TRICKY_STRS))


def numbers(*, nonfinite_units: bool = False) -> st.SearchStrategy[Number]:
    """Numbers: finite with or without a unit, INF, -INF and NaN."""
    finite = st.floats(allow_nan=False, allow_infinity=False)
    nice = st.integers(-(10**6), 10**6).map(float) | st.decimals(
        -10000, 10000, places=3, allow_nan=False, allow_infinity=False
    ).map(float)
    units = st.none() | st.sampled_from(UNITS)
    special = st.sampled_from((math.inf, -math.inf, math.nan))
    out = st.builds(Number, finite | nice, units) | st.builds(Number, special)
    if nonfinite_units:
        out |= st.builds(Number, special, st.sampled_from(UNITS))
    return out


def ref_ids() -> st.SearchStrategy[str]:
    """Ref ids from the legal charset ``[A-Za-z0-9_:\\-.~]``."""
    return st.from_regex(r"[A-Za-z0-9_:\-.~]{1,12}", fullmatch=True)


def refs() -> st.SearchStrategy[Ref]:
    """Refs with and without a display string."""
    return st.builds(Ref, ref_ids(), st.none() | strs())


def uris() -> st.SearchStrategy[Uri]:
    """Uris, including backticks, spaces and non-ASCII."""
    chars = st.sampled_from("abcXYZ019:/?#[]@!$&'()*+,;=-._~% `é😀")
    return st.builds(Uri, st.text(chars, max_size=16))


def symbols() -> st.SearchStrategy[Symbol]:
    """Symbols such as ``hot-water``, ``lib:ph``."""
    return st.builds(
        Symbol,
        st.from_regex(r"[a-z][a-zA-Z0-9_]{0,6}(?:[-:.~][a-zA-Z0-9_]{1,5}){0,2}", fullmatch=True),
    )


def times() -> st.SearchStrategy[dt.time]:
    """Times with whole seconds, milliseconds or microseconds."""
    return st.builds(
        dt.time,
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.sampled_from((0, 0, 5000, 123000, 999000)) | st.integers(0, 999_999),
    )


def datetimes() -> st.SearchStrategy[dt.datetime]:
    """Aware DateTimes in :data:`ZONES`, with fractions, only instants that exist in the zone."""
    instants = st.datetimes(
        min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2100, 12, 31)
    ).map(lambda d: d.replace(tzinfo=dt.UTC))
    fractions = st.sampled_from((0, 0, 1000, 250000)) | st.integers(0, 999_999)
    return st.builds(
        lambda instant, micro, zone: instant.replace(microsecond=micro).astimezone(hs_tz(zone)),
        instants,
        fractions,
        st.sampled_from(ZONES),
    )


def coords() -> st.SearchStrategy[Coord]:
    """Coordinates in range, with short and long fractions."""
    lat = st.floats(-90, 90, allow_nan=False) | st.integers(-90, 90).map(float)
    lng = st.floats(-180, 180, allow_nan=False) | st.integers(-180, 180).map(float)
    return st.builds(Coord, lat, lng)


# Zinc reads these as keywords (T, F, NA...) or as a Coord, never as an XStr type; Haxall's
# tokenizer cannot read them either.
_ZINC_WORDS = frozenset({"T", "F", "N", "M", "R", "NA", "NaN", "INF", "C"})


def xstrs() -> st.SearchStrategy[XStr]:
    """XStrs: a type name starting upper case (not a Zinc keyword) and any text."""
    types = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
        lambda t: t not in _ZINC_WORDS
    )
    return st.builds(XStr, types, strs())


def scalars(*, nonfinite_units: bool = False) -> st.SearchStrategy[Any]:
    """Every scalar kind (no null)."""
    return st.one_of(
        st.sampled_from((MARKER, NA, REMOVE, True, False)),
        numbers(nonfinite_units=nonfinite_units),
        strs(),
        uris(),
        refs(),
        symbols(),
        st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
        times(),
        datetimes(),
        coords(),
        xstrs(),
    )


def values(
    max_depth: int = 2, *, nonfinite_units: bool = False, col_meta_name: bool = False
) -> st.SearchStrategy[Any]:
    """Scalars, and up to ``max_depth`` levels of nested List, Dict and Grid."""
    leaf = scalars(nonfinite_units=nonfinite_units)
    if max_depth <= 0:
        return leaf
    inner = values(max_depth - 1, nonfinite_units=nonfinite_units, col_meta_name=col_meta_name)
    return st.one_of(
        leaf,
        st.lists(st.none() | inner, max_size=4),
        _dicts(inner),
        grids(max_depth - 1, nonfinite_units=nonfinite_units, col_meta_name=col_meta_name),
    )


def _dicts(vals: st.SearchStrategy[Any], max_size: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(tag_names(), vals, max_size=max_size).filter(
        lambda d: not {"meta", "cols", "rows"} <= d.keys()
    )


def grids(
    max_depth: int = 1,
    *,
    nonfinite_units: bool = False,
    col_meta_name: bool = False,
    max_cols: int = 4,
    max_rows: int = 4,
) -> st.SearchStrategy[Grid]:
    """Grids with meta, columns with meta, and rows with null cells (absent or None).

    Cells hold :func:`values` nested up to ``max_depth`` more levels.
    """
    cell = values(max_depth, nonfinite_units=nonfinite_units, col_meta_name=col_meta_name)
    meta_vals = scalars(nonfinite_units=nonfinite_units)
    meta = _dicts(meta_vals).map(lambda m: {k: v for k, v in m.items() if k != "ver"})
    col_meta_keys = tag_names() if col_meta_name else tag_names().filter(lambda k: k != "name")
    col_meta = st.dictionaries(col_meta_keys, meta_vals, max_size=3) | st.builds(
        lambda dis: {"dis": dis}, strs()
    )

    @st.composite
    def build(draw: st.DrawFn) -> Grid:
        names = draw(st.lists(tag_names(), min_size=1, max_size=max_cols, unique=True))
        cols = [Col(name, draw(st.none() | col_meta)) for name in names]
        rows = []
        for _ in range(draw(st.integers(0, max_rows))):
            row: dict[str, Any] = {}
            for name in names:
                choice = draw(st.integers(0, 3))
                if choice == 0:
                    continue  # absent: null
                row[name] = None if choice == 1 else draw(cell)
            rows.append(row)
        return Grid(cols, rows, draw(meta))

    return build()


def uniform_grids(
    cells: st.SearchStrategy[st.SearchStrategy[Any]], min_rows: int = 20, max_rows: int = 60
) -> st.SearchStrategy[Grid]:
    """Grids whose columns each draw every cell from one strategy of ``cells`` (one kind):
    the large, regular grids the codecs' fast paths are for. Rows hold their cells in column
    order."""

    @st.composite
    def build(draw: st.DrawFn) -> Grid:
        kinds = draw(st.lists(cells, min_size=1, max_size=5))
        names = [f"c{i}" for i in range(len(kinds))]
        count = draw(st.integers(min_rows, max_rows))
        rows = [
            {name: draw(kind) for name, kind in zip(names, kinds, strict=True)}
            for _ in range(count)
        ]
        return Grid(names, rows, {"dis": "uniform"})

    return build()


def his_write_grids(earliest: int = 1901) -> st.SearchStrategy[Grid]:
    """hisWrite grids of one point as a client writes them: one zone, one unit, instants
    from the year ``earliest`` on, in any order."""

    @st.composite
    def build(draw: st.DrawFn) -> Grid:
        zone = hs_tz(draw(st.sampled_from(ZONES)))
        unit = draw(st.none() | st.sampled_from(UNITS))
        instants = st.datetimes(dt.datetime(earliest, 1, 1), dt.datetime(2150, 12, 31))
        fraction = st.sampled_from((0, 0, 0, 1000, 500000)) | st.integers(0, 999_999)
        rows = []
        for _ in range(draw(st.integers(1, 40))):
            instant = draw(instants).replace(microsecond=draw(fraction), tzinfo=dt.UTC)
            val = draw(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-9999, 9999))
            rows.append({"ts": instant.astimezone(zone), "val": Number(float(val), unit)})
        metas = [{"id": Ref("p1")}, {"id": Ref("p-2", "Point 2"), "x": MARKER}]
        return Grid(["ts", "val"], rows, draw(st.sampled_from(metas)))

    return build()


# -- checks shared by the codec tests --------------------------------------------------------


def mutations(doc: bytes, max_count: int = 8) -> st.SearchStrategy[list[bytes]]:
    """Damaged copies of ``doc``: bytes deleted, inserted, replaced, duplicated or cut."""
    if not doc:
        return st.just([b""])
    n = len(doc)
    pos = st.integers(0, n - 1)
    noise = st.sampled_from(b'{}[]",:\\ \n\x00\xff09-eE.tTfFnN_@^`$') | st.integers(0, 255)

    def apply(op: tuple[str, int, int, int]) -> bytes:
        kind, i, j, byte = op
        i, j = min(i, j), max(i, j)
        if kind == "delete":
            return doc[:i] + doc[i + 1 :]
        if kind == "insert":
            return doc[:i] + bytes([byte]) + doc[i:]
        if kind == "replace":
            return doc[:i] + bytes([byte]) + doc[i + 1 :]
        if kind == "duplicate":
            return doc[:j] + doc[i:j] + doc[j:]
        if kind == "swap":
            return doc[:i] + doc[j:] + doc[i:j]
        return doc[:i]

    ops = st.tuples(
        st.sampled_from(("delete", "insert", "replace", "duplicate", "swap", "cut")),
        pos,
        pos,
        noise,
    )
    return st.lists(ops.map(apply), min_size=1, max_size=max_count)


def assert_only_parse_errors(decode: Callable[[Any], Any], data: Any) -> None:
    """``decode(data)`` succeeds or raises ParseError; any other exception fails the test."""
    from gateway.haystack import ParseError

    try:
        decode(data)
    except ParseError as err:
        assert err.line >= 1 and err.col >= 1, err
        assert err.msg, err


def scaling_ratio(decode: Callable[[Any], Any], small: Any, large: Any, runs: int = 3) -> float:
    """Best time to decode ``large`` over best time to decode ``small``.

    The best of a few runs each, so a busy machine slows both sides alike; the caller compares
    the ratio with the ratio of the sizes (linear: equal; quadratic: its square).
    """

    def best(data: Any) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            decode(data)
            times.append(time.perf_counter() - start)
        return min(times)

    return best(large) / best(small)


def assert_same_his_input(fast: Grid, general: Grid) -> None:
    """A hisWrite grid read into columns (:class:`HisInput`) holds what the general reader
    read: the same meta, instants (with their zone and offset) and values (with their unit)."""
    assert isinstance(fast.rows, HisInput)
    assert dict(fast.meta) == dict(general.meta)
    assert fast.col_names == general.col_names == ("ts", "val")
    assert len(fast.rows) == len(general.rows)
    assert fast.rows.keys == [to_key(row["ts"]) for row in general.rows]
    for mine, theirs in zip(fast.rows, general.rows, strict=True):
        assert mine["ts"] == theirs["ts"]
        assert hs_name(mine["ts"].tzinfo) == hs_name(theirs["ts"].tzinfo)
        assert mine["ts"].utcoffset() == theirs["ts"].utcoffset()
        assert mine["val"] == theirs["val"]
        assert mine["val"].unit == theirs["val"].unit
