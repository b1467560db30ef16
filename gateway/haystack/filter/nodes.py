"""The filter AST: immutable, hashable nodes with evaluation, canonical text and index hints.

::

    Filter                 base: matches(), compile(), select(), required_tags(), ...
    ├── Has(path)          ``a->b``       the path reaches a value
    ├── Missing(path)      ``not a->b``   it does not
    ├── Cmp(path, op, val) ``a->b == 5``  op in == != < <= > >=, val a filter literal
    ├── And(terms)         ``x and y and z`` (two or more terms)
    └── Or(terms)          ``x or y or z``

``str(node)`` is the canonical filter text; ``parse_filter(str(node)) == node``. The parser keeps
the grouping it read: ``a and b and c`` is one ``And`` of three terms, ``(a and b) and c`` an
``And`` inside an ``And``, and ``str`` writes the parentheses back.

The evaluation rules live in :mod:`gateway.haystack.filter.values`; ``matches`` is the plain
interpreter of them and ``compile`` (see :mod:`gateway.haystack.filter.compiler`) the fast form.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol, TypeVar

from gateway.haystack.codecs.zinc import encode_val
from gateway.haystack.errors import HaystackError
from gateway.haystack.filter import values as _v
from gateway.haystack.filter.values import Resolver
from gateway.haystack.kinds import Number, Ref, Value
from gateway.haystack.tz import UTC as _UTC

__all__ = [
    "KEYWORDS",
    "And",
    "Cmp",
    "Filter",
    "Has",
    "Missing",
    "Or",
    "Path",
    "Predicate",
    "Selector",
    "format_literal",
]

#: Words that cannot be tag names in a filter.
KEYWORDS: Final = frozenset(("and", "or", "not"))
_NAME_RE: Final = re.compile(r"[a-z][a-zA-Z0-9_]*")
_Rec = TypeVar("_Rec", bound=Mapping[str, Value])


class Predicate(Protocol):
    """A compiled filter: ``pred(rec)`` or ``pred(rec, resolve)`` -> matches."""

    def __call__(self, rec: Mapping[str, Value], resolve: Resolver | None = None, /) -> bool: ...


class Selector(Protocol):
    """A compiled matching loop: ``select(records[, resolve])`` -> the matching records."""

    def __call__(
        self, records: Iterable[_Rec], resolve: Resolver | None = None, /
    ) -> list[_Rec]: ...


def format_literal(val: Value) -> str:
    """The filter text of a literal value (Zinc, with ``true``/``false``, refs without dis)."""
    if val is True:
        return "true"
    if val is False:
        return "false"
    cls = val.__class__
    if cls is Ref:
        return encode_val(val.without_dis())
    if cls is _dt.datetime:
        try:
            return encode_val(val)
        except HaystackError:
            # an offset with no Haystack zone name (+05:30): the same instant in UTC
            return encode_val(val.astimezone(_UTC))
    return encode_val(val)


@dataclass(frozen=True, slots=True)
class Path:
    """A tag path ``a->b->c``: the first name is a tag of the record, each ``->`` a hop."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.names, tuple) or not self.names:
            raise ValueError("a path needs a tuple of one or more tag names")
        for name in self.names:
            if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
                raise ValueError(f"invalid tag name in a filter path: {name!r}")
            if name in KEYWORDS:
                raise ValueError(f"{name!r} is a filter keyword, not a tag name")

    @classmethod
    def of(cls, *names: str) -> Path:
        """``Path.of("siteRef", "dis")`` is ``siteRef->dis``."""
        return cls(names)

    def __str__(self) -> str:
        return "->".join(self.names)


class Filter:
    """Base of the filter nodes (see the module docstring)."""

    # The compiled forms, memoised on the (immutable) node; not part of equality.
    __slots__ = ("_compiled",)
    _compiled: tuple[Predicate, Selector]

    # Set on each node class; And/Or children of these classes get parentheses in ``str``.
    _paren_children: ClassVar[tuple[type[Filter], ...]] = ()

    def matches(self, rec: Mapping[str, Value], resolve: Resolver | None = None) -> bool:
        """True if ``rec`` matches; ``resolve`` looks up the Refs that ``->`` follows."""
        raise NotImplementedError

    def _compile(self) -> tuple[Predicate, Selector]:
        try:
            return self._compiled
        except AttributeError:
            from gateway.haystack.filter.compiler import compile_filter

            compiled = compile_filter(self)
            object.__setattr__(self, "_compiled", compiled)
            return compiled

    def compile(self) -> Predicate:
        """The fast form of ``matches``: ``pred(rec)`` or ``pred(rec, resolve)`` (memoised)."""
        return self._compile()[0]

    def select(self, records: Iterable[_Rec], resolve: Resolver | None = None) -> list[_Rec]:
        """The records that match, in their order (the compiled test, inlined in one loop)."""
        return self._compile()[1](records, resolve)

    def required_tags(self) -> frozenset[str]:
        """Tags every matching record has (non-null) at its top level: pick an index from these."""
        raise NotImplementedError

    def tag_names(self) -> frozenset[str]:
        """Every tag name the filter mentions, at any step of any path."""
        raise NotImplementedError

    def required_values(self) -> dict[str, frozenset[Value]]:
        """Equality constraints an index can use: ``{tag: values}``.

        Every matching record holds, for each ``tag`` here, one of ``values`` as the tag's
        value or, when the tag is a List of Refs, as one of its elements. Only ``tag == val``
        on a plain tag (no ``->``) counts. Under ``and`` a tag keeps the smaller set of either
        side (both are necessary; intersecting them would be wrong for Ref lists); under ``or``
        a tag constrained in every branch gets the union.
        """
        raise NotImplementedError


def _path_tags(path: Path) -> frozenset[str]:
    return frozenset(path.names)


@dataclass(frozen=True, slots=True)
class Has(Filter):
    """``path``: the path reaches a value."""

    path: Path

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):
            raise TypeError("Has needs a Path")

    def matches(self, rec: Mapping[str, Value], resolve: Resolver | None = None) -> bool:
        names = self.path.names
        val = rec.get(names[0])
        if len(names) == 1:
            return val is not None
        return _v.path_any(val, names[1:], resolve, _v.present)

    def required_tags(self) -> frozenset[str]:
        return frozenset((self.path.names[0],))

    def tag_names(self) -> frozenset[str]:
        return _path_tags(self.path)

    def required_values(self) -> dict[str, frozenset[Value]]:
        return {}

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class Missing(Filter):
    """``not path``: the path reaches no value (the exact negation of :class:`Has`)."""

    path: Path

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):
            raise TypeError("Missing needs a Path")

    def matches(self, rec: Mapping[str, Value], resolve: Resolver | None = None) -> bool:
        names = self.path.names
        val = rec.get(names[0])
        if len(names) == 1:
            return val is None
        return not _v.path_any(val, names[1:], resolve, _v.present)

    def required_tags(self) -> frozenset[str]:
        return frozenset()

    def tag_names(self) -> frozenset[str]:
        return _path_tags(self.path)

    def required_values(self) -> dict[str, frozenset[Value]]:
        return {}

    def __str__(self) -> str:
        return "not " + str(self.path)


@dataclass(frozen=True, slots=True)
class Cmp(Filter):
    """``path op val``: compare the value the path reaches with a literal."""

    path: Path
    op: str
    val: Value

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):
            raise TypeError("Cmp needs a Path")
        if self.op not in _v.CMP_OPS:
            raise ValueError(f"unknown filter operator {self.op!r}")
        object.__setattr__(self, "val", _check_literal(self.val))

    def matches(self, rec: Mapping[str, Value], resolve: Resolver | None = None) -> bool:
        names = self.path.names
        val = rec.get(names[0])
        if len(names) == 1:
            return _v.test_final(val, self.op, self.val)
        return _v.path_any(val, names[1:], resolve, _v.cmp_test(self.op, self.val))

    def required_tags(self) -> frozenset[str]:
        # Every operator needs the first tag present: != included, since missing -> false.
        return frozenset((self.path.names[0],))

    def tag_names(self) -> frozenset[str]:
        return _path_tags(self.path)

    def required_values(self) -> dict[str, frozenset[Value]]:
        if self.op != "==" or len(self.path.names) != 1:
            return {}
        return {self.path.names[0]: frozenset((self.val,))}

    def __str__(self) -> str:
        return f"{self.path} {self.op} {format_literal(self.val)}"


def _check_literal(val: Value) -> Value:
    """A literal the filter language can write (so ``str`` round-trips), normalised."""
    cls = val.__class__
    if isinstance(val, str) and cls is not str:
        val = str.__str__(val)  # a StrEnum member compares as its text
    elif cls is Ref and val[1] is not None:
        val = val.without_dis()
    elif cls not in _v.LITERAL_KINDS:
        raise TypeError(f"a filter cannot compare with a {cls.__name__}")
    if cls is Number and not math.isfinite(val[0]):
        raise ValueError("INF and NaN are not filter literals")
    if cls is _dt.datetime and val.tzinfo is None:
        raise ValueError("a DateTime literal must be timezone-aware")
    try:
        format_literal(val)
    except ValueError as exc:  # bad unit, ref id, symbol or zone: not writable
        raise ValueError(f"not a writable filter literal: {exc}") from None
    return val


def _check_terms(node: And | Or) -> None:
    if not isinstance(node.terms, tuple) or len(node.terms) < 2:
        raise ValueError(f"{type(node).__name__} needs a tuple of two or more filters")
    for term in node.terms:
        if not isinstance(term, Filter):
            raise TypeError(f"{type(node).__name__} terms must be filters, not {term!r}")


def _term_text(node: And | Or) -> list[str]:
    parens = node._paren_children
    return [f"({t})" if isinstance(t, parens) else str(t) for t in node.terms]


@dataclass(frozen=True, slots=True)
class And(Filter):
    """``a and b and ...``: every term matches."""

    terms: tuple[Filter, ...]

    def __post_init__(self) -> None:
        _check_terms(self)

    def matches(self, rec: Mapping[str, Value], resolve: Resolver | None = None) -> bool:
        return all(term.matches(rec, resolve) for term in self.terms)

    def required_tags(self) -> frozenset[str]:
        return frozenset().union(*(t.required_tags() for t in self.terms))

    def tag_names(self) -> frozenset[str]:
        return frozenset().union(*(t.tag_names() for t in self.terms))

    def required_values(self) -> dict[str, frozenset[Value]]:
        out: dict[str, frozenset[Value]] = {}
        for term in self.terms:
            for tag, vals in term.required_values().items():
                have = out.get(tag)
                if have is None or len(vals) < len(have):
                    out[tag] = vals
        return out

    def __str__(self) -> str:
        return " and ".join(_term_text(self))


@dataclass(frozen=True, slots=True)
class Or(Filter):
    """``a or b or ...``: some term matches."""

    terms: tuple[Filter, ...]

    def __post_init__(self) -> None:
        _check_terms(self)

    def matches(self, rec: Mapping[str, Value], resolve: Resolver | None = None) -> bool:
        return any(term.matches(rec, resolve) for term in self.terms)

    def required_tags(self) -> frozenset[str]:
        first, *rest = (t.required_tags() for t in self.terms)
        return first.intersection(*rest)

    def tag_names(self) -> frozenset[str]:
        return frozenset().union(*(t.tag_names() for t in self.terms))

    def required_values(self) -> dict[str, frozenset[Value]]:
        first, *rest = (t.required_values() for t in self.terms)
        out: dict[str, frozenset[Value]] = {}
        for tag, vals in first.items():
            union = vals
            for other in rest:
                more = other.get(tag)
                if more is None:
                    break
                union = union | more
            else:
                out[tag] = union
        return out

    def __str__(self) -> str:
        return " or ".join(_term_text(self))


# ``and`` binds tighter than ``or``; a nested node of the same operator keeps its parentheses
# so that the text reads back as the same tree.
And._paren_children = (And, Or)
Or._paren_children = (Or,)
