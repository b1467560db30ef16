"""Grid: the Haystack table (grid meta, ordered columns with column meta, rows).

A row is a ``dict`` from column name to value. A null cell is either absent from the dict or
``None``: decoders keep whatever is cheapest, readers use ``row.get(name)``. Grids compare equal
when meta, columns and the non-null cells of every row are equal.

Grids are immutable by contract: the meta and column-meta mappings are read-only views and the
rows are a tuple (or another read-only sequence, such as the ``HisRows`` of a history read).
The row dicts are not copied (a 100,000-row grid must stay cheap to build), so code that
receives a grid must not mutate its rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from gateway.haystack.kinds import MARKER, Value

__all__ = ["Col", "Grid", "error_record_grid"]

_EMPTY_META: Final[Mapping[str, Value]] = MappingProxyType({})


class Col:
    """A grid column: a name and its meta tags (``dis``, ``unit``, ``id``...)."""

    __slots__ = ("meta", "name")

    name: str
    meta: Mapping[str, Value]

    def __init__(self, name: str, meta: Mapping[str, Value] | None = None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "meta", _EMPTY_META if not meta else MappingProxyType(dict(meta)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Col is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Col):
            return NotImplemented
        return self.name == other.name and _non_null(self.meta) == _non_null(other.meta)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        if self.meta:
            return f"Col({self.name!r}, {dict(self.meta)!r})"
        return f"Col({self.name!r})"


def _non_null(tags: Mapping[str, Value]) -> dict[str, Value]:
    return {k: v for k, v in tags.items() if v is not None}


class Grid:
    """An immutable Haystack grid."""

    __slots__ = ("_col_index", "cols", "meta", "rows")

    meta: Mapping[str, Value]
    cols: tuple[Col, ...]
    rows: Sequence[dict[str, Value]]
    _col_index: dict[str, Col] | None

    def __init__(
        self,
        cols: Iterable[Col | str] = (),
        rows: Iterable[dict[str, Value]] | Sequence[dict[str, Value]] = (),
        meta: Mapping[str, Value] | None = None,
    ) -> None:
        cols_t = tuple(c if isinstance(c, Col) else Col(c) for c in cols)
        object.__setattr__(self, "cols", cols_t)
        if isinstance(rows, list) or not isinstance(rows, Sequence):
            rows = tuple(rows)  # a read-only Sequence (a tuple, HisRows) is kept as it is
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "meta", _EMPTY_META if not meta else MappingProxyType(dict(meta)))
        object.__setattr__(self, "_col_index", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Grid is immutable")

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Value]],
        meta: Mapping[str, Value] | None = None,
        col_meta: Mapping[str, Mapping[str, Value]] | None = None,
        *,
        nulls: bool = True,
    ) -> Grid:
        """A grid whose columns are the union of the rows' tags, in order of first appearance.

        Tags whose value is ``None`` do not make a column. The row dicts are kept as they are
        (rows that are other mappings are copied into dicts). ``nulls=False`` promises that no
        row holds a ``None`` value (a store's records never do): the columns are then found
        without looking at any value, about twice as fast for a large read.
        """
        given = tuple(rows)
        rows_t: tuple[dict[str, Value], ...]
        if not given or set(map(type, given)) == {dict}:
            rows_t = given  # type: ignore[assignment]  # checked just above
        else:
            rows_t = tuple(r if isinstance(r, dict) else dict(r) for r in given)
        names: dict[str, object] = {}
        if nulls:
            for row in rows_t:
                for name, val in row.items():
                    if val is not None and name not in names:
                        names[name] = None
        else:
            # dict.update keeps the position of a key it has seen: the union in order of
            # first appearance, in C.
            deque(map(names.update, rows_t), 0)
        col_meta = col_meta or {}
        cols = [Col(n, col_meta.get(n)) for n in names]
        return cls(cols, rows_t, meta)

    @classmethod
    def from_dict(cls, row: Mapping[str, Value], meta: Mapping[str, Value] | None = None) -> Grid:
        """A one-row grid."""
        return cls.from_rows([row], meta)

    @classmethod
    def empty(cls, meta: Mapping[str, Value] | None = None) -> Grid:
        """A grid with no rows and the single column ``empty`` (what the spec writes)."""
        return cls([Col("empty")], (), meta)

    @classmethod
    def make_error(cls, dis: str, trace: str | None = None, **meta: Value) -> Grid:
        """A standard error grid: meta ``err``, ``dis`` and optionally ``errTrace``."""
        tags: dict[str, Value] = {"err": MARKER, "dis": dis}
        if trace:
            tags["errTrace"] = trace
        tags.update(meta)
        return cls.empty(tags)

    # -- reading ------------------------------------------------------------------------

    @property
    def col_names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(c.name for c in self.cols)

    def col(self, name: str) -> Col | None:
        """The column named ``name``, or None."""
        index: dict[str, Col] | None = self._col_index
        if index is None:
            index = {c.name: c for c in self.cols}
            object.__setattr__(self, "_col_index", index)
        return index.get(name)

    def has_col(self, name: str) -> bool:
        """True when the grid has a column named ``name``."""
        return self.col(name) is not None

    @property
    def is_error(self) -> bool:
        """True for an error grid (meta ``err``)."""
        return "err" in self.meta and self.meta["err"] is not None

    @property
    def is_empty(self) -> bool:
        """True when the grid has no rows."""
        return not self.rows

    def first(self) -> dict[str, Value] | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def to_dicts(self) -> list[dict[str, Value]]:
        """The rows as new dicts with only their non-null cells."""
        names = self.col_names
        out = []
        for row in self.rows:
            out.append({n: v for n in names if (v := row.get(n)) is not None})
        return out

    def column(self, name: str) -> list[Value]:
        """Every row's value in one column (None for null cells)."""
        return [row.get(name) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Value]]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict[str, Value]:
        return self.rows[index]

    def __bool__(self) -> bool:
        # A grid is a value: an empty grid is still a grid, never "false".
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        if _non_null(self.meta) != _non_null(other.meta) or self.cols != other.cols:
            return False
        if len(self.rows) != len(other.rows):
            return False
        names = self.col_names
        for a, b in zip(self.rows, other.rows, strict=True):
            for n in names:
                if a.get(n) != b.get(n):
                    return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        meta = dict(self.meta)
        return f"<Grid meta={meta!r} cols={list(self.col_names)!r} rows={len(self.rows)}>"

    # -- derived grids --------------------------------------------------------------------

    def with_meta(self, **tags: Value) -> Grid:
        """A copy with more (or replaced) grid meta tags."""
        meta = dict(self.meta)
        meta.update(tags)
        return Grid(self.cols, self.rows, meta)

    def with_rows(self, rows: Sequence[dict[str, Value]]) -> Grid:
        """A grid with the same meta and columns and other rows."""
        return Grid(self.cols, tuple(rows), self.meta)


def error_record_grid(grid: Grid) -> Grid:
    """An error grid's meta (``err``, ``dis``, ``errTrace``...) as the one row of a grid: how
    formats without grid meta (Trio, CSV) show an error."""
    return Grid.from_rows([{k: v for k, v in grid.meta.items() if k != "ver"}])
