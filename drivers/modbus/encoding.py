"""Modbus data types: 16-bit registers <-> values, byte/word order, scaling (pure).

Data type names follow Haxall's register maps; the digit is the size in *bytes*:

=========  ============================  =========
name       value                         registers
=========  ============================  =========
``bit``    a coil or discrete input      1 bit
``bit:N``  bit N (0..15) of a register   1
``u1``     unsigned 8-bit (low byte)     1
``s1``     signed 8-bit (low byte)       1
``u2``     unsigned 16-bit               1
``s2``     signed 16-bit                 1
``u4``     unsigned 32-bit               2
``s4``     signed 32-bit                 2
``u8``     unsigned 64-bit (extension)   4
``s8``     signed 64-bit                 4
``f4``     IEEE 754 binary32             2
``f8``     IEEE 754 binary64             4
=========  ============================  =========

An ``f4`` reads as the shortest decimal of its binary32 (``18.319748``, not the binary64
expansion ``18.319747924804688`` of the same bits), so a written ``21.3`` reads back as ``21.3``.

Order suffixes (not for bits): none = big-endian bytes and words (Modbus' own order,
"ABCD"); ``le`` = little-endian bytes and words ("DCBA"); ``leb`` = bytes swapped inside
each word ("BADC"); ``lew`` = word order reversed ("CDAB"). ``u1``/``s1`` take the low
byte of the register (the high byte with ``leb``/``le``) and write the other byte as 0.

Scaling (``Scale``) is a chain of ``*k``, ``/k``, ``+k``, ``-k`` applied left to right
on reads (``+32768 /10``; the result to 15 significant digits, so ``3 *0.1`` reads ``0.3``)
and undone right to left on writes. A written value is rounded half away from zero for
integer types and must fit the type, else ``EncodingError``.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DataType",
    "EncodingError",
    "Scale",
    "decode",
    "encode",
    "parse_data_type",
    "parse_scale",
    "set_bit",
]

Base = Literal["bit", "u", "s", "f"]

_FLOAT_FORMATS: Final = {4: ">f", 8: ">d"}
_pack_binary32: Final = struct.Struct(">f").pack
_MIN_NORMAL_BINARY32: Final = 2.0**-126
# The significant digits tried for a subnormal f4, fewest first (9 always fit).
_SUBNORMAL_SPECS: Final = tuple(f".{digits}g" for digits in range(1, 9))
_DATA_RE: Final = re.compile(r"(?P<base>[usf])(?P<n>[1248])(?P<order>le|leb|lew)?")
_SCALE_TOKEN: Final = re.compile(r"\s*([*/+-])\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


class EncodingError(ValueError):
    """A value that does not fit its data type, or a malformed type or scale text."""


@dataclass(frozen=True, slots=True)
class DataType:
    """One register-map data type (see the module docstring)."""

    name: str
    base: Base
    nbytes: int = 0
    bit: int | None = None
    byte_swap: bool = False
    word_swap: bool = False

    @property
    def is_bit(self) -> bool:
        """True for ``bit`` and ``bit:N`` (values are Bool)."""
        return self.base == "bit"

    @property
    def size(self) -> int:
        """Registers (or bits, for ``bit`` on a bit table) the value occupies."""
        return 1 if self.base == "bit" else max(1, self.nbytes // 2)

    @property
    def kind(self) -> str:
        """The Haystack kind of the value: ``Bool`` or ``Number``."""
        return "Bool" if self.is_bit else "Number"

    def int_range(self) -> tuple[int, int]:
        """Smallest and largest integer an integer type holds."""
        bits = 8 * self.nbytes
        if self.base == "s":
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1


def parse_data_type(text: str) -> DataType:
    """Parse ``u2``, ``s4lew``, ``f4le``, ``bit``, ``bit:7``...; raises EncodingError."""
    if text == "bit":
        return DataType("bit", "bit")
    if text.startswith("bit:"):
        pos = text[4:]
        if not pos.isdigit() or not 0 <= int(pos) <= 15:
            raise EncodingError(f"bit position must be 0..15: {text!r}")
        return DataType(f"bit:{int(pos)}", "bit", bit=int(pos))
    m = _DATA_RE.fullmatch(text)
    if m is None:
        raise EncodingError(
            f"unknown data type {text!r} (expected bit, bit:N, u1 s1 u2 s2 u4 s4 u8 s8 f4 f8 "
            "with an optional le, leb or lew suffix)"
        )
    base: Base = "u" if m["base"] == "u" else "s" if m["base"] == "s" else "f"
    nbytes = int(m["n"])
    if base == "f" and nbytes not in _FLOAT_FORMATS:
        raise EncodingError(f"floats are f4 or f8, not {text!r}")
    order = m["order"] or ""
    return DataType(
        text,
        base,
        nbytes=nbytes,
        byte_swap=order in ("le", "leb"),
        word_swap=order in ("le", "lew"),
    )


@dataclass(frozen=True, slots=True)
class Scale:
    """A chain of arithmetic steps from the raw register value to engineering units."""

    steps: tuple[tuple[str, float], ...]
    text: str = ""

    def apply(self, raw: float) -> float:
        """Raw register value -> engineering value, to 15 significant digits.

        The steps are decimal constants done in binary: 3 * 0.1 is 0.30000000000000004, which
        would show in curVal and history. 15 significant digits (what a double holds exactly
        as a decimal) take that noise off and keep more digits than a sensor or a meter gives.
        """
        val = raw
        for op, k in self.steps:
            if op == "*":
                val *= k
            elif op == "/":
                val /= k
            elif op == "+":
                val += k
            else:
                val -= k
        if val - val != 0.0:  # NaN and infinities are themselves
            return val
        return float(format(val, ".15g"))

    def inverse(self, val: float) -> float:
        """Engineering value -> raw register value (steps undone in reverse)."""
        raw = val
        for op, k in reversed(self.steps):
            if op == "*":
                raw /= k
            elif op == "/":
                raw *= k
            elif op == "+":
                raw -= k
            else:
                raw += k
        return raw


def parse_scale(text: str) -> Scale:
    """Parse ``*10``, ``/1000``, ``+32768 /10``...; raises EncodingError."""
    steps: list[tuple[str, float]] = []
    pos = 0
    stripped = text.strip()
    if not stripped:
        raise EncodingError("empty scale")
    while pos < len(stripped):
        m = _SCALE_TOKEN.match(stripped, pos)
        if m is None:
            raise EncodingError(
                f"bad scale {text!r} at {stripped[pos:]!r} "
                "(expected steps like *10, /1000, +32768 /10)"
            )
        try:
            k = float(m[2])
        except ValueError:
            raise EncodingError(f"bad number {m[2]!r} in scale {text!r}") from None
        if not math.isfinite(k):
            raise EncodingError(f"scale factors must be finite: {text!r}")
        if m[1] in "*/" and k == 0.0:
            raise EncodingError(f"scale {m[1]}0 cannot be undone for writes: {text!r}")
        steps.append((m[1], k))
        pos = m.end()
    return Scale(tuple(steps), stripped)


def _swap_bytes(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def _regs_to_bytes(dt: DataType, regs: Sequence[int]) -> bytes:
    if len(regs) != dt.size:
        raise EncodingError(f"{dt.name} needs {dt.size} registers, got {len(regs)}")
    words = [w & 0xFFFF for w in regs]
    if dt.byte_swap:
        words = [_swap_bytes(w) for w in words]
    if dt.word_swap:
        words.reverse()
    return b"".join(w.to_bytes(2, "big") for w in words)


def _bytes_to_regs(dt: DataType, data: bytes) -> list[int]:
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if dt.word_swap:
        words.reverse()
    if dt.byte_swap:
        words = [_swap_bytes(w) for w in words]
    return words


def decode(dt: DataType, regs: Sequence[int]) -> int | float | bool:
    """Registers (big-endian 16-bit words as the wire gives them) -> raw value.

    ``bit`` types take ``regs[0]`` as the coil state (0/1) or the register holding the bit.
    """
    if dt.is_bit:
        if len(regs) != 1:
            raise EncodingError(f"{dt.name} needs 1 value, got {len(regs)}")
        if dt.bit is None:
            return bool(regs[0])
        return bool((regs[0] >> dt.bit) & 1)
    data = _regs_to_bytes(dt, regs)
    if dt.base == "f":
        val: float = struct.unpack(_FLOAT_FORMATS[dt.nbytes], data)[0]
        return _shortest_binary32(val, data) if dt.nbytes == 4 else val
    if dt.nbytes == 1:
        data = data[-1:]  # the low byte of the (possibly swapped) register
    return int.from_bytes(data, "big", signed=dt.base == "s")


def _shortest_binary32(val: float, data: bytes) -> float:
    """The shortest decimal that is the same binary32 as ``val`` (big-endian ``data``).

    A device's 32-bit float means what its shortest decimal says: 18.319748, not the exact
    binary64 expansion of its bits (18.319747924804688), which would show in every curVal
    and history sample, and a written 21.3 would read back as 21.299999237060547. A value
    with a shorter decimal rounds to it at 6 significant digits (a normal binary32 is finer
    than that; a subnormal one is not, and is tried from 1 digit), and 9 always give the same
    binary32 back.
    """
    if val - val != 0.0:  # NaN and infinities are themselves
        return val
    if abs(val) < _MIN_NORMAL_BINARY32:
        specs = _SUBNORMAL_SPECS
    elif _first_same(val, data, (".7g",)) is not None:
        # Most device values need 7 or 8 digits, so 7 is tried first, then 6 if it fits
        # or 8 if not (whatever fits at n digits fits at n + 1 too).
        specs = (".6g", ".7g")
    else:
        specs = (".8g",)
    short = _first_same(val, data, specs)
    return short if short is not None else float(format(val, ".9g"))


def _first_same(val: float, data: bytes, specs: tuple[str, ...]) -> float | None:
    """The first of ``val``'s texts in ``specs`` that is the binary32 ``data``, or None."""
    for spec in specs:
        short = float(format(val, spec))
        try:
            if _pack_binary32(short) == data:
                return short
        except OverflowError:  # rounded up past the largest binary32: not the same value
            pass
    return None


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def encode(dt: DataType, raw: float | bool) -> list[int]:
    """Raw value -> the registers to write (not for ``bit:N``: see ``set_bit``)."""
    if dt.is_bit:
        if dt.bit is not None:
            raise EncodingError(f"{dt.name} is written by read-modify-write (set_bit)")
        return [1 if raw else 0]
    if dt.base == "f":
        try:
            data = struct.pack(_FLOAT_FORMATS[dt.nbytes], float(raw))
        except OverflowError:
            raise EncodingError(f"{raw!r} does not fit {dt.name}") from None
        return _bytes_to_regs(dt, data)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise EncodingError(f"{raw!r} cannot be written to the integer type {dt.name}")
    val = _round_half_away(raw) if isinstance(raw, float) else int(raw)
    low, high = dt.int_range()
    if not low <= val <= high:
        raise EncodingError(f"{raw!r} is out of range for {dt.name} ({low}..{high})")
    if dt.nbytes == 1:
        return _bytes_to_regs(dt, (val & 0xFF).to_bytes(2, "big"))
    return _bytes_to_regs(dt, val.to_bytes(dt.nbytes, "big", signed=dt.base == "s"))


def set_bit(register: int, bit: int, on: bool) -> int:
    """The register value after setting (``on``) or clearing bit ``bit`` of ``register``."""
    if not 0 <= bit <= 15:
        raise EncodingError(f"bit position must be 0..15, not {bit}")
    mask = 1 << bit
    return (register | mask) if on else (register & ~mask & 0xFFFF)
