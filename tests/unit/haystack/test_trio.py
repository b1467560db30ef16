"""Trio reader and writer: every kind both ways, blocks, the published defs, errors, fuzzing."""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable
from pathlib import Path
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
from gateway.haystack.codecs.trio import (
    decode_grid,
    decode_records,
    encode_grid,
    encode_records,
)
from gateway.haystack.tz import UTC, hs_tz

NY = hs_tz("New_York")
DEFS_DIR = Path(__file__).resolve().parents[4] / "shared" / "reference" / "haystack-defs"
needs_defs = pytest.mark.skipif(
    not DEFS_DIR.is_dir(), reason=f"the published Haystack defs are not at {DEFS_DIR}"
)

# One case list, checked both ways: (the text after "v: ", the value).
CANONICAL: list[tuple[str, Any]] = [
    ("NA", NA),
    ("R", REMOVE),
    ("true", True),
    ("false", False),
    ("0", Number(0)),
    ("-12.5", Number(-12.5)),
    ("74.2°F", Number(74.2, "°F")),
    ("5min", Number(5, "min")),
    ("INF", Number(math.inf)),
    ("-INF", Number(-math.inf)),
    ("NaN", Number(math.nan)),
    ("hello", "hello"),
    ("Site-3 Ahu-2", "Site-3 Ahu-2"),
    ("Überstrom 2", "Überstrom 2"),
    ('""', ""),
    ('"3rd Floor"', "3rd Floor"),
    ('"true"', "true"),
    ('"T"', "T"),
    ('"M"', "M"),
    ('"Zinc"', "Zinc"),
    ('"trailing "', "trailing "),
    ('"a: b"', "a: b"),
    ('"Hello (world)"', "Hello (world)"),
    ('"say \\"hi\\" \\$5"', 'say "hi" $5'),
    ('"cr\\rlf"', "cr\rlf"),
    ("`http://x.com/a b`", Uri("http://x.com/a b")),
    ("@p:demo:r:23a-b", Ref("p:demo:r:23a-b")),
    ('@a "Alpha Site"', Ref("a", "Alpha Site")),
    ("^hot-water", Symbol("hot-water")),
    ("^lib:ph", Symbol("lib:ph")),
    ("2024-03-01", dt.date(2024, 3, 1)),
    ("08:12:05", dt.time(8, 12, 5)),
    ("2024-03-01T08:12:05-05:00 New_York", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=NY)),
    ("2024-03-01T08:12:05Z UTC", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=UTC)),
    ("C(37.55,-77.45)", Coord(37.55, -77.45)),
    ('Bin("text/plain")', XStr("Bin", "text/plain")),
    ("[]", []),
    ('[1,"a",@x,M,T]', [Number(1), "a", Ref("x"), MARKER, True]),
    ("{}", {}),
    ('{dis:"D" site area:35ft²}', {"dis": "D", "site": MARKER, "area": Number(35, "ft²")}),
    ('"two\\nlines\\n"', "two\nlines\n"),  # a trailing newline would be lost in a block
    ('"  indented\\n  both"', "  indented\n  both"),  # so would a common indentation
]


@pytest.mark.parametrize(("text", "val"), CANONICAL, ids=[c[0] for c in CANONICAL])
def test_value_both_ways(text: str, val: Any) -> None:
    assert encode_records([{"v": val}]) == f"v: {text}\n"
    got = decode_records(f"v: {text}\n")
    assert got == [{"v": val}]
    assert type(got[0]["v"]) is type(val)
    if isinstance(val, Ref):
        assert got[0]["v"].dis == val.dis


# What people and other writers put in Trio files, and what it reads as.
LENIENT: list[tuple[str, Any]] = [
    ("v:1", Number(1)),
    ("v:     1kW   ", Number(1, "kW")),
    ("v: T", True),
    ("v: F", False),
    ("v: M", "M"),  # Haxall reads a lone M as a Str; the writer always quotes it
    ("v: 3rd Floor", "3rd Floor"),
    ("v: - dash", "- dash"),
    ("v: http://host/path", "http://host/path"),
    ("v: see docHaystack::Ops", "see docHaystack::Ops"),
    ("v: <tag>", "<tag>"),
    ("v: C(1,2", "C(1,2"),  # only a value ending with ) is taken for a Coord or an XStr
    ("v: 8:05", dt.time(8, 5)),
    ("v: 2024-03-01T08:12:05Z", dt.datetime(2024, 3, 1, 8, 12, 5, tzinfo=UTC)),
    ("v: {a:1, b:2}", {"a": Number(1), "b": Number(2)}),
    ("v :1", Number(1)),
    ("v:", ""),
    ("v\t", MARKER),
]


@pytest.mark.parametrize(("line", "val"), LENIENT, ids=[c[0] for c in LENIENT])
def test_lenient_reading(line: str, val: Any) -> None:
    assert decode_records(line + "\n") == [{"v": val}]


SAMPLE = """\
// Points of AHU-1 (a comment)
//
id: @ahu1
dis: "AHU-1"
equip
ahu
siteRef: @site "Main Site"
---------------------------------------------------------------------------
id: @p1
dis: AHU-1 Discharge Temp
point
sensor
kind: Number
unit: °F
modbusCur: "discharge_temp"
tuning: {pollTime:5s staleTime:1min}

notes:
  Mounted after the coil.
    (indented detail)

  Calibrated 2024-03-01.
children: [
  // what the prototype contains
  {damper cmd point},

  {damper sensor point},
]
schedule: Zinc:
  ver:"3.0" dis:"Weekdays"
  start,end
  08:00:00,17:00:00
meta: Trio:
  owner: Facilities
  reviewed
---
"""


def test_sample_document() -> None:
    recs = decode_records(SAMPLE)
    assert len(recs) == 2
    ahu, p1 = recs
    assert ahu == {
        "id": Ref("ahu1"),
        "dis": "AHU-1",
        "equip": MARKER,
        "ahu": MARKER,
        "siteRef": Ref("site", "Main Site"),
    }
    assert ahu["siteRef"].dis == "Main Site"
    assert p1["dis"] == "AHU-1 Discharge Temp"
    assert p1["unit"] == "°F"
    assert p1["tuning"] == {"pollTime": Number(5, "s"), "staleTime": Number(1, "min")}
    assert p1["notes"] == "Mounted after the coil.\n  (indented detail)\n\nCalibrated 2024-03-01."
    assert p1["children"] == [
        {"damper": MARKER, "cmd": MARKER, "point": MARKER},
        {"damper": MARKER, "sensor": MARKER, "point": MARKER},
    ]
    schedule = p1["schedule"]
    assert isinstance(schedule, Grid)
    assert schedule.meta == {"dis": "Weekdays"}
    assert schedule.to_dicts() == [{"start": dt.time(8), "end": dt.time(17)}]
    assert p1["meta"] == {"owner": "Facilities", "reviewed": MARKER}
    # the same document survives our writer, CRLF line ends, a BOM and bytes
    assert decode_records(encode_records(recs)) == recs
    assert decode_records(SAMPLE.replace("\n", "\r\n")) == recs
    assert decode_records(("\ufeff" + SAMPLE).encode("utf-8")) == recs


def test_writer_layout() -> None:
    rec = {
        "zeta": Number(1),
        "site": MARKER,
        "dis": "Main Site",
        "id": Ref("s1"),
        "name": "main",
        "absent": None,
        "doc": "First line.\n\n  Second, indented.",
        "his": Grid([Col("ts"), Col("val")], [{"ts": dt.date(2024, 1, 1), "val": Number(2)}]),
        "nested": [{"g": Grid.empty()}],
    }
    text = encode_records([rec, {"b": MARKER, "a": "x"}])
    assert text == (
        "id: @s1\n"
        "name: main\n"
        "dis: Main Site\n"
        "doc:\n"
        "  First line.\n"
        "\n"
        "    Second, indented.\n"
        "his: Zinc:\n"
        '  ver:"3.0"\n'
        "  ts,val\n"
        "  2024-01-01,2\n"
        "nested: Zinc:\n"
        "  [{g:<<\n"
        '  ver:"3.0"\n'
        "  empty\n"
        "  >>}]\n"
        "site\n"
        "zeta: 1\n"
        "---\n"
        "a: x\n"
        "b\n"
    )
    back = decode_records(text)
    assert back == [{k: v for k, v in rec.items() if v is not None}, {"a": "x", "b": MARKER}]


def test_records_and_separators() -> None:
    assert decode_records("") == []
    assert decode_records("\n\n// only a comment\n---\n-----\n") == []
    assert decode_records("a\n---\n---\nb\n") == [{"a": MARKER}, {"b": MARKER}]
    assert decode_records("---\na\n---   \n") == [{"a": MARKER}]
    assert decode_records("a\n   \n\t\n  // indented comment\nb\n") == [{"a": MARKER, "b": MARKER}]
    assert encode_records([]) == ""
    assert encode_records([{}, {"a": MARKER}, {"b": None}]) == "a\n"


def test_grid_both_ways() -> None:
    grid = Grid.from_rows(
        [{"id": Ref("a"), "dis": "A", "site": MARKER}, {"id": Ref("b"), "area": Number(3, "m²")}]
    )
    text = encode_grid(grid.with_meta(dis="dropped"))
    assert text == "id: @a\ndis: A\nsite\n---\nid: @b\narea: 3m²\n"
    back = decode_grid(text)
    assert back.col_names == ("id", "dis", "site", "area")
    assert back.to_dicts() == grid.to_dicts()
    assert decode_grid(text.encode("utf-8")) == back
    assert decode_grid("").rows == ()


def test_blocks() -> None:
    # a Str block ends at the first line in column 1; trailing blank lines are not part of it
    assert decode_records("a:\n  x\n\n\nb\n") == [{"a": "x", "b": MARKER}]
    assert decode_records("a:\n\n   x\n  y\n") == [{"a": "\n x\ny"}]
    assert decode_records("a:\n\tx\n\ty\n") == [{"a": "x\ny"}]
    # a list opened alone on the tag line, closed in column 1, with comments and blank lines
    assert decode_records("a: [\n  1,\n  // skip [ this\n\n  2\n]\nb\n") == [
        {"a": [Number(1), Number(2)], "b": MARKER}
    ]
    assert decode_records("a: {\n  x: 1\n  y\n  }\n") == [{"a": {"x": Number(1), "y": MARKER}}]
    assert decode_records("a: [\n]\n") == [{"a": []}]
    assert decode_records("a: Zinc:\n  [1,\n   2]\n") == [{"a": [Number(1), Number(2)]}]
    assert decode_records("a: Trio:\n  b: Trio:\n    c\n") == [{"a": {"b": {"c": MARKER}}}]


# (document, line, column) of the error.
ERRORS = [
    ("Abc: 1\n", 1, 1),
    ("a b: 1\n", 1, 1),
    (": 1\n", 1, 1),
    ("a\n  b\n", 2, 1),
    ("a: 1\na: 2\n", 2, 1),
    ("- x\n", 1, 1),
    ("--\n", 1, 1),
    ('a: "open\n', 1, 4),
    ("a: @\n", 1, 4),
    ("a: 1.5.2\n", 1, 7),
    ("x\ndate: 2024-13-45\n", 2, 7),
    ("a: 2024-01-01 junk\n", 1, 14),
    ("a: 12:61:00\n", 1, 4),
    ("a: C(1,2)x)\n", 1, 10),
    ("a: C(100,200)\n", 1, 4),
    ('a: Foo("x)\n', 1, 8),
    ("a: [1,\n  2]\n", 1, 4),
    ("a: [\n  1,\n  2,,\n  ]\n", 3, 5),
    ("a: [\n  1\n  ] x\n", 3, 5),
    ("a: [\n  1\n", 1, 4),
    ("a: {\n  B\n  }\n", 2, 3),
    ("a: foo:\n", 1, 4),
    ("a: Zinc:\nb\n", 1, 1),
    ("a: Zinc:\n  [1,\n   ?]\n", 3, 4),
    ('a: Zinc:\n  ver:"3.0"\n  x,y\n  1,2,3\n', 4, 6),
    ("a: Trio:\n  b\n  ---\n  c\n", 1, 1),
    ("a: Trio:\n", 1, 1),
    ("a: Trio:\n  b: Trio:\n    Bad\n", 3, 5),
    ("a\n---\nb\n  c: 1\n", 4, 1),
]


@pytest.mark.parametrize(("text", "line", "col"), ERRORS, ids=[repr(e[0]) for e in ERRORS])
def test_errors_carry_line_and_column(text: str, line: int, col: int) -> None:
    with pytest.raises(ParseError) as info:
        decode_records(text)
    assert (info.value.line, info.value.col) == (line, col), str(info.value)


def test_not_utf8_and_not_text() -> None:
    with pytest.raises(ParseError, match="UTF-8") as info:
        decode_records(b"a\nb: \xff\n")
    assert (info.value.line, info.value.col) == (2, 4)
    with pytest.raises(ParseError):
        decode_records(42)  # type: ignore[arg-type]


def test_writer_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError):
        encode_records([{"Bad": MARKER}])
    with pytest.raises(ValueError):
        encode_records([{"a": Ref("has space")}])
    with pytest.raises(TypeError):
        encode_records([{"a": object()}])


# -- the published Haystack defs ----------------------------------------------------------------

EXPECTED_DEFS = {"ph": 104, "phScience": 107, "phIoT": 466, "phIct": 42}


@needs_defs
@pytest.mark.parametrize("lib", sorted(EXPECTED_DEFS))
def test_every_published_defs_file_parses(lib: str) -> None:
    files = sorted((DEFS_DIR / lib / "lib").glob("*.trio"))
    assert files, f"no Trio files for {lib}"
    defs = 0
    for path in files:
        records = decode_records(path.read_bytes())
        for rec in records:
            # every record is a def or a defx, named by a Symbol, and carries no stray tags
            assert isinstance(rec.get("def", rec.get("defx")), Symbol), (path.name, rec)
        defs += sum(1 for rec in records if "def" in rec)
        # what we write reads back the same
        assert decode_records(encode_records(records)) == records, path.name
    assert defs == EXPECTED_DEFS[lib]


@needs_defs
def test_published_defs_details() -> None:
    by_name = {}
    for path in DEFS_DIR.glob("*/lib/*.trio"):
        for rec in decode_records(path.read_text(encoding="utf-8")):
            if "def" in rec:
                by_name[rec["def"].val] = rec
    assert len(by_name) == sum(EXPECTED_DEFS.values())
    assert by_name["lib:phIoT"]["depends"] == [Symbol("lib:ph"), Symbol("lib:phScience")]
    assert by_name["lib:ph"]["baseUri"] == Uri("https://project-haystack.org/def/ph/")
    assert by_name["filetype:zinc"]["mime"] == "text/zinc"
    assert by_name["equipRef"]["tagOn"] == [Symbol("equip"), Symbol("point")]
    # a multi-line list with comments and blank lines inside (phIoT actuator.trio)
    assert by_name["damper-actuator"]["children"] == [
        {"damper": MARKER, "cmd": MARKER, "point": MARKER},
        {"damper": MARKER, "sensor": MARKER, "point": MARKER},
    ]
    # unquoted Strs (phIoT synthetic.trio), one holding colons and backticks
    assert [by_name[n]["dis"] for n in ("simOperation", "simBaseline", "simOptimum")] == [
        "Operation",
        "Baseline",
        "Optimum",
    ]
    assert by_name["simOperation"]["doc"].startswith("See `docHaystack::")
    # an indented multi-line Str
    assert by_name["curStatus"]["enum"].startswith("- ok: ")
    assert "\n- stale: " in by_name["curStatus"]["enum"]


# -- truncation, one byte at a time, fuzzing ----------------------------------------------------


def _outcome(decode: Callable[[Any], object], data: Any) -> object:
    """What a decoder gives back: a value, or a ParseError that knows where it happened."""
    try:
        return decode(data)
    except ParseError as exc:
        assert exc.line >= 1 and exc.col >= 1
        return exc


def test_every_truncation_fails_cleanly_or_reads() -> None:
    outcomes = [_outcome(decode_records, SAMPLE[:end]) for end in range(len(SAMPLE) + 1)]
    assert all(isinstance(o, list | ParseError) for o in outcomes)
    assert sum(isinstance(o, ParseError) for o in outcomes) > 10
    assert outcomes[-1] == decode_records(SAMPLE)


def test_one_byte_at_a_time() -> None:
    # Every prefix of the UTF-8 bytes, including cuts inside a multi-byte character (° and Ü).
    data = (SAMPLE + "name: Überstrom\n").encode("utf-8")
    outcomes = [_outcome(decode_records, data[:end]) for end in range(len(data) + 1)]
    assert all(isinstance(o, list | ParseError) for o in outcomes)
    assert any(isinstance(o, ParseError) and "UTF-8" in o.msg for o in outcomes)
    assert outcomes[-1] == decode_records(SAMPLE + "name: Überstrom\n")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_only_parse_errors(data: bytes) -> None:
    assert isinstance(_outcome(decode_records, data), list | ParseError)


@settings(max_examples=500)
@given(st.text(alphabet='ab:\n -/"[]{}()^@`ZincTro:ver3.0,MTF12\t\\<>', max_size=150))
def test_trio_shaped_text_only_parse_errors(text: str) -> None:
    assert isinstance(_outcome(decode_records, text), list | ParseError)


@settings(max_examples=500)
@given(st.data())
def test_mutated_documents_only_parse_errors(data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(SAMPLE)))
    junk = data.draw(st.text(alphabet=st.sampled_from('\n :-/"[]{} \tx@^<>'), max_size=4))
    cut = data.draw(st.integers(0, 3))
    doc = SAMPLE[:pos] + junk + SAMPLE[pos + cut :]
    assert isinstance(_outcome(decode_records, doc), list | ParseError)


def test_deep_nesting_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        decode_records("a: " + "[" * 5000 + "\n")
    deep = "".join(" " * i + "a: Trio:\n" for i in range(500)) + " " * 500 + "b\n"
    with pytest.raises(ParseError):
        decode_records(deep)


# -- hypothesis round trips ---------------------------------------------------------------------

_names = st.builds(operator.add, st.sampled_from("abcdz"), st.text("abzAZ09_", max_size=6))
_units = st.sampled_from([None, "°F", "kW", "%", "m³/h", "min"])
_numbers = st.one_of(
    st.builds(Number, st.floats(allow_nan=False, allow_infinity=False, width=64), _units),
    st.sampled_from([Number(math.inf), Number(-math.inf), Number(math.nan)]),
)
_ids = st.text("aZ09_:-.~", min_size=1, max_size=10)
_tzs = st.sampled_from([UTC, NY, hs_tz("Tokyo"), hs_tz("GMT-3")])
_datetimes = st.builds(
    lambda d, tz: d.replace(tzinfo=tz),
    st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    _tzs,
).map(lambda d: d.astimezone(d.tzinfo))  # settle a DST gap or fold as a real writer would
_scalars = st.one_of(
    st.sampled_from([MARKER, NA, REMOVE, True, False]),
    _numbers,
    st.text(max_size=30),
    st.text(alphabet="ab \n\t-é:", max_size=30),
    # no backslash: Zinc cannot write a Uri that ends in one (reported, not a Trio matter)
    st.builds(Uri, st.text(max_size=20).map(lambda t: t.replace("\\", "/"))),
    st.builds(Ref, _ids, st.one_of(st.none(), st.text(max_size=10))),
    st.builds(Symbol, _ids),
    st.dates(),
    st.times(),
    _datetimes,
    st.builds(
        Coord,
        st.floats(-90, 90, allow_nan=False),
        st.floats(-180, 180, allow_nan=False),
    ),
    st.builds(XStr, st.sampled_from(["Bin", "Span"]), st.text(max_size=10)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_names, inner, max_size=3),
        # a grid with at least one column: Zinc writes a column-less grid with "empty"
        st.builds(
            Grid.from_rows,
            st.lists(
                st.dictionaries(_names, inner, min_size=1, max_size=3), min_size=1, max_size=2
            ),
        ),
    ),
    max_leaves=6,
)
_records = st.lists(st.dictionaries(_names, _values, min_size=1, max_size=4), max_size=3)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_records)
def test_records_round_trip(records: list[dict[str, Any]]) -> None:
    text = encode_records(records)
    assert decode_records(text) == records
    assert decode_records(text.encode("utf-8")) == records


def test_an_error_grid_is_written_as_a_record_of_its_meta() -> None:
    error = Grid.make_error("cannot read the filter", "line 1\nline 2")
    text = encode_grid(error)
    (rec,) = decode_grid(text).rows
    assert rec["err"] is MARKER and rec["dis"] == "cannot read the filter"
    assert rec["errTrace"] == "line 1\nline 2"
