"""CSV export: header from display names, cell forms, RFC 4180 quoting, CRLF records."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

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
from gateway.haystack.codecs.csv import cell_text, encode_grid
from gateway.haystack.tz import UTC, hs_tz

from .strategies import grids

NY = hs_tz("New_York")

# Kinds CSV writes in its own way.
CSV_CELLS: list[tuple[Any, str]] = [
    (None, ""),
    (MARKER, "✓"),
    (True, "true"),
    (False, "false"),
    ("plain", "plain"),
    ('a "quoted", text\nnext', 'a "quoted", text\nnext'),
    ("", ""),
    (Uri("http://x/`y` z"), "http://x/`y` z"),
    (Ref("site-1"), "@site-1"),
    (Ref("site-1", "Site, One"), "@site-1 Site, One"),
]

# Every other kind is written in its Zinc form.
ZINC_CELLS: list[tuple[Any, str]] = [
    (Number(2000, "ft²"), "2000ft²"),
    (Number(74.5), "74.5"),
    (Number(math.inf), "INF"),
    (NA, "NA"),
    (REMOVE, "R"),
    (Symbol("hot-water"), "^hot-water"),
    (dt.date(2024, 3, 1), "2024-03-01"),
    (dt.time(8, 12, 5, 500000), "08:12:05.500"),
    (dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=NY), "2024-03-01T08:12:05-05:00 New_York"),
    (dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC), "2024-03-01T08:00:00Z UTC"),
    (Coord(37.55, -77.45), "C(37.55,-77.45)"),
    (XStr("Bin", "text/plain"), 'Bin("text/plain")'),
    ([Number(1), "a"], '[1,"a"]'),
]


@pytest.mark.parametrize(("val", "text"), CSV_CELLS, ids=[c[1] or repr(c[0]) for c in CSV_CELLS])
def test_csv_cell_forms(val: Any, text: str) -> None:
    assert cell_text(val) == text


@pytest.mark.parametrize(("val", "text"), ZINC_CELLS, ids=[c[1] for c in ZINC_CELLS])
def test_other_kinds_in_zinc_form(val: Any, text: str) -> None:
    zinc = pytest.importorskip("gateway.haystack.codecs.zinc")
    assert cell_text(val) == text == zinc.encode_val(val)


def test_header_uses_display_names_and_drops_meta() -> None:
    grid = Grid(
        [Col("id", {"dis": "Point"}), Col("curVal", {"unit": "°F"}), Col("odd", {"dis": MARKER})],
        [{"id": Ref("p", "P1"), "curVal": "x", "odd": MARKER}],
        {"title": "ignored"},
    )
    assert encode_grid(grid) == "Point,curVal,odd\r\n@p P1,x,✓\r\n"


def test_rfc4180_quoting_and_crlf_records() -> None:
    grid = Grid(
        ["a", "b", "c", "d"],
        [
            {"a": "x,y", "b": 'say "hi"', "c": "two\nlines", "d": " spaced "},
            {"a": "carriage\rreturn"},
        ],
    )
    text = encode_grid(grid)
    assert text == (
        'a,b,c,d\r\n"x,y","say ""hi""","two\nlines", spaced \r\n"carriage\rreturn",,,\r\n'
    )
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["a", "b", "c", "d"],
        ["x,y", 'say "hi"', "two\nlines", " spaced "],
        ["carriage\rreturn", "", "", ""],
    ]


def test_empty_grid_is_just_the_header() -> None:
    assert encode_grid(Grid([Col("only")])) == "only\r\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids(max_depth=1))
def test_a_csv_reader_gets_back_every_cell_text(grid: Grid) -> None:
    pytest.importorskip("gateway.haystack.codecs.zinc")
    text = encode_grid(grid)
    records = list(csv.reader(io.StringIO(text, newline="")))
    header = [
        col.meta.get("dis")
        if isinstance(col.meta.get("dis"), str) and col.meta.get("dis")
        else col.name
        for col in grid.cols
    ]
    assert records[0] == header
    assert records[1:] == [[cell_text(row.get(c.name)) for c in grid.cols] for row in grid.rows]


def test_an_error_grid_is_written_as_a_row_of_its_meta() -> None:
    text = encode_grid(Grid.make_error("unknown point @x"))
    assert text == "err,dis\r\n\u2713,unknown point @x\r\n"
