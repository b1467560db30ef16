"""The standard Haystack 4 defs (libs ph, phScience, phIoT, phIct): lookup, taxonomy and query.

The data is the generated table :mod:`gateway.haystack.defs_data` (``tools/build_defs.py`` builds
it from the published defs): 719 defs, each a dict with its ``def`` Symbol, its ``lib`` Symbol and
its fact tags, normalized as the ``defs`` op serves them (``is`` and ``tagOn`` as lists, ``defx``
merged). Op defs also carry ``name`` and ``summary`` for Haystack 3 clients.

The ``defs``, ``libs``, ``ops`` and ``filetypes`` ops answer with :func:`query`. The taxonomy
helpers :func:`inheritance` and :func:`is_a` follow ``is`` (a feature key such as ``^op:read`` is
implicitly a ``^op``), e.g. to tell whether a record's marker is an equip type.

Every function returns fresh dicts and lists: callers may change what they get.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Final, Literal

from gateway.haystack.filter import parse_filter
from gateway.haystack.grid import Col, Grid
from gateway.haystack.kinds import Number, Symbol, Value

__all__ = [
    "DefKind",
    "all_defs",
    "def_of",
    "filetypes",
    "inheritance",
    "is_a",
    "libs",
    "ops",
    "query",
]

#: What each of the four ops lists.
DefKind = Literal["defs", "libs", "ops", "filetypes"]


@cache
def _defs() -> tuple[Mapping[str, Value], ...]:
    """The table, imported on first use: a gateway that is never asked for defs does not
    hold it (~2 MiB of memory on a Raspberry Pi)."""
    from gateway.haystack.defs_data import DEFS

    return tuple(DEFS)


@cache
def _by_name() -> dict[str, Mapping[str, Value]]:
    return {d["def"].val: d for d in _defs()}


# The feature prefix of the defs each op lists ("" = every def).
_FEATURES: Final[dict[str, str]] = {
    "defs": "",
    "libs": "lib:",
    "ops": "op:",
    "filetypes": "filetype:",
}


def _copy(val: Value) -> Value:
    """A deep copy of the containers of a value (the scalars are immutable)."""
    if isinstance(val, list):
        return [_copy(v) for v in val]
    if isinstance(val, dict):
        return {k: _copy(v) for k, v in val.items()}
    return val


def _copies(defs: Iterable[Mapping[str, Value]]) -> list[dict[str, Value]]:
    return [{k: _copy(v) for k, v in d.items()} for d in defs]


def _name_of(symbol: Symbol | str) -> str:
    return symbol.val if isinstance(symbol, Symbol) else symbol.removeprefix("^")


def all_defs() -> list[dict[str, Value]]:
    """Every def, sorted by symbol."""
    return _copies(_defs())


def libs() -> list[dict[str, Value]]:
    """The lib defs (``^lib:ph``...), with ``version``, ``baseUri`` and ``depends``."""
    return _copies(_of_kind("libs"))


def ops() -> list[dict[str, Value]]:
    """The op defs (``^op:read``...), with ``name``, ``summary`` and ``noSideEffects``."""
    return _copies(_of_kind("ops"))


def filetypes() -> list[dict[str, Value]]:
    """The filetype defs (``^filetype:zinc``...), with ``mime``, ``fileExt`` and ``dis``."""
    return _copies(_of_kind("filetypes"))


def def_of(symbol: Symbol | str) -> dict[str, Value] | None:
    """The def named ``symbol`` (``Symbol("site")``, ``"site"`` or ``"^site"``), or None."""
    found = _by_name().get(_name_of(symbol))
    return None if found is None else _copies([found])[0]


def _of_kind(kind: str) -> list[Mapping[str, Value]]:
    prefix = _FEATURES.get(kind)
    if prefix is None:
        raise ValueError(f"unknown def kind {kind!r}: expected one of {', '.join(_FEATURES)}")
    if not prefix:
        return list(_defs())
    return [d for d in _defs() if d["def"].val.startswith(prefix)]


# -- taxonomy ---------------------------------------------------------------------------------


def inheritance(symbol: Symbol | str) -> list[Symbol]:
    """The def and all its supertypes, nearest first, each once (KeyError for an unknown def).

    ``inheritance("ahu")`` is ``[^ahu, ^airHandlingEquip, ^equip, ^entity, ^marker, ...]``.
    """
    return [Symbol(name) for name in _inheritance(_name_of(symbol))]


def is_a(symbol: Symbol | str, base: Symbol | str) -> bool:
    """True when ``symbol`` is ``base`` or inherits from it (False for an unknown def)."""
    name = _name_of(symbol)
    return name in _by_name() and _name_of(base) in _inheritance(name)


def _supers(name: str) -> list[str]:
    """The names a def directly inherits from (KeyError for an unknown def)."""
    d = _by_name().get(name)
    if d is None:
        raise KeyError(f"unknown def ^{name}")
    supers = [s.val for s in d.get("is", ())]
    if not supers and ":" in name:
        supers = [name.split(":", 1)[0]]  # a feature key is implicitly its feature
    return supers


@cache
def _inheritance(name: str) -> tuple[str, ...]:
    # Breadth-first, so the nearest supertypes come first; a shared ancestor appears once.
    order: dict[str, None] = {name: None}
    queue = _supers(name)
    while queue:
        nxt: list[str] = []
        for sup in queue:
            if sup not in order:
                order[sup] = None
                nxt.extend(_supers(sup))
        queue = nxt
    return tuple(order)


# -- the defs, libs, ops and filetypes ops -----------------------------------------------------


def query(kind: DefKind | str, filter_text: str | None = None, limit: int | None = None) -> Grid:
    """The grid the ``defs``/``libs``/``ops``/``filetypes`` op answers with.

    ``kind`` is the op name (ValueError for another). ``filter_text`` (a Haystack filter,
    FilterError if malformed) selects defs; ``limit`` keeps the first ``limit`` of them and, when
    that drops any, sets the grid meta ``incomplete`` to ``{dis, limit}``. Columns: ``def``
    first, then every other tag in name order.
    """
    rows: list[Mapping[str, Value]] = _of_kind(kind)
    if filter_text is not None and filter_text.strip():
        rows = parse_filter(filter_text).select(rows)
    meta: dict[str, Value] = {}
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must not be negative: {limit}")
        if len(rows) > limit:
            meta["incomplete"] = {
                "dis": f"Only the first {limit} of {len(rows)} defs",
                "limit": Number(limit),
            }
            rows = rows[:limit]
    names = sorted({n for row in rows for n in row} - {"def"})
    cols = [Col("def"), *(Col(n) for n in names)] if rows else [Col("def")]
    return Grid(cols, _copies(rows), meta)
