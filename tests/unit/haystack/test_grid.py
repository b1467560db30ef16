"""Grid construction, reading and equality."""

from __future__ import annotations

from gateway.haystack import MARKER, Col, Grid, Number, Ref


def test_from_rows_union_of_columns_in_first_seen_order() -> None:
    g = Grid.from_rows([{"id": Ref("a"), "dis": "A"}, {"id": Ref("b"), "site": MARKER, "x": None}])
    assert g.col_names == ("id", "dis", "site")
    assert len(g) == 2
    assert g[1]["site"] is MARKER
    assert g.to_dicts() == [{"id": Ref("a"), "dis": "A"}, {"id": Ref("b"), "site": MARKER}]
    assert g.column("dis") == ["A", None]


def test_equality_treats_missing_and_none_alike() -> None:
    a = Grid(["a", "b"], [{"a": 1, "b": None}])
    b = Grid(["a", "b"], [{"a": 1}])
    assert a == b
    assert a != Grid(["a", "b"], [{"a": 2}])
    assert a != Grid(["a"], [{"a": 1}])
    assert Grid(["a"], meta={"x": MARKER}) != Grid(["a"])


def test_error_grid() -> None:
    g = Grid.make_error("bad filter", "trace\nline2")
    assert g.is_error
    assert g.meta["dis"] == "bad filter"
    assert g.meta["errTrace"] == "trace\nline2"
    assert g.col_names == ("empty",)
    assert not Grid.empty().is_error
    assert Grid.empty()  # a grid is never falsy


def test_col_meta_and_lookup() -> None:
    g = Grid([Col("ts"), Col("v0", {"id": Ref("p")})], [{"ts": 1, "v0": Number(2)}])
    col = g.col("v0")
    assert col is not None and col.meta["id"] == Ref("p")
    assert g.col("nope") is None
    assert g.has_col("ts")
    assert g.with_meta(id=Ref("x")).meta["id"] == Ref("x")
