"""The Haystack 4 value kinds as Python values.

Mapping (chosen for speed and for what Python code expects to hold):

========  ===========================================================
Haystack  Python
========  ===========================================================
Null      ``None``
Marker    ``MARKER`` (the only instance of :class:`Marker`)
NA        ``NA`` (the only instance of :class:`NAType`)
Remove    ``REMOVE`` (the only instance of :class:`RemoveType`)
Bool      ``bool``
Number    :class:`Number` (float value, optional unit)
Str       ``str``
Uri       :class:`Uri`
Ref       :class:`Ref` (id, optional dis; equality by id only)
Symbol    :class:`Symbol`
Date      ``datetime.date``
Time      ``datetime.time``
DateTime  aware ``datetime.datetime`` whose ``tzinfo`` is a ``ZoneInfo``;
          the Haystack zone name is ``tz.hs_name(dt.tzinfo)``
Coord     :class:`Coord`
XStr      :class:`XStr`
List      ``list``
Dict      ``dict`` with ``str`` keys
Grid      :class:`gateway.haystack.grid.Grid`
========  ===========================================================

Scalar kinds are immutable and hashable. List and Dict are the builtin containers: codecs and
stores pass them around without copies. A ``None`` in a dict means the tag is absent.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import math
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, TypeAlias

__all__ = [
    "MARKER",
    "NA",
    "REMOVE",
    "Coord",
    "Marker",
    "NAType",
    "Number",
    "Ref",
    "RemoveType",
    "Symbol",
    "Uri",
    "Value",
    "XStr",
    "kind_name",
]

#: Any Haystack value (see the module docstring for the mapping).
Value: TypeAlias = Any


class _Singleton:
    __slots__ = ()
    _name = ""

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name

    def __copy__(self) -> _Singleton:
        return self

    def __deepcopy__(self, memo: object) -> _Singleton:
        return self


class Marker(_Singleton):
    """The marker kind: a tag that is present and carries no value."""

    __slots__ = ()
    _name = "MARKER"
    _instance: Marker | None = None

    def __new__(cls) -> Marker:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance


class NAType(_Singleton):
    """Not available: a value that is known to be missing (for example a failed sample)."""

    __slots__ = ()
    _name = "NA"
    _instance: NAType | None = None

    def __new__(cls) -> NAType:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance


class RemoveType(_Singleton):
    """Remove: in an update, deletes the tag."""

    __slots__ = ()
    _name = "REMOVE"
    _instance: RemoveType | None = None

    def __new__(cls) -> RemoveType:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance


MARKER: Final = Marker()
NA: Final = NAType()
REMOVE: Final = RemoveType()

_tuple_eq = tuple.__eq__


_tuple_new = tuple.__new__


class Number(tuple[float, "str | None"]):
    """A 64-bit float with an optional unit symbol (``°F``, ``kW``, ``%``).

    Immutable (a tuple underneath, which keeps construction and unpacking cheap:
    ``val, unit = number``). Two NaNs with the same unit compare equal, as in Haystack, so
    values survive round trips intact.
    """

    __slots__ = ()

    def __new__(cls, val: float, unit: str | None = None) -> Number:
        return _tuple_new(cls, (float(val), unit or None))

    if TYPE_CHECKING:

        @property
        def val(self) -> float: ...
        @property
        def unit(self) -> str | None: ...
    else:
        val = property(itemgetter(0), doc="the float value")
        unit = property(itemgetter(1), doc="the unit symbol, or None")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Number:
            return False
        assert isinstance(other, Number)
        if _tuple_eq(self, other):
            return True
        a, b = self[0], other[0]
        return a != a and b != b and self[1] == other[1]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        v = self[0]
        return hash((0.0 if v != v else v, self[1]))

    def __repr__(self) -> str:
        if self[1] is None:
            return f"Number({self[0]!r})"
        return f"Number({self[0]!r}, {self[1]!r})"

    def __reduce__(self) -> tuple[type[Number], tuple[float, str | None]]:
        return (Number, (self[0], self[1]))

    def is_int(self) -> bool:
        """True when the value is finite and has no fraction (written without ``.0``)."""
        v = self[0]
        return math.isfinite(v) and v == int(v)


class _Wrapper(tuple[str]):
    """Base for the kinds that are a string with a distinct meaning (Uri, Symbol)."""

    __slots__ = ()

    def __new__(cls, val: str) -> _Wrapper:
        if not isinstance(val, str):
            raise TypeError(f"{cls.__name__} needs a str, not {type(val).__name__}")
        return _tuple_new(cls, (val,))

    if TYPE_CHECKING:

        @property
        def val(self) -> str: ...
    else:
        val = property(itemgetter(0), doc="the text")

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and _tuple_eq(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self[0]!r})"

    def __str__(self) -> str:
        return self[0]

    def __reduce__(self) -> tuple[type[_Wrapper], tuple[str]]:
        return (type(self), (self[0],))


class Uri(_Wrapper):
    """A URI (Zinc writes it between backticks)."""

    __slots__ = ()


class Symbol(_Wrapper):
    """A def name such as ``^point`` or ``^lib:ph`` (held without the caret)."""

    __slots__ = ()


class Ref(tuple[str, "str | None"]):
    """A reference to a record: an id (without ``@``) and an optional display string.

    Equality and hashing use the id only (``@a "One" == @a``), as Haystack defines it.
    """

    __slots__ = ()

    def __new__(cls, val: str, dis: str | None = None) -> Ref:
        if not isinstance(val, str):
            raise TypeError(f"Ref needs a str id, not {type(val).__name__}")
        if val.startswith("@"):
            val = val[1:]
        return _tuple_new(cls, (val, dis))

    if TYPE_CHECKING:

        @property
        def val(self) -> str: ...
        @property
        def dis(self) -> str | None: ...
    else:
        val = property(itemgetter(0), doc="the id, without the @")
        dis = property(itemgetter(1), doc="the display string, or None")

    def __eq__(self, other: object) -> bool:
        return other.__class__ is Ref and self[0] == other[0]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self[0])

    def __repr__(self) -> str:
        if self[1] is None:
            return f"Ref({self[0]!r})"
        return f"Ref({self[0]!r}, {self[1]!r})"

    def __str__(self) -> str:
        return "@" + self[0]

    def __reduce__(self) -> tuple[type[Ref], tuple[str, str | None]]:
        return (Ref, (self[0], self[1]))

    def without_dis(self) -> Ref:
        """The same reference without its display string."""
        return self if self[1] is None else _tuple_new(Ref, (self[0], None))


class Coord(tuple[float, float]):
    """A geographic coordinate in decimal degrees."""

    __slots__ = ()

    def __new__(cls, lat: float, lng: float) -> Coord:
        lat, lng = float(lat), float(lng)
        if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lng <= 180.0):
            raise ValueError(f"coordinate out of range: {lat}, {lng}")
        return _tuple_new(cls, (lat, lng))

    if TYPE_CHECKING:

        @property
        def lat(self) -> float: ...
        @property
        def lng(self) -> float: ...
    else:
        lat = property(itemgetter(0), doc="latitude")
        lng = property(itemgetter(1), doc="longitude")

    def __eq__(self, other: object) -> bool:
        return other.__class__ is Coord and _tuple_eq(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("Coord", self[0], self[1]))

    def __repr__(self) -> str:
        return f"Coord({self[0]!r}, {self[1]!r})"

    def __reduce__(self) -> tuple[type[Coord], tuple[float, float]]:
        return (Coord, (self[0], self[1]))


class XStr(tuple[str, str]):
    """A typed string for kinds this library does not model (``Bin("text/plain")``)."""

    __slots__ = ()

    def __new__(cls, type: str, val: str) -> XStr:
        if not type or not type[0].isupper() or not type.isidentifier() or not type.isascii():
            raise ValueError(f"XStr type must be a name starting upper case: {type!r}")
        if not isinstance(val, str):
            raise TypeError(f"XStr needs a str value, not {val.__class__.__name__}")
        return _tuple_new(cls, (type, val))

    if TYPE_CHECKING:

        @property
        def type(self) -> str: ...
        @property
        def val(self) -> str: ...
    else:
        type = property(itemgetter(0), doc="the type name")
        val = property(itemgetter(1), doc="the encoded value")

    def __eq__(self, other: object) -> bool:
        return other.__class__ is XStr and _tuple_eq(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("XStr", self[0], self[1]))

    def __repr__(self) -> str:
        return f"XStr({self[0]!r}, {self[1]!r})"

    def __reduce__(self) -> tuple[builtins.type[XStr], tuple[str, str]]:
        return (XStr, (self[0], self[1]))


def kind_name(val: Value) -> str:
    """The Haystack kind name of a value (``"Number"``, ``"Ref"``, ``"DateTime"``...)."""
    from gateway.haystack.grid import Grid  # circular: grid imports kinds

    if val is None:
        return "Null"
    cls = val.__class__
    name = _KIND_NAMES.get(cls)
    if name is not None:
        return name
    if isinstance(val, bool):
        return "Bool"
    if isinstance(val, str):
        return "Str"
    if isinstance(val, _dt.datetime):
        return "DateTime"
    if isinstance(val, _dt.date):
        return "Date"
    if isinstance(val, _dt.time):
        return "Time"
    if isinstance(val, list):
        return "List"
    if isinstance(val, dict):
        return "Dict"
    if isinstance(val, Grid):
        return "Grid"
    raise TypeError(f"not a Haystack value: {type(val).__name__}")


_KIND_NAMES: dict[type, str] = {
    Marker: "Marker",
    NAType: "NA",
    RemoveType: "Remove",
    bool: "Bool",
    Number: "Number",
    str: "Str",
    Uri: "Uri",
    Ref: "Ref",
    Symbol: "Symbol",
    _dt.date: "Date",
    _dt.time: "Time",
    _dt.datetime: "DateTime",
    Coord: "Coord",
    XStr: "XStr",
    list: "List",
    dict: "Dict",
}
