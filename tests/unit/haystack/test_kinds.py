"""Kinds: immutability, equality and hashing, kind names."""

from __future__ import annotations

import datetime as dt
import math
import pickle

import pytest

from gateway.haystack import (
    MARKER,
    NA,
    REMOVE,
    Coord,
    Grid,
    Marker,
    Number,
    Ref,
    Symbol,
    Uri,
    XStr,
    kind_name,
)
from gateway.haystack.tz import hs_tz


def test_singletons_are_unique() -> None:
    assert Marker() is MARKER
    assert pickle.loads(pickle.dumps(MARKER)) is MARKER
    assert pickle.loads(pickle.dumps(NA)) is NA
    assert pickle.loads(pickle.dumps(REMOVE)) is REMOVE
    assert MARKER != NA != REMOVE


def test_number_equality_unit_and_nan() -> None:
    assert Number(72, "°F") == Number(72.0, "°F")
    assert Number(72, "°F") != Number(72, "°C")
    assert Number(72) != Number(72, "°F")
    assert Number(math.nan) == Number(math.nan)
    assert hash(Number(math.nan)) == hash(Number(math.nan))
    assert Number(math.nan, "kW") != Number(math.nan)
    assert Number(1) != 1.0
    assert Number(1.5, "kW").val == 1.5
    assert Number(1.5, "kW").unit == "kW"
    assert Number(1.5, "").unit is None
    assert Number(3).is_int() and not Number(3.5).is_int() and not Number(math.inf).is_int()


def test_values_are_immutable() -> None:
    n = Number(1.0)
    with pytest.raises(AttributeError):
        n.val = 2.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Ref("a").dis = "x"  # type: ignore[misc]
    g = Grid.from_rows([{"a": 1}])
    with pytest.raises(AttributeError):
        g.rows = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        g.meta["x"] = 1  # type: ignore[index]


def test_ref_equality_ignores_dis() -> None:
    assert Ref("a", "One") == Ref("a")
    assert hash(Ref("a", "One")) == hash(Ref("a"))
    assert Ref("@a") == Ref("a")
    assert Ref("a") != Ref("b")
    assert Ref("a") != "a"
    assert str(Ref("x")) == "@x"
    assert Ref("a", "One").without_dis().dis is None


def test_wrappers_distinct() -> None:
    assert Uri("a") != Symbol("a")
    assert Uri("a") != "a"
    assert Uri("a") == Uri("a")
    assert {Uri("a"), Symbol("a"), Uri("a")} == {Uri("a"), Symbol("a")}
    assert Coord(1, 2) == Coord(1.0, 2.0)
    assert XStr("Bin", "text/plain") == XStr("Bin", "text/plain")
    with pytest.raises(ValueError):
        XStr("bin", "x")
    with pytest.raises(ValueError):
        Coord(91, 0)
    for v in (Number(1, "m"), Uri("u"), Symbol("s"), Ref("r", "d"), Coord(1, 2), XStr("A", "b")):
        assert pickle.loads(pickle.dumps(v)) == v


@pytest.mark.parametrize(
    ("val", "name"),
    [
        (None, "Null"),
        (MARKER, "Marker"),
        (NA, "NA"),
        (REMOVE, "Remove"),
        (True, "Bool"),
        (Number(1), "Number"),
        ("s", "Str"),
        (Uri("u"), "Uri"),
        (Ref("r"), "Ref"),
        (Symbol("s"), "Symbol"),
        (dt.date(2024, 1, 1), "Date"),
        (dt.time(1, 2), "Time"),
        (dt.datetime(2024, 1, 1, tzinfo=hs_tz("New_York")), "DateTime"),
        (Coord(1, 2), "Coord"),
        (XStr("Bin", "x"), "XStr"),
        ([1], "List"),
        ({"a": 1}, "Dict"),
        (Grid.empty(), "Grid"),
    ],
)
def test_kind_names(val: object, name: str) -> None:
    assert kind_name(val) == name


def test_kind_name_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        kind_name(object())
