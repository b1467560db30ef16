"""How a filter sees values: following ``->`` paths and comparing a tag with a literal.

This is the one statement of the value rules of a Haystack filter; the interpreter
(:meth:`Filter.matches`) calls it directly and the compiled predicates inline the same rules.

- A tag whose value is ``None`` is absent.
- ``==`` is value equality within one kind: Numbers need the identical unit (``75°F == 75`` is
  false), Refs compare by id, Str also matches a ``str`` subclass (a ``StrEnum`` status).
- ``!=`` needs the value to be present; it is the negation of ``==`` on a present value.
- ``< <= > >=`` compare only a Number (same unit), Str, Date, Time or DateTime with a literal of
  the same kind; anything else is false. A naive DateTime or a zoned Time never compares.
- A List holding Refs stands for its Ref elements: the test holds if it holds for ANY of them,
  at the end of a path and at every ``->`` step. A List without Refs is a plain value.
- ``->`` follows a Ref through the resolver, a nested Dict by key, and ``date``, ``time`` and
  ``tz`` of a DateTime (as Haxall does); anything else, or a broken link, gives null.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

from gateway.haystack.errors import HaystackError
from gateway.haystack.kinds import Number, Ref, Symbol, Uri, Value
from gateway.haystack.tz import hs_name

__all__ = [
    "CMP_OPS",
    "LITERAL_KINDS",
    "ORDER_OPS",
    "Resolver",
    "ValueTest",
    "cmp_test",
    "equals",
    "ordered",
    "path_any",
    "present",
    "test_final",
]

#: Looks a Ref up: the record it points to, or None for a broken link.
Resolver: TypeAlias = Callable[[Ref], "Mapping[str, Value] | None"]
#: A test of the value found at the end of a path (None when the path found nothing).
ValueTest: TypeAlias = Callable[[Value], bool]

CMP_OPS: Final = ("==", "!=", "<", "<=", ">", ">=")
ORDER_OPS: Final = frozenset(("<", "<=", ">", ">="))

_date = _dt.date
_time = _dt.time
_datetime = _dt.datetime


def present(val: Value) -> bool:
    """The ``has`` test: the path found a value."""
    return val is not None


def _same_kind(val: Value, lit: Value) -> bool:
    """``val`` is of the kind of the literal ``lit`` (the precondition of every comparison)."""
    cls = lit.__class__
    if cls is str:
        return isinstance(val, str)
    if cls is _datetime:
        return val.__class__ is _datetime and val.tzinfo is not None
    if cls is _time:
        return val.__class__ is _time and val.tzinfo is None
    return val.__class__ is cls


def equals(val: Value, lit: Value) -> bool:
    """``val == lit`` by the filter rules (``lit`` is a filter literal, never None)."""
    return _same_kind(val, lit) and val == lit


def ordered(val: Value, op: str, lit: Value) -> bool:
    """``val <op> lit`` for ``op`` in ``< <= > >=``; false across kinds or units."""
    cls = lit.__class__
    if cls is Number:
        if val.__class__ is not Number or val[1] != lit[1]:
            return False
        a, b = val[0], lit[0]
    elif cls in (str, _date, _time, _datetime):
        if not _same_kind(val, lit):
            return False
        a, b = val, lit
    else:
        return False  # Bool, Ref, Uri, Symbol have no order in a filter
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _test_scalar(val: Value, op: str, lit: Value) -> bool:
    if op == "==":
        return equals(val, lit)
    if op == "!=":
        return not equals(val, lit)
    return ordered(val, op, lit)


def test_final(val: Value, op: str, lit: Value) -> bool:
    """The comparison ``<path> <op> lit`` on the value the path found."""
    if val is None:
        return False
    if val.__class__ is list:
        refs = [e for e in val if e.__class__ is Ref]
        if refs:
            return any(_test_scalar(e, op, lit) for e in refs)
    return _test_scalar(val, op, lit)


def cmp_test(op: str, lit: Value) -> ValueTest:
    """``test_final`` with the operator and literal bound (the leaf of a ``->`` path)."""

    def test(val: Value) -> bool:
        return test_final(val, op, lit)

    return test


def _datetime_part(val: _dt.datetime, name: str) -> Value:
    if name == "date":
        return val.date()
    if name == "time":
        return val.time()
    if name == "tz":
        try:
            return hs_name(val.tzinfo)
        except HaystackError:
            return None
    return None


def path_any(val: Value, rest: tuple[str, ...], resolve: Resolver | None, test: ValueTest) -> bool:
    """Follow ``rest`` (the names after the first ``->``) from ``val``; true if ``test`` holds
    for any value reached. Every step consumes a name, so cyclic data cannot loop."""
    for i, name in enumerate(rest):
        cls = val.__class__
        if cls is Ref:
            if resolve is None:
                return False
            rec = resolve(val)
            if rec is None:
                return False
            val = rec.get(name)
        elif cls is list:
            tail = rest[i:]
            return any(path_any(e, tail, resolve, test) for e in val if e.__class__ is Ref)
        elif isinstance(val, dict):
            val = val.get(name)
        elif cls is _datetime and val.tzinfo is not None:
            val = _datetime_part(val, name)
        else:
            return False
    return test(val)


# Kinds a literal may have (the parser produces nothing else); used to validate Cmp nodes.
LITERAL_KINDS: Final = frozenset((bool, Number, str, Uri, Ref, Symbol, _date, _time, _datetime))
