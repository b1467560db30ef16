"""Zinc reader and writer: every kind both ways, grids, leniency, errors, truncation, fuzzing."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.haystack import (
    MARKER,
    NA,
    REMOVE,
    Col,
    Coord,
    Grid,
    Number,
    ParseError,
    Ref,
    Symbol,
    Uri,
    XStr,
)
from gateway.haystack.codecs.zinc import (
    decode_grid,
    decode_val,
    encode_grid,
    encode_val,
    scan_val,
)
from gateway.haystack.tz import UTC, hs_tz

NY = hs_tz("New_York")

# One case list, checked both ways: (canonical Zinc text, value).
CANONICAL = [
    ("N", None),
    ("M", MARKER),
    ("NA", NA),
    ("R", REMOVE),
    ("T", True),
    ("F", False),
    ("0", Number(0)),
    ("-12.5", Number(-12.5)),
    ("74.2°F", Number(74.2, "°F")),
    ("5min", Number(5, "min")),
    ("35%", Number(35, "%")),
    ("12.5m³/h", Number(12.5, "m³/h")),
    ("1.0E-5", None),  # placeholder replaced below (read-only form)
    ("INF", Number(math.inf)),
    ("-INF", Number(-math.inf)),
    ("NaN", Number(math.nan)),
    ("1e+20", Number(1e20)),
    ('"hello"', "hello"),
    ('""', ""),
    ('"a\\"b\\\\c\\n\\t\\$"', 'a"b\\c\n\t$'),
    ('"caf\u00e9 \u2603"', "caf\u00e9 \u2603"),
    ("`http://x.com/a b`", Uri("http://x.com/a b")),
    ("`a\\`b`", Uri("a`b")),
    ("`a\\\\b\\`c`", Uri("a\\b`c")),
    ("@p:demo:r:23a-b.c~d_e", Ref("p:demo:r:23a-b.c~d_e")),
    ('@a "Alpha Site"', Ref("a", "Alpha Site")),
    ("^hot-water", Symbol("hot-water")),
    ("^lib:ph", Symbol("lib:ph")),
    ("2024-03-01", dt.date(2024, 3, 1)),
    ("08:12:05", dt.time(8, 12, 5)),
    ("08:12:05.123", dt.time(8, 12, 5, 123000)),
    ("2024-03-01T08:12:05-05:00 New_York", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=NY)),
    ("2024-03-01T08:12:05Z UTC", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=UTC)),
    (
        "2024-03-01T08:12:05.500+03:00 GMT-3",
        dt.datetime(2024, 3, 1, 8, 12, 5, 500000, tzinfo=hs_tz("GMT-3")),
    ),
    ("C(37.55,-77.45)", Coord(37.55, -77.45)),
    ('Bin("text/plain")', XStr("Bin", "text/plain")),
    ("[]", []),
    ('[1,"a",@x,M]', [Number(1), "a", Ref("x"), MARKER]),
    ("{}", {}),
    ('{dis:"D" site area:35ft²}', {"dis": "D", "site": MARKER, "area": Number(35, "ft²")}),
    ("[[1],{a:[]}]", [[Number(1)], {"a": []}]),
]
CANONICAL = [c for c in CANONICAL if c[0] != "1.0E-5"]


@pytest.mark.parametrize(("text", "val"), CANONICAL, ids=[c[0] for c in CANONICAL])
def test_value_both_ways(text: str, val: object) -> None:
    assert encode_val(val) == text
    got = decode_val(text)
    assert got == val
    assert type(got) is type(val)
    if isinstance(val, Ref):
        assert isinstance(got, Ref) and got.dis == val.dis
    if isinstance(val, dt.datetime):
        assert isinstance(got, dt.datetime) and got.tzinfo == val.tzinfo


# What real writers emit, and what it reads as.
LENIENT = [
    ("1.0E5", Number(1e5)),
    ("1.0e-5kW", Number(1e-5, "kW")),
    ("10_000", Number(10000)),
    ("0x1F", Number(31)),
    ("2024-03-01T08:12:05Z", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=UTC)),
    ("2024-03-01T08:12:05+00:00 UTC", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=UTC)),
    ("2024-03-01T08:12:05-05:00", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=hs_tz("GMT+5"))),
    (
        "2024-03-01T08:12:05.123456789-05:00 New_York",
        dt.datetime(2024, 3, 1, 8, 12, 5, 123456, tzinfo=NY),
    ),
    ("8:05", dt.time(8, 5)),
    ('"\\u00e9\\uD83D\\uDE00"', "\u00e9\U0001f600"),
    ('"raw $ sign"', "raw $ sign"),
    ("Bin(text/plain)", XStr("Bin", "text/plain")),
    ("{a:1, b:2}", {"a": Number(1), "b": Number(2)}),
    ("[1, 2 ,3]", [Number(1), Number(2), Number(3)]),
    ("  M  ", MARKER),
]


@pytest.mark.parametrize(("text", "val"), LENIENT, ids=[c[0] for c in LENIENT])
def test_lenient_reading(text: str, val: object) -> None:
    assert decode_val(text) == val


def test_dst_fold_is_settled_by_the_offset() -> None:
    first = decode_val("2024-11-03T01:30:00-04:00 New_York")
    second = decode_val("2024-11-03T01:30:00-05:00 New_York")
    assert first.utcoffset() == dt.timedelta(hours=-4)
    assert second.utcoffset() == dt.timedelta(hours=-5)
    assert encode_val(first).startswith("2024-11-03T01:30:00-04:00")
    assert encode_val(second).startswith("2024-11-03T01:30:00-05:00")


def test_scan_val_reports_the_end() -> None:
    text = "x == 5kW and y"
    val, end = scan_val(text, 5)
    assert val == Number(5, "kW")
    assert text[end:] == " and y"
    val, end = scan_val('@a "A" rest', 0)
    assert val == Ref("a") and end == 6
    dt_val, end = scan_val("2024-03-01T08:12:05Z UTC and", 0)
    assert dt_val.tzinfo is UTC and end == 24
    # a following lower-case word is never taken for a zone name
    dt_val, end = scan_val("{t:2024-03-01T08:12:05Z site}", 3)
    assert end == 23


SPEC_GRID = """ver:"3.0" database:"test" dis:"Site Energy Summary"
siteName dis:"Sites", val dis:"Value" unit:"kW"
"Site 1", 356.214kW
"Site 2", 463.028kW
"""


def test_spec_example_grid() -> None:
    grid = decode_grid(SPEC_GRID)
    assert grid.meta == {"database": "test", "dis": "Site Energy Summary"}
    assert grid.col_names == ("siteName", "val")
    assert grid.cols[1].meta == {"dis": "Value", "unit": "kW"}
    assert grid.to_dicts() == [
        {"siteName": "Site 1", "val": Number(356.214, "kW")},
        {"siteName": "Site 2", "val": Number(463.028, "kW")},
    ]


def _grid_cases() -> list[Grid]:
    nested = Grid(["a", "b"], [{"a": Number(1), "b": "x,y"}], {"nested": MARKER})
    return [
        Grid.empty(),
        Grid.make_error("bad filter", "line 1\nline 2"),
        Grid(["a"], [{"a": None}, {"a": MARKER}, {}]),
        Grid(["a", "b", "c"], [{}, {"b": "only b"}, {"a": Ref("x", "X, Y")}]),
        Grid(
            [Col("ts"), Col("v0", {"id": Ref("p1", "Point 1"), "unit": "kW"})],
            [
                {"ts": dt.datetime(2024, 1, 1, tzinfo=NY), "v0": Number(1.5, "kW")},
                {"ts": dt.datetime(2024, 1, 1, 0, 15, tzinfo=NY)},
            ],
            {"hisStart": dt.datetime(2024, 1, 1, tzinfo=NY), "id": Ref("p1")},
        ),
        Grid(
            ["x", "y"],
            [
                {"x": [Number(1), {"d": nested}], "y": nested},
                {"x": 's, with "quotes" and \\ and $', "y": Uri("http://a/`b`")},
                {"x": Coord(-33.9, 151.2), "y": XStr("Span", "today")},
            ],
        ),
        Grid(["v"], [{"v": "line1\nline2"}, {"v": "\u00e9\u2603\U0001f600"}]),
    ]


@pytest.mark.parametrize("grid", _grid_cases(), ids=lambda g: repr(g))
def test_grid_round_trip(grid: Grid) -> None:
    text = encode_grid(grid)
    assert text.startswith('ver:"3.0"')
    assert decode_grid(text) == grid
    assert decode_grid(text.encode("utf-8")) == grid
    assert decode_grid(text.replace("\n", "\r\n")) == grid
    assert decode_grid(text + "\n\n") == grid


def test_single_column_grid_writes_n_for_null() -> None:
    assert encode_grid(Grid(["a"], [{"a": None}, {"a": MARKER}])).splitlines()[2:] == ["N", "M"]


def test_empty_grid_text() -> None:
    assert encode_grid(Grid.empty()) == 'ver:"3.0"\nempty\n'
    assert decode_grid('ver:"3.0"\nempty\n') == Grid.empty()
    assert decode_grid('ver:"3.0"\nnoCols\n').col_names == ("noCols",)
    assert decode_grid('ver:"2.0"\na\n1\n').rows[0]["a"] == Number(1)


def test_null_cells_and_spaces() -> None:
    grid = decode_grid('ver:"3.0"\na,b,c\n,  ,N\n 1 , "x" ,M\n')
    assert grid.to_dicts() == [{}, {"a": Number(1), "b": "x", "c": MARKER}]


def test_fast_and_general_paths_agree() -> None:
    simple = 'ver:"3.0"\nid,v,s\n@a "A",1kW,"x"\n@b,2kW,"y"\n'
    # the second document forces every row through the general scanner ([ is "slow")
    general = simple.replace('"x"', '"x[1]"').replace('"y"', '"y[2]"')
    a, b = decode_grid(simple), decode_grid(general)
    assert [r["v"] for r in a] == [r["v"] for r in b]
    assert [r["id"].dis for r in a] == [r["id"].dis for r in b]


ERRORS = [
    ("", 1, 1),
    ("ver:3.0\na\n", 1, 5),
    ('ver:"9.9"\na\n', 1, 5),
    ('ver:"3.0"\n', 2, 1),
    ('ver:"3.0"\na,b\n1\n', 3, 2),
    ('ver:"3.0"\na\n"unterminated\n', 3, 1),
    ('ver:"3.0"\na\n@\n', 3, 1),
    ('ver:"3.0"\na\n"bad \\q escape"\n', 3, 6),
    ('ver:"3.0"\na\n2024-13-45\n', 3, 1),
    ('ver:"3.0"\na\n2024-03-01T08:12:05-05:00 Atlantis\n', 3, 1),
    ('ver:"3.0"\na\n[1,2\n', 3, 1),
    ('ver:"3.0"\na\n{a:1\n', 3, 1),
    ('ver:"3.0"\na\n<<\nver:"3.0"\nb\n1\n', 4, 1),
    ('ver:"3.0"\na,a\n', 2, 3),
    ('ver:"3.0"\nA\n', 2, 1),
    ('ver:"3.0"\na\n1 2\n', 3, 3),
    ('ver:"3.0"\na\n"\\uD800"\n', 3, 2),
    ('ver:"3.0"\na\nC(1)\n', 3, 1),
    ('ver:"3.0"\na\n1\n\nmore\n', 5, 1),
]


@pytest.mark.parametrize(("text", "line", "col"), ERRORS, ids=[repr(e[0]) for e in ERRORS])
def test_errors_carry_line_and_column(text: str, line: int, col: int) -> None:
    with pytest.raises(ParseError) as info:
        decode_grid(text)
    assert (info.value.line, info.value.col) == (line, col), str(info.value)


def test_not_utf8() -> None:
    with pytest.raises(ParseError, match="UTF-8"):
        decode_grid(b'ver:"3.0"\na\n"\xff"\n')


def test_writer_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError):
        encode_grid(Grid(["Bad"], [{"Bad": 1}]))
    with pytest.raises(ValueError):
        encode_val(Ref("has space"))
    with pytest.raises(ValueError):
        encode_val(Number(1, "k W"))
    with pytest.raises(TypeError):
        encode_val(object())


def _outcome(decode: Callable[[Any], object], data: Any) -> object:
    """What a decoder gives back: a value, or a ParseError that knows where it happened."""
    try:
        return decode(data)
    except ParseError as exc:
        assert exc.line >= 1 and exc.col >= 1
        return exc


def test_every_truncation_fails_cleanly_or_reads() -> None:
    doc = encode_grid(_grid_cases()[5])
    outcomes = [_outcome(decode_grid, doc[:end]) for end in range(len(doc))]
    assert all(isinstance(o, Grid | ParseError) for o in outcomes)
    assert isinstance(outcomes[0], ParseError)


def test_one_byte_at_a_time_utf8_boundaries() -> None:
    # Every prefix of the UTF-8 bytes, including cuts inside a multi-byte character.
    data = encode_grid(_grid_cases()[6]).encode("utf-8")
    outcomes = [_outcome(decode_grid, data[:end]) for end in range(len(data) + 1)]
    assert all(isinstance(o, Grid | ParseError) for o in outcomes)
    assert outcomes[-1] == _grid_cases()[6]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_only_parse_errors(data: bytes) -> None:
    assert isinstance(_outcome(decode_grid, data), Grid | ParseError)


@settings(max_examples=300)
@given(st.text(alphabet='ver:"3.0"\nabc,MNTF@^`[]{}<>()-0129.:ZTe \\u$', max_size=120))
def test_zinc_shaped_text_only_parse_errors(text: str) -> None:
    assert isinstance(_outcome(decode_grid, text), Grid | ParseError)
    _outcome(decode_val, text)


@settings(max_examples=300)
@given(st.data())
def test_mutated_documents_only_parse_errors(data: st.DataObject) -> None:
    doc = encode_grid(_grid_cases()[data.draw(st.integers(0, len(_grid_cases()) - 1))])
    pos = data.draw(st.integers(0, len(doc)))
    junk = data.draw(st.text(max_size=5))
    cut = data.draw(st.integers(0, 3))
    assert isinstance(_outcome(decode_grid, doc[:pos] + junk + doc[pos + cut :]), Grid | ParseError)


def test_deep_nesting_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        decode_val("[" * 5000)
    with pytest.raises(ParseError):
        decode_grid('ver:"3.0"\na\n' + "[" * 5000 + "\n")
