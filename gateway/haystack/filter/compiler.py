"""Compile a filter AST into one specialised Python function.

The interpreter (:meth:`Filter.matches`) walks the tree and dispatches on every node for every
record. Here the tree becomes the source of one function, e.g. for
``point and curVal > 60°F``::

    def _pred(r, resolve=None):
        return ((r.get(_c0) is not None)
                and ((v0 := r.get(_c1)).__class__ is _Number and v0[1] == _c3 and v0[0] > _c2))

so a record costs a few dict lookups and no calls into the filter machinery. Safety: the source
is built only from fixed templates, generated identifiers and operators from a fixed table; every
tag name and literal reaches the function as a bound constant (``_c0``, ``_c1``...) in its
globals, never as text pasted into the source. The inlined tests state the rules of
:mod:`gateway.haystack.filter.values` once more (tests check them against the interpreter on
an exhaustive table of operators, literals, values and path shapes); the usual ``ref->tag`` hop
is inlined and other ``->`` paths call :func:`values.path_any` with a generated leaf test.
``_select`` repeats the test inside one loop, which saves a call per record. If Python cannot
compile the source (an absurdly deep tree built by hand), the interpreter is used instead.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, cast

from gateway.haystack.filter import values as _v
from gateway.haystack.filter.nodes import And, Cmp, Filter, Has, Missing, Or, Predicate, Selector
from gateway.haystack.kinds import Number, Ref, Symbol, Uri, Value

__all__ = ["compile_filter", "source_of"]

_Rec = TypeVar("_Rec", bound=Mapping[str, Value])

# Operators may only come from this table (Cmp validates its op; this is belt and braces).
_PY_ORDER_OPS: Final = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _any_ref(val: list[Value], ref_id: str) -> bool:
    """A List holding a Ref with this id (``==`` on a Ref list)."""
    return any(e.__class__ is Ref and e[0] == ref_id for e in val)


def _any_ref_ne(val: list[Value], ref_id: str) -> bool:
    """``!=`` on a List: some Ref element differs, or there are no Refs (the list is a value)."""
    seen = False
    for e in val:
        if e.__class__ is Ref:
            if e[0] != ref_id:
                return True
            seen = True
    return not seen


# Names every generated function can use.
_RUNTIME: Final[dict[str, Any]] = {
    "_Ref": Ref,
    "_Number": Number,
    "_list": list,
    "_str": str,
    "_date": _dt.date,
    "_time": _dt.time,
    "_datetime": _dt.datetime,
    "_any_ref": _any_ref,
    "_any_ref_ne": _any_ref_ne,
    "_path_any": _v.path_any,
    "_present": _v.present,
    "__builtins__": {"isinstance": isinstance},
}


class _Source:
    """Accumulates the generated functions and their bound constants."""

    def __init__(self) -> None:
        self.consts: dict[str, object] = {}
        self.defs: list[str] = []
        self._vars = 0

    def const(self, obj: object) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = obj
        return name

    def var(self) -> str:
        name = f"v{self._vars}"
        self._vars += 1
        return name

    def expr(self, node: Filter) -> str:
        if isinstance(node, And):
            return "(" + " and ".join(self.expr(t) for t in node.terms) + ")"
        if isinstance(node, Or):
            return "(" + " or ".join(self.expr(t) for t in node.terms) + ")"
        if isinstance(node, (Has, Missing)):
            return self.presence(node)
        if isinstance(node, Cmp):
            return self.compare(node)
        raise TypeError(f"cannot compile {type(node).__name__}")

    def presence(self, node: Has | Missing) -> str:
        first, *rest = node.path.names
        get = f"r.get({self.const(first)})"
        if not rest:
            return f"({get} is not None)" if isinstance(node, Has) else f"({get} is None)"
        has = self.path(get, rest, lambda b, x: f"({b} is not None)", "_present")
        return has if isinstance(node, Has) else f"(not {has})"

    def compare(self, node: Cmp) -> str:
        first, *rest = node.path.names
        get = f"r.get({self.const(first)})"
        op, lit = node.op, node.val
        if not rest:
            x = self.var()
            return self.test(op, lit, f"({x} := {get})", x)
        # A leaf function for the value at the end of the path, called by path_any.
        leaf = f"_t{len(self.defs)}"
        self.defs.append(f"def {leaf}(v):\n    return {self.test(op, lit, 'v', 'v')}\n")
        return self.path(get, rest, lambda b, x: self.test(op, lit, b, x), leaf)

    def path(self, get: str, rest: list[str], leaf: Callable[[str, str], str], fn: str) -> str:
        """``path_any`` from the value ``get``; the usual one hop through a Ref is inlined
        (``siteRef->dis``), anything else (Dict, Ref list, DateTime, longer paths) goes the
        general way."""
        v = self.var()
        general = f"_path_any({v}, {self.const(tuple(rest))}, resolve, {fn})"
        if len(rest) != 1:
            return f"(({v} := {get}) is not None and {general})"
        d, x = self.var(), self.var()
        hop = (
            f"({v} := {get}).__class__ is _Ref and resolve is not None"
            f" and ({d} := resolve({v})) is not None"
            f" and {leaf(f'({x} := {d}.get({self.const(rest[0])}))', x)}"
        )
        return f"({hop} or {v}.__class__ is not _Ref and {v} is not None and {general})"

    def test(self, op: str, lit: Value, b: str, x: str) -> str:
        """``test_final(value, op, lit)`` inlined; ``b`` binds the value on first use, ``x``
        names it afterwards."""
        if op == "==":
            return self.equal(lit, b, x)
        if op == "!=":
            if lit.__class__ is Ref:
                i = self.const(lit[0])
                return (
                    f"({b} is not None and not ({x}.__class__ is _Ref and {x}[0] == {i})"
                    f" and ({x}.__class__ is not _list or _any_ref_ne({x}, {i})))"
                )
            return f"({b} is not None and not {self.equal(lit, x, x)})"
        return self.order(_PY_ORDER_OPS[op], lit, b, x)

    def equal(self, lit: Value, b: str, x: str) -> str:
        cls = lit.__class__
        if cls is Ref:
            i = self.const(lit[0])
            return (
                f"({b}.__class__ is _Ref and {x}[0] == {i}"
                f" or {x}.__class__ is _list and _any_ref({x}, {i}))"
            )
        if cls is Number:
            val, unit = self.const(lit[0]), self.const(lit[1])
            return f"({b}.__class__ is _Number and {x}[0] == {val} and {x}[1] == {unit})"
        if cls is str:
            # Only a str (or a StrEnum) equals a Str: every other kind's == says no.
            return f"({_unbound(b, x)} == {self.const(lit)})"
        if cls is bool:
            return f"({_unbound(b, x)} is {self.const(lit)})"
        if cls is Uri or cls is Symbol:
            k, t = self.const(cls), self.const(lit[0])
            return f"({b}.__class__ is {k} and {x}[0] == {t})"
        return f"({self.kind_guard(lit, b, x)} and {x} == {self.const(lit)})"

    def order(self, pyop: str, lit: Value, b: str, x: str) -> str:
        cls = lit.__class__
        if cls is Number:
            val, unit = self.const(lit[0]), self.const(lit[1])
            return f"({b}.__class__ is _Number and {x}[1] == {unit} and {x}[0] {pyop} {val})"
        if cls is str or cls is _dt.date or cls is _dt.time or cls is _dt.datetime:
            return f"({self.kind_guard(lit, b, x)} and {x} {pyop} {self.const(lit)})"
        return "False"  # Bool, Ref, Uri and Symbol have no order

    @staticmethod
    def kind_guard(lit: Value, b: str, x: str) -> str:
        cls = lit.__class__
        if cls is str:
            return f"isinstance({b}, _str)"
        if cls is _dt.datetime:
            return f"{b}.__class__ is _datetime and {x}.tzinfo is not None"
        if cls is _dt.time:
            return f"{b}.__class__ is _time and {x}.tzinfo is None"
        if cls is _dt.date:
            return f"{b}.__class__ is _date"
        raise TypeError(f"no kind guard for {cls.__name__}")  # pragma: no cover


def _unbound(b: str, x: str) -> str:
    """The value expression of ``b`` without its binding to ``x`` (when ``x`` is not reused)."""
    prefix = f"({x} := "
    return b[len(prefix) : -1] if b.startswith(prefix) else b


def source_of(node: Filter) -> tuple[str, dict[str, object]]:
    """The generated source for ``node`` and the constants it is bound to (for inspection)."""
    src = _Source()
    body = src.expr(node)
    # _select repeats the test inline: no call per record (a third of the cost of a match).
    text = "".join(src.defs) + _TEMPLATE.format(body=body)
    return text, src.consts


_TEMPLATE: Final = """\
def _pred(r, resolve=None):
    return {body}
def _select(records, resolve=None):
    out = []
    append = out.append
    for r in records:
        if {body}:
            append(r)
    return out
"""


def compile_filter(node: Filter) -> tuple[Predicate, Selector]:
    """A predicate equal to ``node.matches`` (``pred(rec)`` or ``pred(rec, resolve)``), and
    the matching loop ``select(records, resolve=None) -> list`` with the test inlined."""
    try:
        text, consts = source_of(node)
        code = compile(text, "<haystack filter>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return _interpreted(node)
    namespace: dict[str, Any] = {**_RUNTIME, **consts}
    exec(code, namespace)
    return cast(Predicate, namespace["_pred"]), cast(Selector, namespace["_select"])


def _interpreted(node: Filter) -> tuple[Predicate, Selector]:
    matches: Callable[[Mapping[str, Value], _v.Resolver | None], bool] = node.matches

    def pred(rec: Mapping[str, Value], resolve: _v.Resolver | None = None, /) -> bool:
        return matches(rec, resolve)

    def select(records: Iterable[_Rec], resolve: _v.Resolver | None = None, /) -> list[_Rec]:
        return [rec for rec in records if matches(rec, resolve)]

    return pred, select
