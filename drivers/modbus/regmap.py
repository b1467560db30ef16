"""Modbus register maps: the CSV that names a device's registers (pure; parses text).

A map is a CSV file with a header row. Columns (Haxall's, plus two optional ones):

============  ========  ================================================================
column        required  meaning
============  ========  ================================================================
name          yes       the row name that points reference in ``modbusCur``/``modbusWrite``
                        (letters, digits, ``_``; starts with a letter; unique)
addr          yes       ``0xxxx`` coil, ``1xxxx`` discrete input, ``3xxxx`` input register,
                        ``4xxxx`` holding register; 5 or 6 digits, numbered from 1
                        (``40001`` and ``400001`` are holding register 0 on the wire)
data          yes       data type (``drivers.modbus.encoding``): ``bit`` on coils and
                        discrete inputs; ``bit:N``, ``u1``...``f8`` (+ ``le``/``leb``/``lew``)
                        on registers (``bit`` on a register means ``bit:0``)
rw            yes       ``r``, ``w`` or ``rw``; writing needs a coil or holding register
scale         no        ``*10``, ``/1000``, ``+32768 /10`` (numeric types only)
unit          no        the Haystack unit of the scaled value (``°F``, ``kW``)
dis           no        display name (default: the name)
tags          no        extra point tags for learn: ``sensor temp zone`` (markers) and
                        ``name:value`` (a Number if it parses as one, else a Str)
relinquish    no        the value written when every priority level is relinquished
                        (writable rows; a number, or true/false for bits)
============  ========  ================================================================

Blank lines and lines whose first cell starts with ``#`` are skipped. An unknown column,
a missing required cell or a bad value raises ``RegisterMapError`` naming the source
file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from drivers.base import FaultError
from drivers.modbus.encoding import (
    DataType,
    EncodingError,
    Scale,
    parse_data_type,
    parse_scale,
)
from gateway.haystack.kinds import MARKER, Number, Value

__all__ = ["RegisterMap", "RegisterMapError", "RegisterRow", "Table", "parse_addr"]

REQUIRED: Final = ("name", "addr", "data", "rw")
OPTIONAL: Final = ("scale", "unit", "dis", "tags", "relinquish")
_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TAG_RE: Final = re.compile(r"[a-z][A-Za-z0-9_]*")

#: The local ``err(msg, column)`` helper of ``_parse_row``.
_ErrFactory = Callable[[str, str], "RegisterMapError"]


class Table(Enum):
    """The four Modbus tables, by address prefix digit."""

    COIL = "0"
    DISCRETE_INPUT = "1"
    INPUT_REGISTER = "3"
    HOLDING_REGISTER = "4"

    @property
    def is_bit(self) -> bool:
        """Coils and discrete inputs hold bits; the others hold 16-bit registers."""
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        """Coils and holding registers can be written."""
        return self in (Table.COIL, Table.HOLDING_REGISTER)


class RegisterMapError(FaultError, ValueError):
    """A register map that cannot be used: ``source``, ``line`` (1-based) and ``column``."""

    def __init__(self, msg: str, source: str, line: int, column: str | None = None) -> None:
        where = f"{source}, line {line}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {msg}")
        self.msg = msg
        self.source = source
        self.line = line
        self.column = column


def parse_addr(text: str) -> tuple[Table, int]:
    """``40001`` -> (HOLDING_REGISTER, 0): the table and the 0-based wire address."""
    if len(text) not in (5, 6) or not text.isdigit():
        raise EncodingError(f"address must be 5 or 6 digits like 40001 or 400001, not {text!r}")
    try:
        table = Table(text[0])
    except ValueError:
        raise EncodingError(
            f"address {text!r} must start with 0 (coil), 1 (discrete input), "
            "3 (input register) or 4 (holding register)"
        ) from None
    number = int(text[1:])
    if number == 0:
        raise EncodingError(f"register numbers start at 1: {text!r} (the first is {text[0]}0001)")
    if number > 65536:
        raise EncodingError(f"register number {number} is beyond 65536: {text!r}")
    return table, number - 1


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One row of a register map."""

    name: str
    addr: str
    table: Table
    address: int
    data: DataType
    readable: bool
    writable: bool
    scale: Scale | None = None
    unit: str | None = None
    dis: str = ""
    tags: Mapping[str, Value] = field(default_factory=dict)
    relinquish: Value = None
    line: int = 0

    @property
    def size(self) -> int:
        """Registers (or bits) this row occupies."""
        return self.data.size

    @property
    def kind(self) -> str:
        """``Bool`` or ``Number``."""
        return self.data.kind


@dataclass(frozen=True)
class RegisterMap:
    """The rows of a register map, by name (``RegisterMap.parse(text, source=...)``)."""

    rows: tuple[RegisterRow, ...]
    source: str = "<register map>"
    _by_name: Mapping[str, RegisterRow] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, text: str, source: str = "<register map>") -> RegisterMap:
        """Parse CSV text; ``source`` (the file name) is named in every error."""
        rows = tuple(_parse_rows(text, source))
        by_name: dict[str, RegisterRow] = {}
        for row in rows:
            if row.name in by_name:
                first = by_name[row.name].line
                raise RegisterMapError(
                    f"duplicate name {row.name!r} (first on line {first})", source, row.line, "name"
                )
            by_name[row.name] = row
        return cls(rows, source, by_name)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[RegisterRow]:
        return iter(self.rows)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> RegisterRow | None:
        """The row called ``name``, or None."""
        return self._by_name.get(name)

    def row(self, name: str) -> RegisterRow:
        """The row called ``name``; a missing row is a FaultError naming the map."""
        found = self._by_name.get(name)
        if found is None:
            raise FaultError(f"register {name!r} is not in {self.source}")
        return found


def _parse_rows(text: str, source: str) -> Iterator[RegisterRow]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for raw_cells in reader:
        line = reader.line_num
        cells = [c.strip() for c in raw_cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header is None:
            header = _check_header(cells, source, line)
            continue
        if len(cells) > len(header):
            raise RegisterMapError(
                f"{len(cells)} cells but the header has {len(header)} columns", source, line
            )
        values = dict(zip(header, cells, strict=False))
        yield _parse_row(values, source, line)
    if header is None:
        raise RegisterMapError("no header row (name,addr,data,rw,...)", source, 1)


def _check_header(cells: list[str], source: str, line: int) -> list[str]:
    seen: set[str] = set()
    for col in cells:
        if col not in REQUIRED and col not in OPTIONAL:
            raise RegisterMapError(
                f"unknown column (known: {', '.join(REQUIRED + OPTIONAL)})", source, line, col
            )
        if col in seen:
            raise RegisterMapError("column given twice", source, line, col)
        seen.add(col)
    for col in REQUIRED:
        if col not in seen:
            raise RegisterMapError("required column is missing", source, line, col)
    return cells


def _parse_row(values: dict[str, str], source: str, line: int) -> RegisterRow:
    def err(msg: str, column: str) -> RegisterMapError:
        return RegisterMapError(msg, source, line, column)

    for col in REQUIRED:
        if not values.get(col):
            raise err("required value is empty", col)
    name = values["name"]
    if not _NAME_RE.fullmatch(name):
        raise err(f"bad name {name!r} (letters, digits and _, starting with a letter)", "name")
    try:
        table, address = parse_addr(values["addr"])
    except EncodingError as exc:
        raise err(str(exc), "addr") from None
    try:
        data = parse_data_type(values["data"])
    except EncodingError as exc:
        raise err(str(exc), "data") from None
    if table.is_bit and data.name != "bit":
        raise err(f"{values['addr']} is a bit table: its data must be 'bit'", "data")
    if not table.is_bit and data.name == "bit":
        data = parse_data_type("bit:0")  # Haxall reads "bit" on a register as its bit 0
    if not table.is_bit and address + data.size > 65536:
        raise err(f"{data.name} at {values['addr']} runs past register 65535", "addr")
    rw = values["rw"]
    if rw not in ("r", "w", "rw"):
        raise err(f"rw must be r, w or rw, not {rw!r}", "rw")
    writable = "w" in rw
    if writable and not table.writable:
        raise err(f"{values['addr']} is read-only (only coils and 4xxxx can be written)", "rw")
    scale = None
    if values.get("scale"):
        if data.is_bit:
            raise err("a bit cannot be scaled", "scale")
        try:
            scale = parse_scale(values["scale"])
        except EncodingError as exc:
            raise err(str(exc), "scale") from None
    unit = values.get("unit") or None
    if unit is not None and data.is_bit:
        raise err("a bit has no unit", "unit")
    relinquish: Value = None
    if values.get("relinquish"):
        if not writable:
            raise err("only a writable row has a relinquish value", "relinquish")
        relinquish = _parse_relinquish(values["relinquish"], data, unit, err)
    return RegisterRow(
        name=name,
        addr=values["addr"],
        table=table,
        address=address,
        data=data,
        readable="r" in rw,
        writable=writable,
        scale=scale,
        unit=unit,
        dis=values.get("dis") or name,
        tags=_parse_tags(values.get("tags", ""), err),
        relinquish=relinquish,
        line=line,
    )


def _parse_relinquish(
    text: str, data: DataType, unit: str | None, err: _ErrFactory
) -> bool | Number:
    if data.is_bit:
        lowered = text.lower()
        if lowered in ("true", "1", "on"):
            return True
        if lowered in ("false", "0", "off"):
            return False
        raise err(f"a bit relinquishes to true or false, not {text!r}", "relinquish")
    try:
        return Number(float(text), unit)
    except ValueError:
        raise err(f"not a number: {text!r}", "relinquish") from None


def _parse_tags(text: str, err: _ErrFactory) -> dict[str, Value]:
    tags: dict[str, Value] = {}
    for token in text.split():
        name, sep, raw = token.partition(":")
        if not _TAG_RE.fullmatch(name):
            raise err(f"bad tag name {name!r}", "tags")
        if not sep:
            tags[name] = MARKER
            continue
        try:
            tags[name] = Number(float(raw))
        except ValueError:
            tags[name] = raw
    return tags
