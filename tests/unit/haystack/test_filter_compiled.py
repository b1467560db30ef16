"""The compiled form of filters: agreement with the interpreter, safety, fallback, memo.

The exhaustive table (every operator x literal x awkward value x path shape) is what catches a
slip in one inlined rule of the code generator; the property tests add random combinations.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import pytest

from gateway.haystack import MARKER, NA, Number, Ref, Symbol, Uri
from gateway.haystack.filter import And, Cmp, Filter, Has, Or, Path, parse_filter
from gateway.haystack.filter.compiler import source_of
from gateway.haystack.tz import UTC
from tests.unit.haystack.test_filter import TS, Status

M = MARKER


def p(*names: str) -> Path:
    return Path(names)


# -------------------------------------------------------------------------------------------
# Compiled form
# -------------------------------------------------------------------------------------------


def test_source_holds_no_user_text() -> None:
    evil = 'x == "\\"); __import__(\\"os\\").system(\\"true\\"); (\\"" or evilTag'
    f = parse_filter(evil)
    src, consts = source_of(f)
    assert "evilTag" not in src
    assert "__import__" not in src
    assert '"x"' not in src and "'x'" not in src
    assert "evilTag" in consts.values()
    assert f.compile()({"x": '"); __import__("os").system("true"); ("'})
    assert not f.compile()({"x": "other"})


def test_deep_tree_built_by_hand_falls_back_to_the_interpreter() -> None:
    # Deeper than Python's parser accepts as source: compile() must still work.
    node: Filter = Has(p("a0"))
    for i in range(1, 120):
        node = And((Or((node, Has(p(f"b{i}")))), Has(p(f"a{i}"))))
    rec = {f"a{i}": M for i in range(120)}
    assert node.matches(rec)
    assert node.compile()(rec)
    assert node.select([rec, {}]) == [rec]
    del rec["a0"]
    assert not node.compile()(rec)


# -------------------------------------------------------------------------------------------
# Compiled == interpreted, exhaustively: every operator x literal x awkward value x path shape
# -------------------------------------------------------------------------------------------

LITERALS: list[Any] = [
    True,
    False,
    Number(75, "°F"),
    Number(75),
    Number(0),
    Number(-1.5, "°C"),
    "ok",
    "",
    Uri("ok"),
    Ref("s1"),
    Ref("x"),
    Symbol("ok"),
    Symbol("point"),
    dt.date(2024, 3, 1),
    dt.time(8, 0),
    TS,
    TS.astimezone(UTC),
]
VALUES: list[Any] = [
    None,
    M,
    NA,
    True,
    False,
    Number(75, "°F"),
    Number(75),
    Number(80, "°F"),
    Number(70),
    Number(math.nan),
    Number(math.nan, "°F"),
    Number(0),
    Number(-0.0),
    Number(-1.5, "°C"),
    Number(75, "°C"),
    "ok",
    "",
    "a",
    "z",
    Status.OK,
    Uri("ok"),
    Ref("s1"),
    Ref("s1", "HQ"),
    Ref("x"),
    Symbol("ok"),
    Symbol("point"),
    dt.date(2024, 3, 1),
    dt.date(2024, 1, 1),
    dt.time(8, 0),
    dt.time(9, 0),
    dt.time(8, 0, tzinfo=UTC),
    TS,
    TS + dt.timedelta(hours=1),
    TS.replace(tzinfo=None),
    TS.astimezone(UTC),
    [Ref("s1"), Ref("x")],
    [Ref("x")],
    [],
    ["ok"],
    [Ref("s1"), "ok"],
    {"v": "ok"},
]

# (filter path, record holding the value, database): the value sits at the end of the path.
SHAPES: dict[str, Any] = {
    "plain": ("v", lambda val: ({"v": val}, {})),
    "ref hop": ("h->v", lambda val: ({"h": Ref("hop")}, {"hop": {"v": val}})),
    "dict": ("d->v", lambda val: ({"d": {"v": val}}, {})),
    "ref list": ("l->v", lambda val: ({"l": [Ref("no"), Ref("hop")]}, {"hop": {"v": val}})),
    "two hops": ("h->h->v", lambda val: ({"h": Ref("a")}, {"a": {"h": Ref("b")}, "b": {"v": val}})),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_compiled_agrees_with_interpreter_everywhere(op: str, shape: str) -> None:
    path_text, build = SHAPES[shape]
    path = Path(tuple(path_text.split("->")))
    disagree = []
    for lit in LITERALS:
        f = Cmp(path, op, lit)
        pred = f.compile()
        for val in VALUES:
            rec, db = build(val)

            def by_id(ref: Ref, db: dict[str, Any] = db) -> Mapping[str, Any] | None:
                return db.get(ref.val)

            for res in (None, by_id):
                want = f.matches(rec, res)
                got = (pred(rec, res), f.select([rec], res) == [rec])
                if got != (want, want):
                    disagree.append((str(f), val, res is not None, want, got))
    assert not disagree


def test_the_exhaustive_table_reaches_both_outcomes() -> None:
    # guard against a table that only ever says False
    outcomes = {
        Cmp(Path(("v",)), op, lit).matches({"v": val})
        for op in ("==", "!=", "<")
        for lit in LITERALS
        for val in VALUES
    }
    assert outcomes == {True, False}
