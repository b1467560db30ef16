"""Haystack filters: semantics table, malformed-filter table, AST and index helpers.

Every semantics case is checked three ways: the interpreter (``matches``), the compiled
predicate (``compile()``) and the compiled loop (``select``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest

from gateway.haystack import MARKER, NA, FilterError, Number, ParseError, Ref, Symbol, Uri
from gateway.haystack.filter import (
    MAX_DEPTH,
    And,
    Cmp,
    Filter,
    Has,
    Missing,
    Or,
    Path,
    format_literal,
    parse_filter,
)
from gateway.haystack.tz import UTC, hs_tz

NY = hs_tz("New_York")
M = MARKER


class Status(StrEnum):
    OK = "ok"
    FAULT = "fault"


# A small database for ``->``: sites, equips, a cycle, a broken link.
DB: dict[str, dict[str, Any]] = {
    "s1": {"id": Ref("s1"), "site": M, "dis": "HQ", "area": Number(35000, "ft²")},
    "s2": {"id": Ref("s2"), "site": M, "dis": "Annex"},
    "e1": {"id": Ref("e1"), "equip": M, "dis": "AHU-1", "siteRef": Ref("s1")},
    "e2": {"id": Ref("e2"), "equip": M, "dis": "AHU-2", "siteRef": Ref("s2")},
    "e3": {"id": Ref("e3"), "equip": M, "dis": "lost", "siteRef": Ref("gone")},
    "c1": {"id": Ref("c1"), "next": Ref("c2"), "dis": "one"},
    "c2": {"id": Ref("c2"), "next": Ref("c1"), "dis": "two"},
}


def resolve(ref: Ref) -> Mapping[str, Any] | None:
    return DB.get(ref.val)


TS = dt.datetime(2024, 3, 1, 8, 0, tzinfo=NY)  # 13:00 UTC

# (filter, records, indices of the records that match); resolver = DB.
CASES: list[tuple[str, list[dict[str, Any]], list[int]]] = [
    # has / missing; None is absent; any other value (False, NA, "") is present
    ("site", [{"site": M}, {}, {"site": None}, {"site": False}, {"site": NA}], [0, 3, 4]),
    ("not site", [{"site": M}, {}, {"site": None}, {"site": ""}], [1, 2]),
    # Str equality; a StrEnum member is a Str; a Uri or Symbol is not
    ('curStatus == "ok"', [{"curStatus": "ok"}, {"curStatus": Status.OK}], [0, 1]),
    ('curStatus == "ok"', [{"curStatus": Uri("ok")}, {"curStatus": Symbol("ok")}], []),
    ('dis == ""', [{"dis": ""}, {"dis": " "}, {}], [0]),
    ('dis == "a\\"b\\n"', [{"dis": 'a"b\n'}, {"dis": "a"}], [0]),
    # Numbers: identical units, no conversion
    ("curVal == 75°F", [{"curVal": Number(75, "°F")}, {"curVal": Number(75)}], [0]),
    ("curVal == 75", [{"curVal": Number(75, "°F")}, {"curVal": Number(75)}], [1]),
    ("d == 1min", [{"d": Number(60, "sec")}, {"d": Number(1, "min")}], [1]),
    ("x > 4°F", [{"x": Number(5)}, {"x": Number(5, "°F")}, {"x": Number(3, "°F")}], [1]),
    ("x != 123°F", [{"x": Number(123)}, {"x": Number(123, "°F")}, {}], [0]),
    ("x >= 10", [{"x": Number(10)}, {"x": Number(9.5)}, {"x": Number(math.nan)}], [0]),
    ("x < -1.5e3", [{"x": Number(-2000)}, {"x": Number(-1500)}], [0]),
    ("x <= 1_000", [{"x": Number(1000)}, {"x": Number(1001)}], [0]),
    ("x == 0x10", [{"x": Number(16)}], [0]),
    ("x == 5", [{"x": 5}, {"x": True}, {"x": "5"}], []),  # not Haystack Numbers
    ("x != 5", [{"x": Number(math.nan)}, {"x": Number(5)}], [0]),
    # != needs the tag; any other present value differs
    ('dis != "a"', [{"dis": "a"}, {"dis": "b"}, {}, {"dis": None}, {"dis": M}], [1, 4]),
    # ordering only within a kind
    ('x < "m"', [{"x": "a"}, {"x": "z"}, {"x": Number(1)}, {"x": Status.FAULT}], [0, 3]),
    ("x < 5", [{"x": "1"}, {"x": dt.date(2024, 1, 1)}, {"x": Number(1)}], [2]),
    ("x > true", [{"x": True}, {"x": False}], []),
    ("x >= @a", [{"x": Ref("a")}, {"x": Ref("b")}], []),
    ("x < ^b", [{"x": Symbol("a")}], []),
    # Date, Time, DateTime
    ("d >= 2024-01-01", [{"d": dt.date(2024, 1, 1)}, {"d": dt.date(2023, 12, 31)}], [0]),
    ("d == 2024-03-01", [{"d": dt.date(2024, 3, 1)}, {"d": TS}], [0]),
    ("d < 2024-03-02", [{"d": TS}], []),  # a DateTime is not a Date
    ("t > 08:00", [{"t": dt.time(8, 0, 1)}, {"t": dt.time(8)}, {"t": dt.time(9, tzinfo=UTC)}], [0]),
    ("t == 08:30:00.5", [{"t": dt.time(8, 30, 0, 500000)}], [0]),
    (
        "ts == 2024-03-01T13:00:00Z UTC",  # the same instant in another zone
        [{"ts": TS}, {"ts": TS.replace(hour=9)}],
        [0],
    ),
    (
        "ts < 2024-03-01T08:30:00-05:00 New_York",
        [{"ts": TS}, {"ts": TS.replace(minute=45)}, {"ts": dt.datetime(2024, 3, 1)}],
        [0],  # a naive date-time never compares
    ),
    # Refs compare by id, not dis
    ("siteRef == @s1", [{"siteRef": Ref("s1", "HQ")}, {"siteRef": Ref("s2")}], [0]),
    ("siteRef == @s1", [{"siteRef": "@s1"}, {"siteRef": Symbol("s1")}], []),
    ("siteRef != @s1", [{"siteRef": Ref("s1", "x")}, {"siteRef": Ref("s2")}, {}], [1]),
    ("id == @p:demo:r:1-a.b~c", [{"id": Ref("p:demo:r:1-a.b~c")}], [0]),
    # Symbols compare as values
    ("def == ^point", [{"def": Symbol("point")}, {"def": Symbol("site")}, {"def": "point"}], [0]),
    ("def != ^lib:ph", [{"def": Symbol("lib:ph")}, {"def": Symbol("lib:phIoT")}], [1]),
    # Uri, Bool
    ("uri == `http://x/a b`", [{"uri": Uri("http://x/a b")}, {"uri": "http://x/a b"}], [0]),
    ("on == true", [{"on": True}, {"on": False}, {"on": Number(1)}, {"on": M}], [0]),
    ("on == false", [{"on": True}, {"on": False}, {"on": Number(0)}], [1]),
    ("on != true", [{"on": True}, {"on": False}, {}], [1]),
    # Lists of Refs: any element
    (
        "airRef == @a",
        [{"airRef": [Ref("a"), Ref("b")]}, {"airRef": [Ref("b")]}, {"airRef": []}],
        [0],
    ),
    (
        "airRef != @a",
        [
            {"airRef": [Ref("a")]},
            {"airRef": [Ref("a"), Ref("b")]},
            {"airRef": []},  # no Refs: the List itself is a present value, not @a
            {"airRef": ["a"]},
            {"airRef": [Ref("a"), "x"]},  # only the Refs of a mixed list count
        ],
        [1, 2, 3],
    ),
    ('airRef != "x"', [{"airRef": [Ref("a")]}, {"airRef": []}], [0, 1]),
    ("airRef", [{"airRef": []}, {"airRef": [Ref("a")]}], [0, 1]),
    ("not airRef", [{"airRef": []}, {}], [1]),
    ('tags == "a"', [{"tags": ["a", "b"]}], []),  # a List of Str is a plain value
    ("airRef < @b", [{"airRef": [Ref("a")]}], []),
    # -> through Refs, nested Dicts and DateTimes
    ('siteRef->dis == "HQ"', [{"siteRef": Ref("s1")}, {"siteRef": Ref("s2")}, {}], [0]),
    ("siteRef->area > 1000ft²", [{"siteRef": Ref("s1")}, {"siteRef": Ref("s2")}], [0]),
    ('equipRef->siteRef->dis == "Annex"', [{"equipRef": Ref("e2")}, {"equipRef": Ref("e1")}], [0]),
    ("equipRef->siteRef->site", [{"equipRef": Ref("e1")}, {"equipRef": Ref("e3")}], [0]),
    ("not equipRef->siteRef->site", [{"equipRef": Ref("e1")}, {"equipRef": Ref("e3")}, {}], [1, 2]),
    ("siteRef->dis", [{"siteRef": Ref("gone")}, {"siteRef": "s1"}, {"siteRef": M}], []),
    ('siteRef->dis != "x"', [{"siteRef": Ref("gone")}, {"siteRef": Ref("s1")}], [1]),
    (
        'airRef->dis == "Annex"',
        [{"airRef": [Ref("s1"), Ref("s2")]}, {"airRef": [Ref("s1"), "s2"]}, {"airRef": [Ref("x")]}],
        [0],
    ),
    ("not airRef->site", [{"airRef": [Ref("e1"), Ref("s1")]}, {"airRef": [Ref("e1")]}], [1]),
    ('equipRef->airRef->dis == "HQ"', [{"equipRef": {"airRef": [Ref("s2"), Ref("s1")]}}], [0]),
    # a cycle c1 <-> c2: every hop consumes a name, so evaluation ends
    ('next->next->next->dis == "two"', [{"next": Ref("c1")}, {"next": Ref("c2")}], [1]),
    ("next->next->next->next->next->next->id == @c2", [{"next": Ref("c1")}], [0]),
    ("meta->a->b == 1", [{"meta": {"a": {"b": Number(1)}}}, {"meta": {"a": Number(1)}}], [0]),
    ("meta->a", [{"meta": {"a": M}}, {"meta": {"a": None}}, {"meta": {}}, {"meta": "a"}], [0]),
    ("ts->date == 2024-03-01", [{"ts": TS}, {"ts": TS + dt.timedelta(days=1)}], [0]),
    ("ts->time >= 08:00", [{"ts": TS}, {"ts": TS.replace(hour=7)}], [0]),
    ('ts->tz == "New_York"', [{"ts": TS}, {"ts": TS.astimezone(UTC)}], [0]),
    ("ts->year", [{"ts": TS}], []),
    # precedence and parentheses
    ("a or b and c", [{"a": M}, {"b": M}, {"b": M, "c": M}, {"c": M}], [0, 2]),
    ("(a or b) and c", [{"a": M}, {"b": M, "c": M}, {"a": M, "c": M}, {"c": M}], [1, 2]),
    ("not a and b", [{"b": M}, {"a": M, "b": M}, {}], [0]),
    ("not a or b", [{"b": M}, {"a": M}, {}], [0, 2]),
    ("a and (b or (c and not d))", [{"a": M, "c": M}, {"a": M, "c": M, "d": M}, {"c": M}], [0]),
    ("((a))", [{"a": M}, {}], [0]),
    ("a\tand\n b", [{"a": M, "b": M}, {"a": M}], [0]),
    ("a->b == 1 or a == 2", [{"a": Number(2)}, {"a": {"b": Number(1)}}], [0, 1]),
]


@pytest.mark.parametrize(("text", "records", "expected"), CASES, ids=[c[0] for c in CASES])
def test_semantics(text: str, records: list[dict[str, Any]], expected: list[int]) -> None:
    f = parse_filter(text)
    pred = f.compile()
    interpreted = [i for i, r in enumerate(records) if f.matches(r, resolve)]
    compiled = [i for i, r in enumerate(records) if pred(r, resolve)]
    position = {id(r): i for i, r in enumerate(records)}
    selected = [position[id(r)] for r in f.select(records, resolve)]
    assert interpreted == expected
    assert compiled == expected
    assert selected == expected


@pytest.mark.parametrize(
    ("text", "rec", "without", "with_db"),
    [
        ('siteRef->dis == "HQ"', {"siteRef": Ref("s1")}, False, True),
        ("siteRef->site", {"siteRef": Ref("s1")}, False, True),
        ("not siteRef->site", {"siteRef": Ref("s1")}, True, False),
        ("meta->a", {"meta": {"a": M}}, True, True),  # a nested Dict needs no resolver
    ],
)
def test_no_resolver_follows_no_ref(
    text: str, rec: dict[str, Any], without: bool, with_db: bool
) -> None:
    f = parse_filter(text)
    assert f.matches(rec) is without
    assert f.compile()(rec) is without
    assert (f.select([rec]) == [rec]) is without
    assert f.matches(rec, resolve) is with_db
    assert f.compile()(rec, resolve) is with_db


def test_cycle_is_finite() -> None:
    calls: list[str] = []

    def counting(ref: Ref) -> Mapping[str, Any] | None:
        calls.append(ref.val)
        return DB.get(ref.val)

    f = parse_filter('next->next->next->next->dis == "two"')
    assert f.matches({"next": Ref("c1")}, counting)
    assert calls == ["c1", "c2", "c1", "c2"]  # one lookup per hop, then it stops
    assert f.compile()({"next": Ref("c1")}, counting)
    assert len(calls) == 8


def test_broken_links_give_null() -> None:
    rec = {"equipRef": Ref("e3")}  # e3's siteRef points nowhere
    assert parse_filter("not equipRef->siteRef->dis").matches(rec, resolve)
    assert not parse_filter('equipRef->siteRef->dis != "x"').compile()(rec, resolve)


# -------------------------------------------------------------------------------------------
# Malformed filters: (text, 0-based position, part of the message)
# -------------------------------------------------------------------------------------------

MALFORMED: list[tuple[str, int, str]] = [
    ("", 0, "empty"),
    ("   ", 3, "empty"),
    ("a ==", 4, "expected a value after '=='"),
    ("a == ", 5, "expected a value after '=='"),
    ("curVal >= ", 10, "expected a value after '>='"),
    ("not (a or b)", 4, "'not' takes a tag path, not a parenthesis"),
    ("not", 3, "expected a tag name after 'not'"),
    ("not not a", 4, "'not' is a keyword"),
    ("not 5", 4, "expected a tag name after 'not'"),
    ("a and", 5, "after 'and'"),
    ("a or or b", 5, "after 'or', found 'or'"),
    ("and", 0, "expected a tag name, 'not' or '('"),
    ("(a", 2, "expected ')' to close the '(' at 0"),
    ("((a) or (b", 10, "expected ')' to close the '(' at 8"),
    ("a)", 1, "')' without a matching '('"),
    ("()", 1, "expected a tag name"),
    ("a b", 2, "expected 'and', 'or' or the end of the filter, found 'b'"),
    ("a == 5 == 6", 7, "found '=='"),
    ("A", 0, "lower-case"),
    ("site and Meter", 9, "lower-case"),
    ("a->", 3, "after '->'"),
    ("a->B", 3, "lower-case"),
    ("a->not", 3, "keyword"),
    ("a = 1", 2, "'=' is not an operator"),
    ("a ! b", 2, "'!' is not an operator"),
    ("a == INF", 5, "INF and NaN"),
    ("a == -INF", 5, "INF and NaN"),
    ("a > NaN", 4, "INF and NaN"),
    ("a == T", 5, "true or false"),
    ("a == N", 5, "expected a value"),
    ("a == x", 5, "expected a value after '==', found 'x'"),
    ("a == [1]", 5, "found '['"),
    ("a == {b}", 5, "found '{'"),
    ("a == C(1,2)", 5, "found 'C'"),
    ('a == Bin("x")', 5, "found 'Bin'"),
    ("a == -", 5, "expected a value"),
    ('a == "x', 5, "unterminated string"),
    ('a == "\\q"', 6, "invalid escape"),
    ('a ==\n "\\q"', 7, "invalid escape"),
    ("a == `x", 5, "unterminated uri"),
    ('a == @x "dis"', 8, "no display string"),
    ("a == @", 5, "invalid ref"),
    ("a == ^", 5, "invalid symbol"),
    ("a == 1e999", 5, "out of range"),
    ("a == 2024-13-01", 5, "invalid date"),
    ("a == 25:00", 5, "invalid time"),
    ('a == "x"y', 8, "found 'y'"),
    ("^ahu", 0, "expected a tag name"),
    ("é", 0, "expected a tag name"),
    ("a and ^b", 6, "after 'and'"),
    ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "nested deeper"),
]


@pytest.mark.parametrize(("text", "pos", "msg"), MALFORMED, ids=[m[0][:40] for m in MALFORMED])
def test_malformed(text: str, pos: int, msg: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    err = info.value
    assert isinstance(err, ParseError)
    assert err.pos == pos
    assert msg in err.msg
    assert err.text == text
    # line and column agree with the position
    assert err.line == text.count("\n", 0, pos) + 1
    assert err.col == pos - (text.rfind("\n", 0, pos) + 1) + 1


def test_nesting_up_to_the_limit_parses() -> None:
    text = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert parse_filter(text) == Has(Path(("a",)))


def test_not_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_filter(b"site")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [c[0] for c in CASES])
def test_every_prefix_parses_or_raises_filter_error(text: str) -> None:
    for end in range(len(text) + 1):
        try:
            parse_filter(text[:end])
        except FilterError as exc:
            assert 0 <= exc.pos <= end


# -------------------------------------------------------------------------------------------
# AST: structure, canonical text, immutability
# -------------------------------------------------------------------------------------------


def p(*names: str) -> Path:
    return Path(names)


AST_CASES: list[tuple[str, Filter, str]] = [
    ("site", Has(p("site")), "site"),
    ("not  site", Missing(p("site")), "not site"),
    ("a -> b->c", Has(p("a", "b", "c")), "a->b->c"),
    ("x==5", Cmp(p("x"), "==", Number(5)), "x == 5"),
    ("x>=5.50kW", Cmp(p("x"), ">=", Number(5.5, "kW")), "x >= 5.5kW"),
    ("x != -0.25", Cmp(p("x"), "!=", Number(-0.25)), "x != -0.25"),
    ("x<1_000", Cmp(p("x"), "<", Number(1000)), "x < 1000"),
    ('x == "a\\u0041\\$"', Cmp(p("x"), "==", "aA$"), 'x == "aA\\$"'),
    ("x == `a b`", Cmp(p("x"), "==", Uri("a b")), "x == `a b`"),
    ("x == @p:a-b", Cmp(p("x"), "==", Ref("p:a-b")), "x == @p:a-b"),
    ("def==^hot-water", Cmp(p("def"), "==", Symbol("hot-water")), "def == ^hot-water"),
    ("x == true", Cmp(p("x"), "==", True), "x == true"),
    ("x == false", Cmp(p("x"), "==", False), "x == false"),
    ("d <= 2024-03-01", Cmp(p("d"), "<=", dt.date(2024, 3, 1)), "d <= 2024-03-01"),
    ("t > 8:05", Cmp(p("t"), ">", dt.time(8, 5)), "t > 08:05:00"),
    ("ts < 2024-03-01T08:00:00-05:00 New_York", Cmp(p("ts"), "<", TS), None),
    ("ts < 2024-03-01T13:00:00Z", Cmp(p("ts"), "<", TS), "ts < 2024-03-01T13:00:00Z UTC"),
    ("true == 1", Cmp(p("true"), "==", Number(1)), "true == 1"),  # a tag may be named true
    ("a and b and c", And((Has(p("a")), Has(p("b")), Has(p("c")))), "a and b and c"),
    (
        "(a and b) and c",
        And((And((Has(p("a")), Has(p("b")))), Has(p("c")))),
        "(a and b) and c",
    ),
    (
        "a or b and c",
        Or((Has(p("a")), And((Has(p("b")), Has(p("c")))))),
        "a or b and c",
    ),
    (
        "(a or b) and not c",
        And((Or((Has(p("a")), Has(p("b")))), Missing(p("c")))),
        "(a or b) and not c",
    ),
    ("a or (b or c)", Or((Has(p("a")), Or((Has(p("b")), Has(p("c")))))), "a or (b or c)"),
    ("(a and b) or c", Or((And((Has(p("a")), Has(p("b")))), Has(p("c")))), "a and b or c"),
]


@pytest.mark.parametrize(("text", "ast", "canonical"), AST_CASES, ids=[a[0] for a in AST_CASES])
def test_parse_to_ast(text: str, ast: Filter, canonical: str | None) -> None:
    parsed = parse_filter(text)
    assert parsed == ast
    assert hash(parsed) == hash(ast)
    out = str(parsed)
    if canonical is not None:
        assert out == canonical
    assert parse_filter(out) == ast
    assert str(parse_filter(out)) == out


def test_nodes_are_frozen_and_hashable() -> None:
    f = parse_filter("a and b == 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.terms = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Has(p("a")).path = p("b")  # type: ignore[misc]
    assert {f: 1}[parse_filter("a and b == 1")] == 1
    assert Has(p("a")) != Missing(p("a"))
    assert Cmp(p("a"), "==", True) != Cmp(p("a"), "==", Number(1))


def test_compiled_predicate_is_memoised_on_the_node() -> None:
    f = parse_filter("a and b")
    assert f.compile() is f.compile()
    assert parse_filter("a and b").compile() is not f.compile()  # a fresh object compiles anew
    assert f == parse_filter("a and b")  # the memo is not part of equality


@pytest.mark.parametrize(
    ("build", "exc"),
    [
        (lambda: Path(()), ValueError),
        (lambda: Path(("A",)), ValueError),
        (lambda: Path(("and",)), ValueError),
        (lambda: Path(["a"]), ValueError),  # type: ignore[arg-type]
        (lambda: Has("a"), TypeError),  # type: ignore[arg-type]
        (lambda: Cmp(p("a"), "=", Number(1)), ValueError),
        (lambda: Cmp(p("a"), "==", Number(math.nan)), ValueError),
        (lambda: Cmp(p("a"), "==", Number(math.inf, "°F")), ValueError),
        (lambda: Cmp(p("a"), "==", None), TypeError),
        (lambda: Cmp(p("a"), "==", M), TypeError),
        (lambda: Cmp(p("a"), "==", 5), TypeError),
        (lambda: Cmp(p("a"), "==", [Ref("a")]), TypeError),
        (lambda: Cmp(p("a"), "==", dt.datetime(2024, 1, 1)), ValueError),
        (lambda: Cmp(p("a"), "==", Ref("a b")), ValueError),
        (lambda: Cmp(p("a"), "==", Number(1, "a b")), ValueError),
        (lambda: And((Has(p("a")),)), ValueError),
        (lambda: Or([Has(p("a")), Has(p("b"))]), ValueError),  # type: ignore[arg-type]
        (lambda: And((Has(p("a")), "b")), TypeError),  # type: ignore[arg-type]
    ],
)
def test_invalid_nodes(build: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        build()


def test_literals_are_normalised() -> None:
    assert Cmp(p("s"), "==", Status.OK).val.__class__ is str
    assert str(Cmp(p("s"), "==", Status.OK)) == 's == "ok"'
    assert str(Cmp(p("r"), "==", Ref("a", "Alpha"))) == "r == @a"
    odd = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert format_literal(odd) == "2024-01-01T06:30:00Z UTC"
    assert parse_filter(str(Cmp(p("t"), "==", odd))) == Cmp(p("t"), "==", odd)
