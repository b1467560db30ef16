"""The block optimizer: which Modbus read requests cover a set of registers (pure).

Reading every register on its own costs one round trip each; reading a whole device map
at once fails on devices that reject addresses they do not implement. ``optimize`` groups
the spans to read (one per map row: its table, first address and size) into blocks:

- one table per block (a request reads one table);
- a block's length, gaps included, stays within ``max_registers`` (``max_bits`` for coils
  and discrete inputs) -- except a single span that is larger on its own;
- two neighbouring spans share a block only if at most ``gap`` unrequested registers lie
  between them (0 = contiguous only).

Spans may overlap (a ``u4`` and a ``bit:3`` of its first register); a block grows only to
cover its widest span. ``split`` turns a block that the device refused (an exception
response) into one block per distinct span, so one bad register faults only its points.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from drivers.modbus.regmap import Table

__all__ = [
    "DEFAULT_GAP",
    "DEFAULT_MAX_BITS",
    "DEFAULT_MAX_REGISTERS",
    "PROTOCOL_MAX_BITS",
    "PROTOCOL_MAX_REGISTERS",
    "Block",
    "Span",
    "optimize",
    "split",
]

#: Unrequested registers allowed between two spans of one block.
DEFAULT_GAP: Final = 4
#: Registers per read request (Modbus allows 125 for function codes 3 and 4).
DEFAULT_MAX_REGISTERS: Final = 100
#: Bits per read request (Modbus allows 2000 for function codes 1 and 2).
DEFAULT_MAX_BITS: Final = 2000
PROTOCOL_MAX_REGISTERS: Final = 125
PROTOCOL_MAX_BITS: Final = 2000

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Span:
    """What one map row needs read: ``count`` registers (or bits) from ``start``."""

    table: Table
    start: int
    count: int
    key: Hashable = None

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.start + self.count


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``."""

    table: Table
    start: int
    count: int
    spans: tuple[Span, ...]

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.start + self.count

    def slice(self, data: Sequence[K], span: Span) -> Sequence[K]:
        """The part of this block's ``data`` that belongs to ``span``."""
        offset = span.start - self.start
        return data[offset : offset + span.count]


def _limit(table: Table, max_registers: int, max_bits: int) -> int:
    return max_bits if table.is_bit else max_registers


def optimize(
    spans: Iterable[Span],
    *,
    gap: int = DEFAULT_GAP,
    max_registers: int = DEFAULT_MAX_REGISTERS,
    max_bits: int = DEFAULT_MAX_BITS,
) -> list[Block]:
    """Group spans into read blocks; blocks come out by table, then address."""
    if gap < 0:
        raise ValueError(f"gap must be >= 0, not {gap}")
    if max_registers < 1 or max_bits < 1:
        raise ValueError("max_registers and max_bits must be >= 1")
    ordered = sorted(spans, key=lambda s: (s.table.value, s.start, -s.count))
    blocks: list[Block] = []
    acc: list[Span] = []
    acc_end = 0
    for span in ordered:
        if acc:
            first = acc[0]
            limit = _limit(first.table, max_registers, max_bits)
            fits = (
                span.table is first.table
                and span.start - acc_end <= gap
                and max(acc_end, span.end) - first.start <= limit
            )
            if fits:
                acc.append(span)
                acc_end = max(acc_end, span.end)
                continue
            blocks.append(_block(acc, acc_end))
        acc = [span]
        acc_end = span.end
    if acc:
        blocks.append(_block(acc, acc_end))
    return blocks


def _block(spans: list[Span], end: int) -> Block:
    start = spans[0].start
    return Block(spans[0].table, start, end - start, tuple(spans))


def split(block: Block) -> list[Block]:
    """One block per distinct (start, count) span of ``block``, sharing equal spans."""
    groups: dict[tuple[int, int], list[Span]] = {}
    for span in block.spans:
        groups.setdefault((span.start, span.count), []).append(span)
    return [
        Block(block.table, start, count, tuple(members))
        for (start, count), members in sorted(groups.items())
    ]
