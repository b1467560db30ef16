"""Grid.from_rows: the union of the rows' tags, with and without the ``nulls=False`` promise."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.haystack.grid import Grid
from gateway.haystack.kinds import MARKER, Number

NAMES = ["id", "dis", "a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("rows", "cols"),
    [
        ([], ()),
        ([{"a": 1, "b": 2}, {"c": 3, "a": 4}], ("a", "b", "c")),
        ([{"a": None, "b": 2}, {"a": 1}], ("b", "a")),  # the first non-null sets the order
        ([{"a": None}], ()),
    ],
)
def test_columns_in_order_of_first_non_null(rows: list[dict[str, Any]], cols: tuple[str]) -> None:
    assert Grid.from_rows(rows).col_names == cols


rows_without_nulls = st.lists(
    st.dictionaries(st.sampled_from(NAMES), st.just(MARKER) | st.integers().map(Number)),
    max_size=8,
)


@given(rows_without_nulls)
def test_the_no_null_promise_gives_the_same_grid(rows: list[dict[str, Any]]) -> None:
    fast = Grid.from_rows(rows, nulls=False)
    assert fast == Grid.from_rows(rows)
    assert fast.col_names == Grid.from_rows(rows).col_names
    assert all(a is b for a, b in zip(fast.rows, rows, strict=True))  # the dicts are kept


def test_other_mappings_are_copied_into_dicts() -> None:
    from types import MappingProxyType

    row = MappingProxyType({"a": MARKER})
    grid = Grid.from_rows([{"b": MARKER}, row], nulls=False)
    assert grid.col_names == ("b", "a") and type(grid[1]) is dict and grid[1] == {"a": MARKER}
