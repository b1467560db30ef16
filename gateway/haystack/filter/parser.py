"""The filter parser: text -> AST, with errors that point at the offending token.

Grammar (Haystack 4, ``and`` binds tighter than ``or``, ``not`` takes only a path)::

    filter  := condAnd ("or" condAnd)*
    condAnd := term ("and" term)*
    term    := "(" filter ")" | "not" path | path op val | path
    path    := name ("->" name)*          name := [a-z][a-zA-Z0-9_]*, not and/or/not
    op      := "==" | "!=" | "<" | "<=" | ">" | ">="
    val     := "true" | "false" | Ref | Str | Uri | Number | Date | Time | DateTime | Symbol

Literals are Zinc (read by :func:`gateway.haystack.codecs.zinc.scan_val`); INF and NaN, a Ref
with a display string and the other Zinc kinds are refused. Every malformed input raises
:class:`FilterError` with the 0-based offset of the offending token and nothing else escapes:
parentheses deeper than :data:`MAX_DEPTH` are an error, not a RecursionError.
"""

from __future__ import annotations

import math
import re
from typing import Final

from gateway.haystack.codecs.zinc import scan_val
from gateway.haystack.errors import FilterError, ParseError
from gateway.haystack.filter.nodes import KEYWORDS, And, Cmp, Filter, Has, Missing, Or, Path
from gateway.haystack.kinds import Number, Ref, Value

__all__ = ["MAX_DEPTH", "parse_filter"]

#: Deepest nesting of parentheses accepted.
MAX_DEPTH: Final = 64

_SPACE: Final = " \t\r\n"
_WORD_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_RE: Final = re.compile(r"[a-z][a-zA-Z0-9_]*\Z")
_OPS: Final = ("==", "!=", "<=", ">=", "<", ">")
# First characters of the Zinc literals a filter accepts (besides digits and true/false).
_LITERAL_START: Final = frozenset('"`@^')
_DIGITS: Final = frozenset("0123456789")


def parse_filter(text: str) -> Filter:
    """Parse Haystack filter text; raise :class:`FilterError` (with ``pos``) if malformed."""
    if not isinstance(text, str):
        raise TypeError(f"a filter is text, not {type(text).__name__}")
    return _Parser(text).parse()


class _Parser:
    __slots__ = ("depth", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- errors and tokens ------------------------------------------------------------------

    def error(self, msg: str, pos: int | None = None) -> FilterError:
        return FilterError(msg, self.pos if pos is None else pos, self.text)

    def found(self, pos: int | None = None) -> str:
        """A description of the token at ``pos`` for a message."""
        pos = self.pos if pos is None else pos
        if pos >= len(self.text):
            return "the end of the filter"
        m = _WORD_RE.match(self.text, pos)
        if m is not None:
            return repr(m.group())
        for op in ("->", *_OPS):
            if self.text.startswith(op, pos):
                return repr(op)
        return repr(self.text[pos])

    def skip(self) -> int:
        text, pos, n = self.text, self.pos, len(self.text)
        while pos < n and text[pos] in _SPACE:
            pos += 1
        self.pos = pos
        return pos

    def word(self) -> str | None:
        """The word at the current position (not consumed), or None."""
        m = _WORD_RE.match(self.text, self.skip())
        return None if m is None else m.group()

    def keyword(self, kw: str) -> bool:
        if self.word() == kw:
            self.pos += len(kw)
            return True
        return False

    # -- grammar -----------------------------------------------------------------------------

    def parse(self) -> Filter:
        if self.skip() >= len(self.text):
            raise self.error("the filter is empty")
        node = self.cond_or(None)
        if self.skip() < len(self.text):
            if self.text[self.pos] == ")":
                raise self.error("')' without a matching '('")
            raise self.error(f"expected 'and', 'or' or the end of the filter, found {self.found()}")
        return node

    def cond_or(self, after: str | None) -> Filter:
        terms = [self.cond_and(after)]
        while self.keyword("or"):
            terms.append(self.cond_and("or"))
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def cond_and(self, after: str | None) -> Filter:
        terms = [self.term(after)]
        while self.keyword("and"):
            terms.append(self.term("and"))
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def term(self, after: str | None) -> Filter:
        start = self.skip()
        if start < len(self.text) and self.text[start] == "(":
            return self.group(start)
        word = self.word()
        if word is None or word in ("and", "or"):
            where = f" after '{after}'" if after else ""
            raise self.error(f"expected a tag name, 'not' or '('{where}, found {self.found()}")
        if word == "not":
            self.pos += 3
            if self.skip() < len(self.text) and self.text[self.pos] == "(":
                raise self.error("'not' takes a tag path, not a parenthesis")
            return Missing(self.path("after 'not'"))
        path = self.path("")
        op = self.operator()
        if op is None:
            return Has(path)
        pos = self.skip()
        val = self.value(op)
        try:
            return Cmp(path, op, val)
        except ValueError as exc:  # a literal the filter cannot write back (defensive)
            raise self.error(str(exc), pos) from None

    def group(self, start: int) -> Filter:
        if self.depth >= MAX_DEPTH:
            raise self.error(f"parentheses nested deeper than {MAX_DEPTH}")
        self.depth += 1
        self.pos = start + 1
        node = self.cond_or("(")
        if self.skip() >= len(self.text) or self.text[self.pos] != ")":
            raise self.error(f"expected ')' to close the '(' at {start}, found {self.found()}")
        self.pos += 1
        self.depth -= 1
        return node

    def path(self, where: str) -> Path:
        names = [self.name(where)]
        while True:
            save = self.pos
            if self.text.startswith("->", self.skip()):
                self.pos += 2
                names.append(self.name("after '->'"))
            else:
                self.pos = save
                return Path(tuple(names))

    def name(self, where: str) -> str:
        pos = self.skip()
        m = _WORD_RE.match(self.text, pos)
        if m is None:
            suffix = f" {where}" if where else ""
            raise self.error(f"expected a tag name{suffix}, found {self.found()}")
        name = m.group()
        if name in KEYWORDS:
            raise self.error(f"'{name}' is a keyword, not a tag name")
        if _NAME_RE.match(name) is None:
            raise self.error(f"tag names start with a lower-case letter, found {name!r}")
        self.pos = m.end()
        return name

    def operator(self) -> str | None:
        pos = self.skip()
        text = self.text
        for op in _OPS:
            if text.startswith(op, pos):
                self.pos = pos + len(op)
                return op
        if text.startswith("=", pos):
            raise self.error("'=' is not an operator: compare with '=='")
        if text.startswith("!", pos):
            raise self.error("'!' is not an operator: use '!=' or 'not'")
        return None

    def value(self, op: str) -> Value:
        pos = self.skip()
        text = self.text
        if pos >= len(text):
            raise self.error(f"expected a value after '{op}', found the end of the filter")
        ch = text[pos]
        if (
            ch in _LITERAL_START
            or ch in _DIGITS
            or (ch == "-" and text[pos + 1 : pos + 2] in _DIGITS)
        ):
            return self.zinc_literal(pos)
        word = self.word()
        if word in ("true", "false"):
            self.pos += len(word)
            return word == "true"
        if word in ("INF", "NaN") or text.startswith("-INF", pos):
            raise self.error("INF and NaN are not filter values")
        if word in ("T", "F"):
            raise self.error(f"write true or false in a filter, not {word!r}")
        raise self.error(f"expected a value after '{op}', found {self.found()}")

    def zinc_literal(self, pos: int) -> Value:
        text = self.text
        try:
            val, end = scan_val(text, pos)
        except ParseError as exc:
            raise self.error(exc.msg, _offset(text, exc.line, exc.col)) from None
        if val.__class__ is Ref and val[1] is not None:
            raise self.error("a Ref in a filter takes no display string", pos + len(val[0]) + 2)
        if val.__class__ is Number and not math.isfinite(val[0]):
            raise self.error("number out of range", pos)
        self.pos = end
        return val


def _offset(text: str, line: int, col: int) -> int:
    """The 0-based offset of a 1-based line and column (as ParseError reports them)."""
    start = 0
    for _ in range(line - 1):
        nl = text.find("\n", start)
        if nl < 0:
            break
        start = nl + 1
    return min(start + col - 1, len(text))
