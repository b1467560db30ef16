"""History in SQLite: samples in blocks, range reads, and retention by age and by size.

Everything here runs in the SQLite adapter's worker thread, the only user of the connection
(``sqlite.py`` hands every call to it through one ``trio.CapacityLimiter(1)``); the series
metadata cached here is touched by that thread only.

Layout (see :mod:`gateway.storage.sqlite_schema` and :mod:`gateway.storage.hisblocks`): a
point's samples are kept in ``his_block`` rows of up to ``BLOCK_SAMPLES`` consecutive samples
(packed arrays of keys and values), found by the unique index ``(sid, start_us)``; the blocks of
a series never overlap. A row per sample made a 100,000-sample read cost ~33 ms in building
sqlite3's row tuples alone, and a 1,000-sample write a thousand upserts; blocks make both a few
hundred rows or fewer:

- a range read selects the blocks from the one holding (or preceding) ``start`` up to ``end``,
  unpacks them with ``array.frombytes`` and cuts the first and last by bisection;
- a write, in one transaction, reads the blocks its samples fall into, and the block before
  samples that fall between blocks when that one is not full (so appends fill the last
  block); merges (a new sample replaces a stored one at the same key), cuts the result into
  blocks again and replaces the rows read (``hisblocks.plan_write``: blocks between that no
  sample falls into are left alone). The common append rewrites the series' last block in
  place (an UPDATE keeping its rowid, so its index entry is untouched) and inserts any new
  ones.

Block size trade-off: an append rewrites the whole last block. ``BLOCK_SAMPLES = 240`` keeps a
full block (~3.9 KB) within one 4 KiB page, so the runtime's small appends (a few samples per
point per flush) write about as many pages as a row per sample did (1.03 pages per
single-sample append, against 1.12), while a 100,000-sample read is ~420 blocks. Bigger blocks
read barely faster and multiply the pages each append writes to the SD card (1,024 samples:
~16 KB, 5.5 pages per append with their overflow and pointer-map pages); the figures are in
:data:`gateway.storage.hisblocks.BLOCK_SAMPLES`'s comment.

Retention, so that an SD card never fills:

- **by age** (``retention_days``): samples older than that go; checked on open and then at
  most once per ``retention_interval`` seconds, when history is written. Whole blocks before the
  cutoff are deleted, a block straddling it is rewritten without its old samples. A write of
  samples that are already too old drops them (they would go at the next check anyway).
- **by size** (``max_bytes``): the whole database file (records, users and history) is kept at
  or under the quota by deleting the *oldest* samples, across all points, in batches. Before a
  write, room is made for it using a pessimistic estimate of its size (``SAMPLE_BYTES`` per
  sample, the text of its non-numeric samples, a block rewritten and a few pages); after it,
  the real size is checked again. Deleting frees pages, ``PRAGMA incremental_vacuum`` returns
  them to the file system (the database is created with ``auto_vacuum=INCREMENTAL``) and a
  ``wal_checkpoint(TRUNCATE)`` writes the shrunken database back and empties the WAL. Size is
  measured as ``page_count * page_size``, the size the main file has after a checkpoint. The
  WAL beside it holds at most the pages of the transactions since the last checkpoint (SQLite
  checkpoints every 1,000 pages by default). If records and users alone exceed the quota,
  history cannot help: it is emptied and the rest is kept.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.haystack.codecs.zinc import decode_val, encode_val
from gateway.haystack.errors import HaystackError
from gateway.haystack.kinds import NA, Number, Value
from gateway.haystack.tz import hs_name, hs_tz
from gateway.storage.base import HisSample, StorageError
from gateway.storage.hisblocks import (
    BLOCK_SAMPLES,
    Run,
    block_spans,
    cut_before,
    merge,
    pack,
    plan_write,
)
from gateway.storage.hiscolumns import HisColumns
from gateway.storage.history import PreparedSamples, from_us
from gateway.storage.sqlite_schema import transaction

__all__ = ["BLOCK_SAMPLES", "SAMPLE_BYTES", "SQLiteHistory"]

#: A pessimistic size of one stored sample (16 bytes in a block; the pages of a series' last,
#: partly filled block and of B-tree splits are covered by the margin of a few pages), used to
#: make room before a write.
SAMPLE_BYTES: Final = 32
# After pruning for size, leave this share of the quota free so that the next writes fit.
_LOW_WATER: Final = 0.9
_NAN: Final = math.nan
# k / 1e6 for an int k, without a Python-level call per sample (the SQL ``ts / 1000000.0`` of
# the row-per-sample layout: the int is converted to a double, then divided).
_to_seconds: Final = (1e6).__rtruediv__
_FAST_OTHER: Final[dict[str, Value]] = {"T": True, "F": False, "NA": NA}
# Zinc writes NaN and infinities as bare keywords without a unit; a sample keeps its unit.
_SPECIAL_FLOATS: Final = (("NaN", math.nan), ("-INF", -math.inf), ("INF", math.inf))
_BLOCK_COLUMNS: Final = "start_us, end_us, n, times, vals, others"
# The blocks holding keys in [?2, ?3): from the last one starting at or before ?2 (it may end
# before ?2: bisection drops it) to the last one starting before ?3. Both ends are probes of
# the (sid, start_us) index; end_us needs no index.
_RANGE: Final = (
    "SELECT times, vals, others FROM his_block WHERE sid = ?1 AND start_us >= coalesce("
    "(SELECT start_us FROM his_block WHERE sid = ?1 AND start_us <= ?2"
    " ORDER BY start_us DESC LIMIT 1), ?2) AND start_us < ?3 ORDER BY start_us"
)
# The blocks a write of keys [?2, ?3] may merge with (see hisblocks.plan_write), as _RANGE
# with ?3 included, without their samples; _SAMPLES reads those of one.
_NEAR: Final = (
    "SELECT rowid, start_us, end_us, n FROM his_block WHERE sid = ?1 AND start_us >= coalesce("
    "(SELECT start_us FROM his_block WHERE sid = ?1 AND start_us <= ?2"
    " ORDER BY start_us DESC LIMIT 1), ?2) AND start_us <= ?3 ORDER BY start_us"
)
_SAMPLES: Final = "SELECT times, vals, others FROM his_block WHERE rowid = ?"
_INSERT: Final = f"INSERT INTO his_block (sid, {_BLOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_UPDATE: Final = (
    "UPDATE his_block SET start_us = ?, end_us = ?, n = ?, times = ?, vals = ?, others = ?"
    " WHERE rowid = ?"
)
# A block that keeps its start: SQLite rewrites an index whose column an UPDATE sets, even to
# the same value, so start_us is left out (one page written per append instead of two).
_REWRITE: Final = (
    "UPDATE his_block SET end_us = ?, n = ?, times = ?, vals = ?, others = ? WHERE rowid = ?"
)
# Every series' blocks starting before a cutoff, through the index (one range per series).
_BEFORE: Final = "sid IN (SELECT sid FROM his_series) AND start_us < ?1"


@dataclass(slots=True)
class _Series:
    sid: int
    tz_name: str
    tz: dt.tzinfo
    unit: str | None
    has_unit: bool


def _decode_other(text: str) -> Value:
    val = _FAST_OTHER.get(text)
    if val is not None:
        return val
    for word, special in _SPECIAL_FLOATS:
        if text.startswith(word):
            return Number(special, text[len(word) :] or None)
    return decode_val(text)


class SQLiteHistory:
    """The history tables of one connection, with the retention policy.

    ``block_samples`` is the size of a full block (``BLOCK_SAMPLES``; tests use small ones to
    exercise many blocks). Blocks of any size written earlier are read alike.
    """

    def __init__(
        self,
        con: sqlite3.Connection,
        *,
        retention_days: float | None = None,
        max_bytes: int | None = None,
        retention_interval: float = 600.0,
        clock: Callable[[], float],
        block_samples: int = BLOCK_SAMPLES,
    ) -> None:
        if retention_days is not None and not retention_days > 0:
            raise ValueError("his_retention_days must be positive")
        if block_samples < 1:
            raise ValueError("block_samples must be positive")
        self._con = con
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.retention_interval = retention_interval
        self.block_samples = block_samples
        self._clock = clock
        self._last_age_check = -math.inf
        self._series: dict[str, _Series] = {}
        self._page_size = int(con.execute("PRAGMA page_size").fetchone()[0])

    def load(self) -> None:
        """Read the series table (once, at open)."""
        for sid, point, tz_name, unit in self._con.execute(
            "SELECT sid, point, tz, unit FROM his_series"
        ):
            self._series[point] = _Series(
                sid, tz_name, hs_tz(tz_name), unit or None, unit is not None
            )

    # -- write -----------------------------------------------------------------------------

    def write(self, key: str, batch: PreparedSamples) -> None:
        """Store a prepared batch in one transaction (making room first under a quota)."""
        tz = batch.tz
        assert tz is not None
        try:
            tz_name = hs_name(tz)
        except HaystackError as exc:
            raise StorageError(f"history time zone: {exc}") from None
        if self.retention_days is not None:
            batch = self._drop_expired(batch)
        if not batch.keys:
            return
        con = self._con
        old = self._series.get(key)
        # The zone as it will read back after a restart (hs_tz of the stored name).
        tz = hs_tz(tz_name)
        series = _Series(0, tz_name, tz, None, False) if old is None else _copy(old)
        series.tz, series.tz_name = tz, tz_name
        # Encoded before anything is written: a value that cannot be stored changes nothing.
        run = _encode_batch(series, batch)
        if self.max_bytes is not None:
            self._make_room(len(run), sum(map(len, run.others.values())))
        with transaction(con):
            if old is None:
                cur = con.execute(
                    "INSERT INTO his_series (point, tz, unit) VALUES (?, ?, NULL)", (key, tz_name)
                )
                assert cur.lastrowid is not None
                series.sid = cur.lastrowid
            if old is None or (old.tz_name, old.has_unit) != (tz_name, series.has_unit):
                con.execute(
                    "UPDATE his_series SET tz = ?, unit = ? WHERE sid = ?",
                    (tz_name, (series.unit or "") if series.has_unit else None, series.sid),
                )
            self._store(series.sid, run)
        self._series[key] = series
        if self.max_bytes is not None and self.size_bytes() > self.max_bytes:
            self.prune_to_size(int(self.max_bytes * _LOW_WATER))
        self.maybe_prune_age()

    def _store(self, sid: int, new: Run) -> None:
        """Merge a run into a series' blocks (inside the write's transaction)."""
        con = self._con
        # Where the blocks are, without their samples: only those a segment rewrites are read.
        near = con.execute(_NEAR, (sid, new.keys[0], new.keys[-1])).fetchall()
        for segment in plan_write([r[1:] for r in near], new.keys, self.block_samples):
            touched = [near[h] for h in segment.blocks]
            stored = Run()
            for row in touched:
                stored.add_block(*con.execute(_SAMPLES, (row[0],)).fetchone())
            whole = segment.lo == 0 and segment.hi == len(new)  # (the usual write: no copy)
            part = new if whole else new.slice(segment.lo, segment.hi)
            merged = merge(stored, part)
            self._replace(sid, [r[:2] for r in touched], merged)

    def _replace(self, sid: int, touched: list[tuple[int, int]], merged: Run) -> None:
        """Store ``merged`` in blocks instead of the ``(rowid, start_us)`` rows it came from."""
        con = self._con
        blocks = [pack(merged, i, j) for i, j in block_spans(len(merged), self.block_samples)]
        # When the first block keeps its start (an append into the last block), rewrite its
        # row in place: same rowid, its index entry untouched. Any other touched row goes
        # before the new ones are inserted, so no two rows ever share a start.
        reuse = bool(touched) and touched[0][1] == blocks[0][0]
        doomed = touched[1:] if reuse else touched
        if doomed:
            con.executemany("DELETE FROM his_block WHERE rowid = ?", [(r[0],) for r in doomed])
        if reuse:
            con.execute(_REWRITE, (*blocks[0][1:], touched[0][0]))
            del blocks[0]
        if blocks:
            con.executemany(_INSERT, [(sid, *block) for block in blocks])

    # -- read ------------------------------------------------------------------------------

    def read(self, key: str, start: int, end: int) -> list[HisSample]:
        """Samples with ``start <= ts < end`` (microseconds), ordered, in the series zone."""
        columns = self.read_columns(key, start, end)
        return [] if columns is None else columns.samples()

    def read_columns(self, key: str, start: int, end: int) -> HisColumns | None:
        """The samples of :meth:`read` as columns; None without any history."""
        series = self._series.get(key)
        if series is None:
            return None
        run = Run()
        add = run.add_block
        for times, vals, others in self._con.execute(_RANGE, (series.sid, start, end)):
            add(times, vals, others)
        keys = run.keys
        # Cut the first block before start and the last at end (exclusive).
        i = bisect_left(keys, start) if keys and keys[0] < start else 0
        j = bisect_left(keys, end, i) if keys and keys[-1] >= end else len(keys)
        if i or j < len(keys):
            run = run.slice(i, j)
        others = {k: _decode_other(text) for k, text in run.others.items()}
        times = array("d", map(_to_seconds, run.keys))
        return HisColumns(series.tz, series.unit, times, run.vals, others)

    def span(self, key: str) -> tuple[dt.datetime, dt.datetime] | None:
        """The first and last sample times of a point, or None."""
        series = self._series.get(key)
        if series is None:
            return None
        con = self._con
        first = con.execute(
            "SELECT start_us FROM his_block WHERE sid = ? ORDER BY start_us LIMIT 1",
            (series.sid,),
        ).fetchone()
        if first is None:
            return None
        last = con.execute(
            "SELECT end_us FROM his_block WHERE sid = ? ORDER BY start_us DESC LIMIT 1",
            (series.sid,),
        ).fetchone()
        return from_us(first[0], series.tz), from_us(last[0], series.tz)

    def count(self) -> int:
        """How many samples are stored (a scan of the blocks: for tests and diagnostics)."""
        return int(self._con.execute("SELECT coalesce(sum(n), 0) FROM his_block").fetchone()[0])

    # -- removal ---------------------------------------------------------------------------

    def delete_points(self, keys: Sequence[str]) -> list[str]:
        """Delete the history of points (call inside a transaction); the keys that had some."""
        doomed = [key for key in keys if key in self._series]
        for key in doomed:
            sid = self._series[key].sid
            self._con.execute("DELETE FROM his_block WHERE sid = ?", (sid,))
            self._con.execute("DELETE FROM his_series WHERE sid = ?", (sid,))
        return doomed

    def forget(self, keys: Sequence[str]) -> None:
        """Drop cached series after :meth:`delete_points` committed."""
        for key in keys:
            self._series.pop(key, None)

    # -- retention -------------------------------------------------------------------------

    def _drop_expired(self, batch: PreparedSamples) -> PreparedSamples:
        # Samples already past retention would go at the next pruning: spare the card.
        assert self.retention_days is not None
        cutoff = int((self._clock() - self.retention_days * 86400.0) * 1_000_000)
        if not batch.keys or batch.keys[0] >= cutoff:
            return batch
        i = bisect_left(batch.keys, cutoff)
        return batch[i:]

    def maybe_prune_age(self) -> int:
        """Apply retention by age if it is due (every ``retention_interval`` seconds)."""
        if self.retention_days is None:
            return 0
        now = self._clock()
        if now - self._last_age_check < self.retention_interval:
            return 0
        return self.prune_age(now)

    def prune_age(self, now: float) -> int:
        """Delete samples older than ``retention_days`` before ``now``; how many."""
        if self.retention_days is None:
            return 0
        self._last_age_check = now
        cutoff = int((now - self.retention_days * 86400.0) * 1_000_000)
        deleted = self._delete_before(cutoff)
        if deleted:
            self._release_pages()
        return deleted

    def size_bytes(self) -> int:
        """The database's size: ``page_count * page_size`` (free pages included)."""
        return int(self._con.execute("PRAGMA page_count").fetchone()[0]) * self._page_size

    def _used_bytes(self) -> int:
        con = self._con
        pages = int(con.execute("PRAGMA page_count").fetchone()[0])
        free = int(con.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    def _make_room(self, samples: int, text_bytes: int) -> None:
        assert self.max_bytes is not None
        # A write needs its samples, the copy of a block it rewrites (the old one is freed in
        # the same transaction, but perhaps after), and per touched B-tree level a page or two
        # for splits.
        need = (
            samples * SAMPLE_BYTES
            + text_bytes
            + self.block_samples * SAMPLE_BYTES
            + 4 * self._page_size
        )
        if self._used_bytes() + need > self.max_bytes:
            self.prune_to_size(int(self.max_bytes * _LOW_WATER) - need)

    def prune_to_size(self, target: int) -> int:
        """Delete the oldest samples (all points) until the database uses ``target`` bytes or
        less, or no history is left; how many samples went."""
        deleted = 0
        while True:
            used = self._used_bytes()
            if used <= target:
                break
            lo, hi = self._bounds()
            if lo is None or hi is None:
                break
            # The share of the time span to cut: the share of bytes to free, with margin
            # (history is not the whole file); at least 1/16 so the loop ends quickly.
            share = min(1.0, max((used - target) / used * 1.25, 1 / 16))
            cutoff = lo + 1 + int((hi - lo) * share)
            deleted += self._delete_before(cutoff)
            self._release_pages()
        # Free pages left by something else (a migration, a crash before the release) are
        # returned too: the file, not only its used pages, must come under the quota.
        if not deleted and int(self._con.execute("PRAGMA freelist_count").fetchone()[0]):
            self._release_pages()
        return deleted

    def _bounds(self) -> tuple[int | None, int | None]:
        # Two index probes per series (a global min(start_us) would scan every block).
        row = self._con.execute(
            "SELECT min((SELECT start_us FROM his_block b WHERE b.sid = s.sid"
            " ORDER BY start_us LIMIT 1)),"
            " max((SELECT end_us FROM his_block b WHERE b.sid = s.sid"
            " ORDER BY start_us DESC LIMIT 1)) FROM his_series s"
        ).fetchone()
        return row[0], row[1]

    def _delete_before(self, cutoff: int) -> int:
        """Delete every sample with a key before ``cutoff``; how many."""
        con = self._con
        with transaction(con):
            whole = f"FROM his_block WHERE {_BEFORE} AND end_us < ?1"
            deleted = int(
                con.execute(f"SELECT coalesce(sum(n), 0) {whole}", (cutoff,)).fetchone()[0]
            )
            con.execute(f"DELETE {whole}", (cutoff,))
            # At most one block per series straddles the cutoff: keep its newer samples.
            straddling = con.execute(
                f"SELECT rowid, n, times, vals, others FROM his_block WHERE {_BEFORE}"
                " AND end_us >= ?1",
                (cutoff,),
            ).fetchall()
            for rowid, n, times, vals, others in straddling:
                run = Run()
                run.add_block(times, vals, others)
                kept = cut_before(run, cutoff)
                con.execute(_UPDATE, (*pack(kept, 0, len(kept)), rowid))
                deleted += n - len(kept)
        return deleted

    def _release_pages(self) -> None:
        con = self._con
        # Not execute(): the pragma yields an empty row per page freed, and sqlite3's cursor
        # stops at the first such row, freeing one page per call; executescript steps the
        # statement to its end (there is no transaction open here for it to commit).
        con.executescript("PRAGMA incremental_vacuum;")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _copy(series: _Series) -> _Series:
    return _Series(series.sid, series.tz_name, series.tz, series.unit, series.has_unit)


def _encode_batch(series: _Series, batch: PreparedSamples) -> Run:
    """A batch as a run: the float of every Number in the series unit (which the first Number
    sets), the stored text of any other sample; updates ``series``' unit."""
    unit, has_unit = series.unit, series.has_unit
    nums_given = batch.nums
    # (a NaN, or INF and -INF, makes the sum NaN: those samples go through the loop below)
    if nums_given is not None and (batch.unit == unit or not has_unit) and _sum_ok(nums_given):
        series.unit, series.has_unit = batch.unit, True
        return Run(array("q", batch.keys), array("d", nums_given), {})
    nums: list[float] = []
    add = nums.append
    others: dict[int, str] = {}
    for v in batch.vals:
        if v.__class__ is Number:
            if not has_unit:
                unit, has_unit = v[1], True
            # NaN is kept as text: in the values it marks "see others"
            if v[1] == unit and v[0] == v[0]:
                add(v[0])
                continue
        others[len(nums)] = _encode(v)
        add(_NAN)
    series.unit, series.has_unit = unit, has_unit
    return Run(array("q", batch.keys), array("d", nums), others)


def _sum_ok(nums: list[float]) -> bool:
    """Whether no float is NaN (nor are INF and -INF both there)."""
    return not math.isnan(sum(nums))


def _encode(val: Value) -> str:
    if val.__class__ is Number and not math.isfinite(val[0]):
        word = "NaN" if val[0] != val[0] else ("INF" if val[0] > 0 else "-INF")
        return word + (val[1] or "")
    try:
        return encode_val(val)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"cannot store {val!r} as a history sample: {exc}") from None
