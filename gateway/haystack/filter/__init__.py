"""Haystack filters: ``parse_filter(text)`` to an immutable AST, evaluation, compiled predicates.

::

    f = parse_filter('point and siteRef->dis == "Site 3" and curVal > 60°F')
    f.matches(rec, resolve)          # the interpreter; resolve(Ref) -> record | None
    pred = f.compile()               # memoised on f: pred(rec) or pred(rec, resolve)
    f.select(records, resolve)       # the matching records
    f.required_tags()                # {"point", "siteRef", "curVal"}: pick an index
    f.required_values()              # {} here; {"siteRef": {@s}} for ``siteRef == @s and ...``
    str(f)                           # canonical text; parse_filter(str(f)) == f

Modules: :mod:`.nodes` (AST, interpreter, index hints), :mod:`.parser`, :mod:`.values` (the value
rules: units, kinds, Ref lists, ``->`` paths), :mod:`.compiler` (the fast form).
"""

from gateway.haystack.errors import FilterError
from gateway.haystack.filter.nodes import (
    And,
    Cmp,
    Filter,
    Has,
    Missing,
    Or,
    Path,
    Predicate,
    Selector,
    format_literal,
)
from gateway.haystack.filter.parser import MAX_DEPTH, parse_filter
from gateway.haystack.filter.values import Resolver

__all__ = [
    "MAX_DEPTH",
    "And",
    "Cmp",
    "Filter",
    "FilterError",
    "Has",
    "Missing",
    "Or",
    "Path",
    "Predicate",
    "Resolver",
    "Selector",
    "format_literal",
    "parse_filter",
]
