"""JSON v4 (Hayson): every kind both ways, grids, errors with positions, fuzzing, scaling."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Iterator
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
from gateway.haystack.codecs import json4, json4_write
from gateway.haystack.codecs.json4 import decode_grid, decode_val, encode_grid, encode_val
from gateway.haystack.tz import UTC, hs_name, hs_tz

from .strategies import (
    assert_only_parse_errors,
    datetimes,
    grids,
    mutations,
    numbers,
    ref_ids,
    scaling_ratio,
    strs,
    uniform_grids,
    values,
)

NY = hs_tz("New_York")

# (value, exact Hayson text): encode_val must write the text and decode_val must read it back.
CASES: list[tuple[Any, str]] = [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    ("hi", '"hi"'),
    ('q"\\\n\u2028𝄞', '"q\\"\\\\\\n\u2028𝄞"'),
    ("m:", '"m:"'),
    (MARKER, '{"_kind":"marker"}'),
    (NA, '{"_kind":"na"}'),
    (REMOVE, '{"_kind":"remove"}'),
    (Number(72.5), "72.5"),
    (Number(72), "72.0"),
    (Number(-1e-5), "-0.00001"),
    (Number(1.5e300), "1.5e+300"),
    (Number(74.2, "°F"), '{"_kind":"number","val":74.2,"unit":"°F"}'),
    (Number(35, "m³/h"), '{"_kind":"number","val":35.0,"unit":"m³/h"}'),
    (Number(math.inf), '{"_kind":"number","val":"INF"}'),
    (Number(-math.inf, "kW"), '{"_kind":"number","val":"-INF","unit":"kW"}'),
    (Number(math.nan, "%"), '{"_kind":"number","val":"NaN","unit":"%"}'),
    (Ref("a-b.c~d:1"), '{"_kind":"ref","val":"a-b.c~d:1"}'),
    (Ref("site", 'Site "A"'), '{"_kind":"ref","val":"site","dis":"Site \\"A\\""}'),
    (Uri("http://x/`y`"), '{"_kind":"uri","val":"http://x/`y`"}'),
    (Symbol("lib:phIoT"), '{"_kind":"symbol","val":"lib:phIoT"}'),
    (dt.date(2024, 3, 1), '{"_kind":"date","val":"2024-03-01"}'),
    (dt.time(8, 12, 5), '{"_kind":"time","val":"08:12:05"}'),
    (dt.time(8, 12, 5, 123000), '{"_kind":"time","val":"08:12:05.123"}'),
    (dt.time(8, 12, 5, 123456), '{"_kind":"time","val":"08:12:05.123456"}'),
    (
        dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=NY),
        '{"_kind":"dateTime","val":"2024-03-01T08:12:05-05:00","tz":"New_York"}',
    ),
    (
        dt.datetime(2024, 7, 1, 8, 12, 5, 250000, tzinfo=NY),
        '{"_kind":"dateTime","val":"2024-07-01T08:12:05.250-04:00","tz":"New_York"}',
    ),
    (
        dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
        '{"_kind":"dateTime","val":"2024-03-01T08:00:00Z","tz":"UTC"}',
    ),
    (
        dt.datetime(2024, 3, 1, 8, 0, tzinfo=hs_tz("GMT+5")),
        '{"_kind":"dateTime","val":"2024-03-01T08:00:00-05:00","tz":"GMT+5"}',
    ),
    (Coord(37.55, -77.45), '{"_kind":"coord","lat":37.55,"lng":-77.45}'),
    (XStr("Bin", "text/plain"), '{"_kind":"xstr","type":"Bin","val":"text/plain"}'),
    ([Number(1), "a", MARKER], '[1.0,"a",{"_kind":"marker"}]'),
    (
        {"dis": "D", "area": Number(35, "ft²")},
        '{"dis":"D","area":{"_kind":"number","val":35.0,"unit":"ft²"}}',
    ),
    (
        Grid([Col("a")], [{"a": Number(1)}]),
        '{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"a"}],"rows":[{"a":1.0}]}',
    ),
]

# What other writers send: read as the value, written differently.
READ_ONLY: list[tuple[str, Any]] = [
    ("72", Number(72)),
    ('{"_kind":"number","val":5}', Number(5)),
    ('{"_kind":"number","val":5,"unit":""}', Number(5)),
    ('{"_kind":"dict","a":1}', {"a": Number(1)}),
    ('{"a":null,"_kind":"dict","b-c":1,"ok":true}', {"ok": True}),
    ('{"_kind":"bin","mime":"text/plain"}', XStr("Bin", "text/plain")),
    ('{"_kind":"time","val":"8:05"}', dt.time(8, 5)),
    ('{"_kind":"ref","val":"x","dis":null}', Ref("x")),
    ('{"_kind":"coord","lat":1,"lng":2}', Coord(1, 2)),
    ('{"_kind":"marker","extra":1}', MARKER),
    ("123456789012345678901234567890", Number(1.2345678901234568e29)),
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
    assert _same(got, val) or (isinstance(val, float) and math.isnan(val)), got
    assert _same(decode_val(text.encode()), got)


@pytest.mark.parametrize(("text", "val"), READ_ONLY)
def test_decode_what_others_write(text: str, val: Any) -> None:
    assert _same(decode_val(text), val)


def test_datetime_without_tz_is_gmt() -> None:
    got = decode_val('{"_kind":"dateTime","val":"2024-03-01T08:00:00-05:00"}')
    assert hs_name(got.tzinfo) == "GMT"
    assert got == dt.datetime(2024, 3, 1, 13, 0, tzinfo=UTC)


def test_datetime_offset_settles_the_dst_fold() -> None:
    first = decode_val('{"_kind":"dateTime","val":"2024-11-03T01:30:00-04:00","tz":"New_York"}')
    second = decode_val('{"_kind":"dateTime","val":"2024-11-03T01:30:00-05:00","tz":"New_York"}')
    assert (first.fold, second.fold) == (0, 1)
    assert second.timestamp() - first.timestamp() == 3600


def test_grid_is_written_with_kind_version_and_col_meta() -> None:
    grid = Grid(
        [Col("id", {"dis": "Id"}), Col("v", {"unit": "kW"})],
        [{"id": Ref("a"), "v": Number(1, "kW")}, {"id": Ref("b")}],
        {"dis": "Title", "ver": "2.0", "skip": None},
    )
    doc = orjson.loads(encode_grid(grid))
    assert doc == {
        "_kind": "grid",
        "meta": {"ver": "3.0", "dis": "Title"},
        "cols": [{"name": "id", "meta": {"dis": "Id"}}, {"name": "v", "meta": {"unit": "kW"}}],
        "rows": [
            {
                "id": {"_kind": "ref", "val": "a"},
                "v": {"_kind": "number", "val": 1.0, "unit": "kW"},
            },
            {"id": {"_kind": "ref", "val": "b"}},
        ],
    }
    assert decode_grid(encode_grid(grid)) == Grid(grid.cols, grid.rows, {"dis": "Title"})


def test_grid_without_kind_and_without_cols() -> None:
    grid = decode_grid(b'{"meta":{"ver":"3.0"},"rows":[{"a":1,"b":"x"},{"c":{"_kind":"marker"}}]}')
    assert grid.col_names == ("a", "b", "c")
    assert grid.rows[1]["c"] is MARKER
    assert decode_grid(b'{"_kind":"grid","meta":{"ver":"3.0"},"cols":[],"rows":[]}') == Grid()


# (document, message part, line, column) for malformed input.
ERRORS: list[tuple[bytes, str, int, int]] = [
    (b"", "invalid JSON", 1, 1),
    (b'{"rows":[1,\n  2,}', "invalid JSON", 2, 5),
    (b"[1]", "a grid must be a JSON object", 1, 1),
    (b'{"_kind":"ref","val":"x"}', "expected a grid", 1, 10),
    (b'{"rows":\n[{"a":1},\n 7]}', "a row must be a JSON object at rows[1]", 3, 2),
    (b'{"rows":[{"a":{"_kind":"foo"}}]}', "unknown _kind 'foo' at rows[0].a._kind", 1, 24),
    (b'{"rows":[{"a":[1,{"_kind":"date","val":"2024-02-30"}]}]}', "invalid date", 1, 40),
    (b'{"rows":[{"a":{"_kind":"number","val":"x"}}]}', "invalid number value", 1, 39),
    (b'{"rows":[{"a":{"_kind":"ref","val":"a b"}}]}', "invalid ref id", 1, 36),
    (
        b'{"rows":[{"a":{"_kind":"dateTime","val":"2024-01-01T00:00:00Z","tz":"Mars"}}]}',
        "unknown time zone 'Mars' at rows[0].a.tz",
        1,
        69,
    ),
    (b'{"cols":[{"name":"Bad"}],"rows":[]}', "invalid column name 'Bad' at cols[0]", 1, 10),
    (b'{"cols":[{"name":"a"},{"name":"a"}]}', "duplicate column 'a' at cols[1]", 1, 23),
    (
        b'{"meta":{"x":{"_kind":"coord","lat":91,"lng":0}}}',
        "coordinate out of range: 91.0, 0.0 at meta.x",
        1,
        14,
    ),
    (b'{"meta":[]}', "'meta' must be a JSON object", 1, 9),
    (b'{"rows":[{"a":{"_kind":"xstr","type":"lower","val":"x"}}]}', "XStr type", 1, 38),
    (b'{"rows":[{"a":1e400}]}', "number is infinity", 1, 15),
    (b'{"rows":[]}\xff', "not valid UTF-8", 1, 12),
    ('{"a":"\udc00"}'.encode("utf-8", "surrogatepass"), "not valid UTF-8", 1, 7),
]


@pytest.mark.parametrize(("data", "msg", "line", "col"), ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_have_message_and_position(data: bytes, msg: str, line: int, col: int) -> None:
    with pytest.raises(ParseError) as info:
        decode_grid(data)
    assert msg in info.value.msg
    assert (info.value.line, info.value.col) == (line, col)


def test_str_input_with_lone_surrogate() -> None:
    with pytest.raises(ParseError) as info:
        decode_grid('{"rows":[{"a":"x\udc00"}]}')
    assert (info.value.line, info.value.col) == (1, 17)


@pytest.mark.parametrize("depth", [500, 1100, 20000])
def test_deep_nesting_is_a_parse_error_or_a_value(depth: int) -> None:
    for doc in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        assert_only_parse_errors(decode_val, doc)
    grid_doc = '{"rows":[{"a":' + "[" * depth + "]" * depth + "}]}"
    if depth > 1024:  # deeper than any JSON parser here accepts
        with pytest.raises(ParseError):
            decode_grid(grid_doc)
    else:
        assert_only_parse_errors(decode_grid, grid_doc)


def test_encode_refuses_what_is_not_haystack() -> None:
    with pytest.raises(TypeError):
        encode_val(object())
    with pytest.raises(ValueError, match="aware"):
        encode_val(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError):
        encode_val("\udc00")
    with pytest.raises(ValueError):
        encode_val(dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(minutes=30))))


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


# -- the fast path for uniform rows (json4_rows) ---------------------------------------------

# Cell strategies for grids whose rows share one shape. Text without the characters JSON must
# escape (those rows fall back to the general reader, checked separately below).
_PLAIN_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='"\\'), max_size=8
)
_INSTANTS = st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2050, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)
UNIFORM_CELLS = st.sampled_from(
    [
        st.just(MARKER),
        st.just(NA),
        _PLAIN_TEXT,
        st.builds(Ref, st.from_regex(r"[A-Za-z0-9_:\-.~]{1,6}", fullmatch=True)),
        st.builds(Ref, st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True), _PLAIN_TEXT),
        st.builds(Number, st.floats(-1e9, 1e9), st.sampled_from(("kW", "°F", "m³/h"))),
        st.floats(-1e300, 1e300).map(Number),
        st.booleans(),
        st.dates(),
        st.builds(Uri, _PLAIN_TEXT),
        st.from_regex(r"[a-z]{1,5}", fullmatch=True).map(Symbol),
        _INSTANTS.map(lambda d: d.astimezone(NY)),
        _INSTANTS,
        _INSTANTS.map(lambda d: d.astimezone(hs_tz("Kolkata"))),
    ]
)


@contextlib.contextmanager
def _fast_path_for_any_size() -> Iterator[None]:
    # The fast path skips documents under a few KB; the tests' grids are smaller.
    saved = json4._FAST_MIN_CHARS
    json4._FAST_MIN_CHARS = 0
    try:
        yield
    finally:
        json4._FAST_MIN_CHARS = saved


def _decode_uniform_any_size(data: bytes) -> Grid | None:
    with _fast_path_for_any_size():
        return json4._decode_uniform(data)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uniform_grids(UNIFORM_CELLS, 40, 60))
def test_fast_path_reads_what_the_general_reader_reads(grid: Grid) -> None:
    data = encode_grid(grid)
    fast = _decode_uniform_any_size(data)
    general = json4._top_grid(orjson.loads(data), None)
    assert general == grid
    if fast is not None:
        assert fast == general
        for a, b in zip(fast.rows, general.rows, strict=True):
            assert all(_same(a[k], b[k]) for k in b)


def test_fast_path_is_taken_for_history_and_points() -> None:
    his = Grid(
        ["ts", "val"],
        [
            {
                "ts": dt.datetime(2024, 1, 1, tzinfo=UTC).astimezone(NY) + dt.timedelta(minutes=i),
                "val": Number(i, "kW"),
            }
            for i in range(100)
        ],
        {"id": Ref("his-main")},
    )
    points = Grid(
        ["id", "dis", "point", "kind", "siteRef", "curVal", "writable"],
        [
            {
                "id": Ref(f"p-{i}", f"Point {i}"),
                "dis": f"Point {i}",
                "point": MARKER,
                "kind": "Number",
                "siteRef": Ref("s"),
                "curVal": Number(i / 4, "°F"),
                "writable": None,
            }
            for i in range(100)
        ],
    )
    for grid in (his, points):
        data = encode_grid(grid)
        assert _decode_uniform_any_size(data) is not None
        assert decode_grid(data) == grid


def test_fast_path_falls_back_on_a_different_row() -> None:
    rows = [{"a": Number(i, "kW"), "b": "x"} for i in range(50)]
    rows[30] = {"a": Number(1, "kW"), "b": "x\ny"}  # an escaped string: not in the template
    rows.append({"a": Number(math.inf, "kW"), "b": "y"})
    grid = Grid(["a", "b"], rows)
    data = encode_grid(grid)
    assert _decode_uniform_any_size(data) is None
    assert decode_grid(data) == grid


def test_fast_path_errors_come_from_the_general_reader() -> None:
    rows = ",".join(
        f'{{"d":{{"_kind":"date","val":"2024-01-{i % 28 + 1:02d}"}}}}' for i in range(60)
    )
    bad = '{"cols":[{"name":"d"}],"rows":[' + rows.replace("2024-01-05", "2024-02-30", 1) + "]}"
    with pytest.raises(ParseError) as info:
        decode_grid(bad)
    assert "invalid date" in info.value.msg and "rows[4].d.val" in info.value.msg


def test_fast_path_only_for_the_top_level_rows() -> None:
    # The first "rows" key belongs to a grid nested in the meta: the template must not apply.
    inner = Grid(["x"], [{"x": Number(i)} for i in range(40)])
    grid = Grid(["y"], [{"y": Number(1)}], {"nested": inner})
    data = encode_grid(grid)
    assert _decode_uniform_any_size(data) is None
    assert decode_grid(data) == grid


# -- malformed and hostile input -------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uniform_grids(UNIFORM_CELLS, 40, 60), st.data())
def test_mutated_uniform_documents_raise_only_parse_errors(grid: Grid, data: st.DataObject) -> None:
    # Damage that the fast path meets first: it must fall back, never fail or misread.
    doc = encode_grid(grid)
    with _fast_path_for_any_size():
        for mutated in data.draw(mutations(doc, max_count=4)):
            assert_only_parse_errors(decode_grid, mutated)
            try:
                general = json4._top_grid(orjson.loads(mutated), None)
            except (orjson.JSONDecodeError, ParseError, json4.Invalid, ValueError, TypeError):
                continue
            except RecursionError:
                continue
            assert decode_grid(mutated) == general


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_parse_errors(data: bytes) -> None:
    assert_only_parse_errors(decode_grid, data)
    assert_only_parse_errors(decode_val, data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids(max_depth=1, nonfinite_units=True), st.data())
def test_mutated_documents_raise_only_parse_errors(grid: Grid, data: st.DataObject) -> None:
    doc = encode_grid(grid)
    for mutated in data.draw(mutations(doc)):
        assert_only_parse_errors(decode_grid, mutated)


_JSON_LEAVES = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
_JSON_LEAVES |= st.text(max_size=5)
_KEYS = ["_kind", "val", "unit", "tz", "lat", "lng", "type", "dis", "meta", "cols", "rows", "name"]
_KINDS = ["marker", "number", "ref", "dateTime", "date", "time", "uri", "symbol", "coord"]
_KINDS += ["xstr", "grid", "dict", "bin", "na", "remove", "nonsense"]


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        _JSON_LEAVES | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
        ),
        max_leaves=12,
    ),
    st.sampled_from(_KINDS),
)
def test_wrong_types_everywhere_raise_only_parse_errors(tree: Any, kind: str) -> None:
    # Well-formed JSON with every _kind and wrong types in every field.
    if isinstance(tree, dict):
        tree["_kind"] = kind
    doc = json.dumps(tree, allow_nan=False)
    assert_only_parse_errors(decode_val, doc)
    assert_only_parse_errors(decode_grid, doc)
    assert_only_parse_errors(decode_grid, '{"rows":[{"a":' + doc + "}]}")
    assert_only_parse_errors(decode_grid, '{"meta":' + doc + ',"cols":' + doc + "}")


def test_every_prefix_fails_cleanly_or_decodes() -> None:
    grid = Grid(
        [Col("id"), Col("v", {"unit": "kW"}), Col("l")],
        [{"id": Ref("a", "A"), "v": Number(1.5, "kW"), "l": [MARKER, {"x": dt.date(2024, 1, 2)}]}],
        {"dis": "é𝄞"},
    )
    doc = encode_grid(grid)
    for end in range(len(doc)):
        assert_only_parse_errors(decode_grid, doc[:end])
    text = doc.decode()
    for end in range(len(text)):
        assert_only_parse_errors(decode_grid, text[:end])


def test_every_prefix_of_a_uniform_document() -> None:
    grid = Grid(["a", "b"], [{"a": Number(i, "kW"), "b": MARKER} for i in range(40)])
    doc = encode_grid(grid)
    for end in range(len(doc) - 40, len(doc)):
        assert_only_parse_errors(decode_grid, doc[:end])
    assert decode_grid(doc) == grid


# -- linear time -----------------------------------------------------------------------------


def _history(n: int) -> bytes:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {"ts": (start + dt.timedelta(minutes=i)).astimezone(NY), "val": Number(i % 1440 / 10, "kW")}
        for i in range(n)
    ]
    return encode_grid(Grid(["ts", "val"], rows))


def _mixed(n: int) -> bytes:
    rows = [
        {"id": Ref(f"r{i}"), "tags": [MARKER, Number(i)]}
        if i % 2
        else {"id": Ref(f"r{i}"), "n": Number(i)}
        for i in range(n)
    ]
    return encode_grid(Grid(["id", "tags", "n"], rows))


@pytest.mark.parametrize("make", [_history, _mixed], ids=["uniform-rows", "general-reader"])
def test_decode_time_grows_linearly(make: Any) -> None:
    # Not a timed assertion: the ratio of two sizes, 8x apart. Linear is 8 (a little more
    # with the allocator and the collector working on a larger heap); quadratic would be 64.
    ratio = scaling_ratio(decode_grid, make(10_000), make(80_000))
    assert ratio < 24, ratio


# -- the writer's fast paths (json4_write) and null cells ----------------------------------

# Per column, the kinds the column writer takes (and a few it leaves to the general writer).
WRITER_CELLS = st.sampled_from(
    [
        st.just(MARKER),
        st.booleans(),
        st.just(True),
        strs(),
        st.just("Number"),
        st.builds(Ref, ref_ids()),
        st.builds(Ref, ref_ids(), strs()),
        st.builds(Ref, ref_ids(), st.none() | strs()),
        st.builds(Number, st.floats(allow_nan=False, allow_infinity=False), st.just("°F")),
        st.floats(allow_nan=False, allow_infinity=False).map(Number),
        numbers(),
        datetimes(),
        datetimes().map(lambda d: d.replace(microsecond=0)),
        _INSTANTS.map(lambda d: d.astimezone(NY)),
        _INSTANTS,
        st.dates(),
        st.none() | st.just(MARKER),
    ]
)


def _general_writer(grid: Grid) -> bytes:
    return json4_write.dump(json4_write._grid_json(grid), json4_write._default)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uniform_grids(WRITER_CELLS, min_rows=16, max_rows=50))
def test_column_writer_writes_what_the_general_writer_writes(grid: Grid) -> None:
    # The rows hold their cells in column order: the two writers must agree byte for byte.
    general = _general_writer(grid)
    assert encode_grid(grid) == general
    head = json4_write.dump(json4_write._grid_json(grid.with_rows(())), json4_write._default)
    written = json4_write.encode_uniform(grid, head)
    if written is not None:
        assert written == general
    assert decode_grid(general) == grid


def test_column_writer_takes_points_and_histories() -> None:
    points = Grid(
        ["id", "dis", "point", "kind", "siteRef", "curVal", "on"],
        [
            {
                "id": Ref(f"p-{i}", f'Point "{i}"'),
                "dis": f"Point {i}\n",
                "point": MARKER,
                "kind": "Number",
                "siteRef": Ref("s"),
                "curVal": Number(i / 8, "°F"),
                "on": i % 3 == 0,
            }
            for i in range(100)
        ],
    )
    start = dt.datetime(2024, 11, 3, 4, tzinfo=UTC)
    his = Grid(
        ["ts", "val"],
        [
            {"ts": (start + dt.timedelta(minutes=i)).astimezone(NY), "val": Number(i)}
            for i in range(200)
        ],
    )
    for grid in (points, his):
        head = json4_write.dump(json4_write._grid_json(grid.with_rows(())), json4_write._default)
        assert json4_write.encode_uniform(grid, head) == _general_writer(grid)
        assert decode_grid(encode_grid(grid)) == grid


def test_column_writer_declines_what_is_not_uniform() -> None:
    rows = [{"a": Number(i, "kW"), "b": Ref(f"r{i}")} for i in range(40)]
    cases = [
        [*rows[:20], {"a": Number(1, "W"), "b": Ref("x")}, *rows[20:]],  # two units
        [*rows[:20], {"a": Number(math.nan, "kW"), "b": Ref("x")}, *rows[20:]],  # NaN
        [*rows[:20], {"a": Number(1, "kW"), "b": Ref("x", "X")}, *rows[20:]],  # dis or not
        [*rows[:20], {"a": Number(1, "kW")}, *rows[20:]],  # a null cell
        [*rows[:20], {"a": Number(1, "kW"), "b": Ref("x"), "c": "undeclared"}, *rows[20:]],
        [*rows[:20], {"a": Number(1, "kW"), "c": Ref("x")}, *rows[20:]],  # another column
    ]
    for case in cases:
        grid = Grid(["a", "b"], case)
        head = json4_write.dump(json4_write._grid_json(grid.with_rows(())), json4_write._default)
        assert json4_write.encode_uniform(grid, head) is None
        assert encode_grid(grid) == _general_writer(grid)


def test_null_cells_are_left_out_of_rows() -> None:
    grid = Grid(["a", "b"], [{"a": Number(1), "b": None}, {"a": None, "b": "x:null"}, {"b": "y"}])
    assert orjson.loads(encode_grid(grid))["rows"] == [{"a": 1.0}, {"b": "x:null"}, {"b": "y"}]
    nested = Grid(["g"], [{"g": grid}])
    assert orjson.loads(encode_grid(nested))["rows"][0]["g"]["rows"][0] == {"a": 1.0}
    # a string that looks like a null cell: written once more, the same
    tricky = Grid(["s"], [{"s": '":null'}])
    assert orjson.loads(encode_grid(tricky))["rows"] == [{"s": '":null'}]
