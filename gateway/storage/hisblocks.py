"""History blocks: a point's samples packed into a few rows (pure: no I/O).

The SQLite history (:mod:`gateway.storage.sqlite_his`) keeps each point's samples in *blocks*
of up to ``BLOCK_SAMPLES`` consecutive samples, one row each, instead of one row per sample: a
read of 100,000 samples is then a few hundred rows unpacked by ``array.frombytes``, and a write
of 1,000 samples a handful of inserts. This module packs, unpacks, merges and splits them.

A block's columns:

- ``times``: the samples' keys (integer microseconds since the epoch, ``history.to_us``),
  int64 **little-endian** (swapped on a big-endian host), ascending and distinct;
- ``vals``: float64 little-endian, the value of every sample that is a Number in the series
  unit and not NaN; NaN elsewhere;
- ``others``: NULL, or JSON ``{"index": "text"}`` giving the stored text of every other sample
  (a Bool, a Str, NA, a Number in another unit, NaN or an infinity), as
  ``sqlite_his`` encodes it. This module never looks inside the texts.

A :class:`Run` is the unpacked form: consecutive samples of one series as two arrays and a
dict of other texts by index. :func:`plan_write` decides which stored blocks a write must
rewrite, :func:`merge` and :func:`block_spans` make the new blocks, :func:`pack` their rows.
"""

from __future__ import annotations

import json
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "BLOCK_SAMPLES",
    "BlockRow",
    "DamagedBlockError",
    "Run",
    "Segment",
    "block_spans",
    "cut_before",
    "merge",
    "pack",
    "plan_write",
    "unpack_others",
]

#: Samples per block. A full block's two arrays are 16 bytes a sample: 240 samples make a row
#: of ~3.9 KB, which fits one 4 KiB page of a rowid table without overflow pages. The trade-off:
#: a write into a block rewrites all of it, and the runtime's history buffer appends a few
#: samples per point at a time, so every append rewrites the point's last block. Measured (WAL
#: frames, i.e. pages written, per single-sample append): 1.03 at 240 samples (1.12 with the
#: former row per sample), 4.0 at 512, 5.5 at 1,024 (overflow and pointer-map pages), while a
#: 100,000-sample read took 8.1 ms at 240 and 7.9 ms at 1,024: bigger blocks buy nothing.
BLOCK_SAMPLES: Final = 240

# Blocks are little-endian: a big-endian host swaps on the way in and out.
_SWAP: Final = sys.byteorder == "big"

#: A block as stored: ``(start_us, end_us, n, times, vals, others)``.
BlockRow = tuple[int, int, int, bytes, bytes, str | None]


def _keys() -> array[int]:
    return array("q")


def _vals() -> array[float]:
    return array("d")


@dataclass(slots=True)
class Run:
    """Consecutive samples of one series: ascending distinct ``keys``, their ``vals`` (NaN
    where the sample is one of ``others``), ``others`` as ``{index: stored text}``."""

    keys: array[int] = field(default_factory=_keys)
    vals: array[float] = field(default_factory=_vals)
    others: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    def add_block(self, times: bytes, vals: bytes, others: str | None) -> None:
        """Append a stored block's samples (which must come after this run's);
        ``DamagedBlockError`` if the block cannot be read (the run is then unchanged)."""
        base = len(self.keys)
        try:
            extra = unpack_others(others, base) if others is not None else {}
            keys, values = array("q", times), array("d", vals)
        except (ValueError, TypeError) as exc:
            raise DamagedBlockError(f"a history block cannot be read: {exc}") from None
        if len(keys) != len(values):
            raise DamagedBlockError("a history block's times and values differ in length")
        if _SWAP:
            keys.byteswap()
            values.byteswap()
        self.keys.extend(keys)
        self.vals.extend(values)
        self.others.update(extra)

    def slice(self, i: int, j: int) -> Run:
        """Samples ``i`` to ``j`` (exclusive) as a new run."""
        return Run(self.keys[i:j], self.vals[i:j], _others_within(self.others, i, j))

    def extend(self, tail: Run) -> None:
        """Append the samples of ``tail`` (which must all come after this run's)."""
        base = len(self.keys)
        self.keys.extend(tail.keys)
        self.vals.extend(tail.vals)
        for k, v in tail.others.items():
            self.others[base + k] = v


class DamagedBlockError(ValueError):
    """A stored block is not what this module writes (a damaged or foreign database)."""


def unpack_others(text: str, base: int = 0) -> dict[int, str]:
    """A block's ``others`` column as ``{index + base: text}``."""
    loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError("a history block's others are not a JSON object")
    return {base + int(k): str(v) for k, v in loaded.items()}


def _others_within(others: dict[int, str], i: int, j: int) -> dict[int, str]:
    """The entries of ``others`` for samples ``i`` to ``j``, indexed from ``i``.

    Whichever is smaller is walked, the dict or the range: a series of Bools has an entry per
    sample, and walking all of them for each block made a long write quadratic.
    """
    if len(others) <= j - i:
        return {k - i: v for k, v in others.items() if i <= k < j}
    get = others.get
    return {k - i: v for k in range(i, j) if (v := get(k)) is not None}


def _pack_others(others: dict[int, str], i: int, j: int) -> str | None:
    picked = _others_within(others, i, j) if others else None
    if not picked:
        return None
    return json.dumps(
        {str(k): v for k, v in picked.items()}, ensure_ascii=False, separators=(",", ":")
    )


def pack(run: Run, i: int, j: int) -> BlockRow:
    """Samples ``i`` to ``j`` (exclusive, at least one) of a run as a block row."""
    keys = run.keys[i:j]
    vals = run.vals[i:j]
    start, end = keys[0], keys[-1]
    if _SWAP:
        keys.byteswap()
        vals.byteswap()
    return (start, end, j - i, keys.tobytes(), vals.tobytes(), _pack_others(run.others, i, j))


def block_spans(n: int, size: int = BLOCK_SAMPLES) -> list[tuple[int, int]]:
    """Cut ``n`` samples into blocks of ``size`` from the start: every block full but the
    last, which later appends fill."""
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def merge(old: Run, new: Run) -> Run:
    """The samples of both runs in key order; ``new`` wins where both hold a key."""
    if not old.keys:
        return new
    if not new.keys:
        return old
    if new.keys[0] > old.keys[-1]:  # an append: the common case
        merged = Run(old.keys[:], old.vals[:], dict(old.others))
        merged.extend(new)
        return merged
    if new.keys[-1] < old.keys[0]:
        merged = Run(new.keys[:], new.vals[:], dict(new.others))
        merged.extend(old)
        return merged
    # Overlap: only the old samples within the new run's span need sorting out.
    i = bisect_left(old.keys, new.keys[0])
    j = bisect_right(old.keys, new.keys[-1])
    middle: dict[int, tuple[float, str | None]] = {}
    old_keys, old_vals, old_others = old.keys, old.vals, old.others
    for p in range(i, j):
        middle[old_keys[p]] = (old_vals[p], old_others.get(p))
    new_others = new.others
    for p, (k, v) in enumerate(zip(new.keys, new.vals, strict=True)):
        middle[k] = (v, new_others.get(p))
    merged = old.slice(0, i)
    base = len(merged.keys)
    add_key, add_val, others = merged.keys.append, merged.vals.append, merged.others
    for p, k in enumerate(sorted(middle), base):
        v, o = middle[k]
        add_key(k)
        add_val(v)
        if o is not None:
            others[p] = o
    merged.extend(old.slice(j, len(old.keys)))
    return merged


def cut_before(run: Run, key: int) -> Run:
    """The samples of a run at or after ``key``."""
    return run.slice(bisect_left(run.keys, key), len(run.keys))


@dataclass(slots=True)
class Segment:
    """Part of a write that is merged on its own: the stored blocks it rewrites (indexes into
    the ``stored`` given to :func:`plan_write`, consecutive) and the batch samples
    ``lo:hi``."""

    blocks: list[int]
    lo: int
    hi: int


def plan_write(
    stored: Sequence[tuple[int, int, int]], keys: Sequence[int], full: int = BLOCK_SAMPLES
) -> list[Segment]:
    """Which stored blocks a batch rewrites, and with which of its samples.

    ``stored``: ``(start, end, n)`` of a series' blocks, in order, from the last one starting
    at or before ``keys[0]`` to the last one starting at or before ``keys[-1]``; ``keys``: the
    batch's, ascending. A block is rewritten when a batch key falls inside it, or when keys
    follow it before the next block and it is not full (so appends fill it); a full block with
    keys only after it stays, and so does a block no key comes near: a write of two samples a
    year apart rewrites two blocks, not the year between. Each segment is contiguous: no
    block that stays lies within it, so segments are merged and replaced independently.
    """
    segments: list[Segment] = []
    current: Segment | None = None
    first = bisect_left(keys, stored[0][0]) if stored else len(keys)
    if first:  # keys before every block
        current = Segment([], 0, first)
    for h, (start, end, n) in enumerate(stored):
        lo = bisect_left(keys, start)
        hi = bisect_left(keys, stored[h + 1][0]) if h + 1 < len(stored) else len(keys)
        if lo == hi or not (keys[lo] <= end or n < full):
            # This block stays: it ends the current segment; keys after it start another.
            if current is not None:
                segments.append(current)
            current = None if lo == hi else Segment([], lo, hi)
        elif current is None:
            current = Segment([h], lo, hi)
        else:
            current.blocks.append(h)
            current.hi = hi
    if current is not None:
        segments.append(current)
    return segments
