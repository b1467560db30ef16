"""JSON v3 (string prefixes): every kind both ways, grids, errors, fuzzing, scaling."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import orjson
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
from gateway.haystack.codecs.json3 import decode_grid, decode_val, encode_grid, encode_val
from gateway.haystack.tz import UTC, hs_name, hs_tz

from .strategies import assert_only_parse_errors, grids, mutations, scaling_ratio, values

NY = hs_tz("New_York")

# (value, exact JSON v3 text): encode_val must write the text and decode_val must read it back.
CASES: list[tuple[Any, str]] = [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    ("hi", '"hi"'),
    ("", '""'),
    ("a", '"a"'),
    ("m:", '"s:m:"'),
    ("x:y", '"s:x:y"'),
    ("10:30", '"s:10:30"'),
    ('q"\\\n𝄞', '"q\\"\\\\\\n𝄞"'),
    (MARKER, '"m:"'),
    (NA, '"z:"'),
    (REMOVE, '"-:"'),
    (Number(72.5), '"n:72.5"'),
    (Number(72), '"n:72"'),
    (Number(-1e-5), '"n:-1e-05"'),
    (Number(73.2, "°F"), '"n:73.2 °F"'),
    (Number(35, "m³/h"), '"n:35 m³/h"'),
    (Number(math.inf), '"n:INF"'),
    (Number(-math.inf, "kW"), '"n:-INF kW"'),
    (Number(math.nan), '"n:NaN"'),
    (Ref("a-b.c~d:1"), '"r:a-b.c~d:1"'),
    (Ref("site", "Site: A b"), '"r:site Site: A b"'),
    (Uri("http://x/`y`"), '"u:http://x/`y`"'),
    (Symbol("lib:phIoT"), '"y:lib:phIoT"'),
    (dt.date(2024, 3, 1), '"d:2024-03-01"'),
    (dt.time(8, 12, 5), '"h:08:12:05"'),
    (dt.time(8, 12, 5, 123000), '"h:08:12:05.123"'),
    (dt.time(8, 12, 5, 123456), '"h:08:12:05.123456"'),
    (dt.datetime(2015, 6, 8, 15, 47, 41, tzinfo=NY), '"t:2015-06-08T15:47:41-04:00 New_York"'),
    (dt.datetime(2024, 3, 1, 8, 0, 0, 5000, tzinfo=UTC), '"t:2024-03-01T08:00:00.005Z UTC"'),
    (dt.datetime(2024, 3, 1, 8, 0, tzinfo=hs_tz("GMT+5")), '"t:2024-03-01T08:00:00-05:00 GMT+5"'),
    (Coord(37.55, -77.45), '"c:37.55,-77.45"'),
    (XStr("Bin", "text/plain"), '"x:Bin:text/plain"'),
    (XStr("Span", "a:b"), '"x:Span:a:b"'),
    ([Number(1), "a", MARKER], '["n:1","a","m:"]'),
    ({"dis": "D", "area": Number(35, "ft²")}, '{"dis":"D","area":"n:35 ft²"}'),
    (
        Grid([Col("a", {"dis": "A"})], [{"a": Number(1)}], {"title": "T"}),
        '{"meta":{"ver":"3.0","title":"T"},"cols":[{"name":"a","dis":"A"}],"rows":[{"a":"n:1"}]}',
    ),
]

# What other writers send: read as the value, written differently.
READ_ONLY: list[tuple[str, Any]] = [
    ("72", Number(72)),
    ("7.5", Number(7.5)),
    ('"n:1_000"', Number(1000)),
    ('"n:0x1F"', Number(31)),
    ('"n:73.2°F"', Number(73.2, "°F")),
    ('"n:1E5"', Number(100000)),
    ('"b:text/plain"', XStr("Bin", "text/plain")),
    ('"x:"', REMOVE),
    ('"a:b"', "a:b"),
    ('"t:2024-03-01T08:00:00Z"', dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC)),
    ('"t:2024-03-01T08:00:00-05:00"', dt.datetime(2024, 3, 1, 8, 0, tzinfo=hs_tz("GMT+5"))),
    (
        '"t:2024-03-01T08:00:00.123456789-05:00 New_York"',
        dt.datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=NY),
    ),
    ('"h:8:05"', dt.time(8, 5)),
    ('"r:@abc"', Ref("abc")),
    ('"n:1e400"', Number(math.inf)),
    ('{"a":null,"b-c":"m:","ok":"m:"}', {"ok": MARKER}),
]


def _same(a: Any, b: Any) -> bool:
    """Equality that also checks what Haystack equality ignores: Ref dis, DateTime zone."""
    if a != b or a.__class__ is not b.__class__:
        return False
    if isinstance(a, Ref):
        return a.dis == b.dis
    if isinstance(a, dt.datetime):
        return hs_name(a.tzinfo) == hs_name(b.tzinfo) and a.utcoffset() == b.utcoffset()
    if isinstance(a, list):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return all(_same(v, b[k]) for k, v in a.items())
    return True


@pytest.mark.parametrize(("val", "text"), CASES, ids=[c[1][:40] for c in CASES])
def test_encode_each_kind(val: Any, text: str) -> None:
    assert encode_val(val) == text


@pytest.mark.parametrize(("val", "text"), CASES, ids=[c[1][:40] for c in CASES])
def test_decode_each_kind(val: Any, text: str) -> None:
    got = decode_val(text)
    assert _same(got, val), got
    assert _same(decode_val(text.encode()), got)


@pytest.mark.parametrize(("text", "val"), READ_ONLY, ids=[r[0] for r in READ_ONLY])
def test_decode_what_others_write(text: str, val: Any) -> None:
    assert _same(decode_val(text), val)


def test_remove_is_never_written_as_x() -> None:
    assert encode_val([REMOVE, {"a": REMOVE}]) == '["-:",{"a":"-:"}]'


def test_grid_shape_and_nested_grid() -> None:
    inner = Grid([Col("x")], [{"x": MARKER}])
    grid = Grid(
        [Col("id", {"dis": "Id", "width": Number(3)}), Col("g")],
        [{"id": Ref("a", "A"), "g": inner}, {"id": None}],
        {"dis": "Title", "ver": "2.0"},
    )
    doc = orjson.loads(encode_grid(grid))
    assert doc == {
        "meta": {"ver": "3.0", "dis": "Title"},
        "cols": [{"name": "id", "dis": "Id", "width": "n:3"}, {"name": "g"}],
        "rows": [
            {
                "id": "r:a A",
                "g": {"meta": {"ver": "3.0"}, "cols": [{"name": "x"}], "rows": [{"x": "m:"}]},
            },
            {},
        ],
    }
    back = decode_grid(encode_grid(grid))
    assert back == Grid(grid.cols, grid.rows, {"dis": "Title"})
    assert isinstance(back.rows[0]["g"], Grid)


def test_col_meta_named_name_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="name"):
        encode_grid(Grid([Col("a", {"name": "x"})]))


ERRORS: list[tuple[bytes, str, int, int]] = [
    (b"", "invalid JSON", 1, 1),
    (b'{"rows":[\n "m:",]}', "invalid JSON", 2, 6),
    (b'"m:"', "a grid must be a JSON object", 1, 1),
    (b'{"rows":[{"a":"m:"},\n 7]}', "a row must be a JSON object at rows[1]", 2, 2),
    (b'{"rows":[{"a":"n:12 kW","b":"n:abc"}]}', "invalid value 'n:abc'", 1, 29),
    (b'{"rows":[{"a":"m:x"}]}', "invalid value 'm:x'", 1, 15),
    (b'{"rows":[{"a":["d:2024-02-30"]}]}', "day is out of range for month at rows[0].a[0]", 1, 16),
    (b'{"rows":[{"a":"t:2024-01-01T00:00:00Z Mars"}]}', "unknown time zone", 1, 15),
    (b'{"rows":[{"a":"r:a$b"}]}', "invalid ref id", 1, 15),
    (b'{"rows":[{"a":"c:91,0"}]}', "coordinate out of range", 1, 15),
    (b'{"rows":[{"a":"x:lower:v"}]}', "XStr type", 1, 15),
    (b'{"rows":[{"a":"x:Nocolon"}]}', "x:Type:value", 1, 15),
    (b'{"cols":[{"name":"a"},{"name":"1"}]}', "invalid column name '1' at cols[1]", 1, 23),
    (b'{"meta":{"ver":"3.0","x":"y:"}}', "invalid value 'y:': empty symbol at meta.x", 1, 26),
    (b'{"cols":{}}', "'cols' must be a JSON array", 1, 9),
    (b'{"rows":[]}\xc3', "not valid UTF-8", 1, 12),
]


@pytest.mark.parametrize(("data", "msg", "line", "col"), ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_have_message_and_position(data: bytes, msg: str, line: int, col: int) -> None:
    with pytest.raises(ParseError) as info:
        decode_grid(data)
    assert msg in info.value.msg
    assert (info.value.line, info.value.col) == (line, col)


@pytest.mark.parametrize("depth", [500, 1100, 20000])
def test_deep_nesting_is_a_parse_error_or_a_value(depth: int) -> None:
    for doc in ("[" * depth + "]" * depth, '{"a":' * depth + '"m:"' + "}" * depth):
        assert_only_parse_errors(decode_val, doc)
        assert_only_parse_errors(decode_grid, '{"rows":[{"a":' + doc + "}]}")


def test_encode_refuses_what_is_not_haystack() -> None:
    with pytest.raises(TypeError):
        encode_val(object())
    with pytest.raises(TypeError):
        encode_val(1.5)
    with pytest.raises(ValueError, match="aware"):
        encode_val(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError):
        encode_val("\udc00")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values(max_depth=2, nonfinite_units=True))
def test_value_round_trip(val: Any) -> None:
    assert _same(decode_val(encode_val(val)), val)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids(max_depth=1, nonfinite_units=True))
def test_grid_round_trip(grid: Grid) -> None:
    data = encode_grid(grid)
    assert decode_grid(data) == grid
    assert decode_grid(data.decode()) == grid


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_parse_errors(data: bytes) -> None:
    assert_only_parse_errors(decode_grid, data)
    assert_only_parse_errors(decode_val, data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from("mz-nrsudhtcxyb?Q"), st.text(max_size=12))
def test_every_prefix_with_any_text(code: str, rest: str) -> None:
    doc = json.dumps(code + ":" + rest)
    assert_only_parse_errors(decode_val, doc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids(max_depth=1, nonfinite_units=True), st.data())
def test_mutated_documents_raise_only_parse_errors(grid: Grid, data: st.DataObject) -> None:
    doc = encode_grid(grid)
    for mutated in data.draw(mutations(doc)):
        assert_only_parse_errors(decode_grid, mutated)


_LEAVES = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
_LEAVES |= st.integers() | st.text(max_size=5) | st.sampled_from(["m:", "n:1", "r:a", "t:x"])
_KEYS = ["meta", "cols", "rows", "name", "ver", "a", "dis"]


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        _LEAVES,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_wrong_types_everywhere_raise_only_parse_errors(tree: Any) -> None:
    doc = json.dumps(tree, allow_nan=False)
    assert_only_parse_errors(decode_val, doc)
    assert_only_parse_errors(decode_grid, doc)
    assert_only_parse_errors(decode_grid, '{"rows":[{"a":' + doc + "}]}")
    assert_only_parse_errors(decode_grid, '{"meta":' + doc + ',"cols":' + doc + "}")


def test_every_prefix_fails_cleanly_or_decodes() -> None:
    grid = Grid(
        [Col("id", {"dis": "I"}), Col("v"), Col("l")],
        [{"id": Ref("a", "A"), "v": Number(1.5, "kW"), "l": [MARKER, {"x": dt.date(2024, 1, 2)}]}],
        {"dis": "é𝄞"},
    )
    doc = encode_grid(grid)
    for end in range(len(doc)):
        assert_only_parse_errors(decode_grid, doc[:end])
    assert decode_grid(doc) == grid


def _history(n: int) -> bytes:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {"ts": (start + dt.timedelta(minutes=i)).astimezone(NY), "val": Number(i / 10, "kW")}
        for i in range(n)
    ]
    return encode_grid(Grid(["ts", "val"], rows))


def test_decode_time_grows_linearly() -> None:
    # Not a timed assertion: the ratio of two sizes, 8x apart. Linear is 8 (a little more
    # with the allocator and the collector working on a larger heap); quadratic would be 64.
    ratio = scaling_ratio(decode_grid, _history(10_000), _history(80_000))
    assert ratio < 24, ratio
