"""History in SQLite: samples, range reads, and retention by age and by size.

Everything here runs in the SQLite adapter's worker thread, the only user of the connection
(``sqlite.py`` hands every call to it through one ``trio.CapacityLimiter(1)``); the series
metadata cached here is touched by that thread only.

Layout: see :mod:`gateway.storage.sqlite_schema` (``his`` is clustered by ``(sid, ts)``, so a
point's range read is one sequential index scan).

Retention, so that an SD card never fills:

- **by age** (``retention_days``): samples older than that go; checked on open and then at
  most once per ``retention_interval`` seconds, when history is written. A write of samples
  that are already too old drops them (they would go at the next check anyway).
- **by size** (``max_bytes``): the whole database file (records, users and history) is kept at
  or under the quota by deleting the *oldest* samples, across all points, in batches. Before a
  write, room is made for it using a pessimistic estimate of its size (``SAMPLE_BYTES`` per
  sample, plus a few pages); after it, the real size is checked again. Deleting frees pages,
  ``PRAGMA incremental_vacuum`` returns them to the file system (the database is created with
  ``auto_vacuum=INCREMENTAL``) and a ``wal_checkpoint(TRUNCATE)`` writes the shrunken database
  back and empties the WAL. Size is measured as ``page_count * page_size``, the size the main
  file has after a checkpoint. The WAL beside it holds at most the pages of the transactions
  since the last checkpoint (SQLite checkpoints every 1,000 pages by default). If records and
  users alone exceed the quota, history cannot help: it is emptied and the rest is kept.
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

from gateway.haystack.codecs.jsondoc import gc_paused
from gateway.haystack.codecs.zinc import decode_val, encode_val
from gateway.haystack.errors import HaystackError
from gateway.haystack.kinds import NA, Number, Value
from gateway.haystack.tz import hs_name, hs_tz
from gateway.storage.base import HisSample, StorageError
from gateway.storage.hiscolumns import HisColumns
from gateway.storage.history import PreparedSamples, from_us
from gateway.storage.sqlite_schema import transaction

__all__ = ["SAMPLE_BYTES", "SQLiteHistory"]

#: A pessimistic size of one stored sample (a row is ~20-30 bytes; B-tree pages may be half
#: full after splits), used to make room before a write.
SAMPLE_BYTES: Final = 64
# After pruning for size, leave this share of the quota free so that the next writes fit.
_LOW_WATER: Final = 0.9
_tuple_new = tuple.__new__
_fromts = dt.datetime.fromtimestamp
_FAST_OTHER: Final[dict[str, Value]] = {"T": True, "F": False, "NA": NA}
# Zinc writes NaN and infinities as bare keywords without a unit; a sample keeps its unit.
_SPECIAL_FLOATS: Final = (("NaN", math.nan), ("-INF", -math.inf), ("INF", math.inf))
_UPSERT: Final = (
    "INSERT INTO his (sid, ts, val, other) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (sid, ts) DO UPDATE SET val = excluded.val, other = excluded.other"
)


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
    """The ``his`` tables of one connection, with the retention policy."""

    def __init__(
        self,
        con: sqlite3.Connection,
        *,
        retention_days: float | None = None,
        max_bytes: int | None = None,
        retention_interval: float = 600.0,
        clock: Callable[[], float],
    ) -> None:
        if retention_days is not None and not retention_days > 0:
            raise ValueError("his_retention_days must be positive")
        self._con = con
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.retention_interval = retention_interval
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
        if self.max_bytes is not None:
            self._make_room(len(batch.keys))
        con = self._con
        old = self._series.get(key)
        # The zone as it will read back after a restart (hs_tz of the stored name).
        tz = hs_tz(tz_name)
        series = _Series(0, tz_name, tz, None, False) if old is None else _copy(old)
        series.tz, series.tz_name = tz, tz_name
        rows: list[tuple[int, int, float | None, str | None]] = []
        with transaction(con):
            if old is None:
                cur = con.execute(
                    "INSERT INTO his_series (point, tz, unit) VALUES (?, ?, NULL)", (key, tz_name)
                )
                assert cur.lastrowid is not None
                series.sid = cur.lastrowid
            sid = series.sid
            for k, v in zip(batch.keys, batch.vals, strict=True):
                if v.__class__ is Number:
                    if not series.has_unit:
                        series.unit, series.has_unit = v[1], True
                    # NaN cannot be stored as REAL (SQLite makes it NULL)
                    if v[1] == series.unit and v[0] == v[0]:
                        rows.append((sid, k, v[0], None))
                        continue
                rows.append((sid, k, None, _encode(v)))
            if old is None or (old.tz_name, old.has_unit) != (tz_name, series.has_unit):
                con.execute(
                    "UPDATE his_series SET tz = ?, unit = ? WHERE sid = ?",
                    (tz_name, (series.unit or "") if series.has_unit else None, sid),
                )
            con.executemany(_UPSERT, rows)
        self._series[key] = series
        if self.max_bytes is not None and self.size_bytes() > self.max_bytes:
            self.prune_to_size(int(self.max_bytes * _LOW_WATER))
        self.maybe_prune_age()

    # -- read ------------------------------------------------------------------------------

    def read(self, key: str, start: int, end: int) -> list[HisSample]:
        """Samples with ``start <= ts < end`` (microseconds), ordered, in the series zone."""
        series = self._series.get(key)
        if series is None:
            return []
        cur = self._con.execute(
            "SELECT ts / 1000000.0, val, other FROM his WHERE sid = ? AND ts >= ? AND ts < ?"
            " ORDER BY ts",
            (series.sid, start, end),
        )
        tz, unit = series.tz, series.unit
        with gc_paused():  # many new acyclic tuples: see HisColumns.samples
            return [
                (_fromts(s, tz), _tuple_new(Number, (v, unit)) if o is None else _decode_other(o))
                for s, v, o in cur
            ]

    def read_columns(self, key: str, start: int, end: int) -> HisColumns | None:
        """The samples of :meth:`read` as columns; None without any history."""
        series = self._series.get(key)
        if series is None:
            return None
        cur = self._con.execute(
            "SELECT ts / 1000000.0, val, other FROM his WHERE sid = ? AND ts >= ? AND ts < ?"
            " ORDER BY ts",
            (series.sid, start, end),
        )
        # One pass straight from the cursor into the arrays: no list of 100,000 row tuples
        # (its peak was ~15 MiB), and no second and third pass over it.
        times, nums = array("d"), array("d")
        add_time, add_num = times.append, nums.append
        others: dict[int, Value] = {}
        with gc_paused():  # a tuple per row, freed at once
            for t, v, o in cur:
                add_time(t)
                if o is None:
                    add_num(v)
                else:
                    others[len(nums)] = _decode_other(o)
                    add_num(math.nan)
        return HisColumns(series.tz, series.unit, times, nums, others)

    def span(self, key: str) -> tuple[dt.datetime, dt.datetime] | None:
        """The first and last sample times of a point, or None."""
        series = self._series.get(key)
        if series is None:
            return None
        con = self._con
        first = con.execute(
            "SELECT ts FROM his WHERE sid = ? ORDER BY ts LIMIT 1", (series.sid,)
        ).fetchone()
        if first is None:
            return None
        last = con.execute(
            "SELECT ts FROM his WHERE sid = ? ORDER BY ts DESC LIMIT 1", (series.sid,)
        ).fetchone()
        return from_us(first[0], series.tz), from_us(last[0], series.tz)

    def count(self) -> int:
        """How many samples are stored (a full index scan: for tests and diagnostics)."""
        return int(self._con.execute("SELECT count(*) FROM his").fetchone()[0])

    # -- removal ---------------------------------------------------------------------------

    def delete_points(self, keys: Sequence[str]) -> list[str]:
        """Delete the history of points (call inside a transaction); the keys that had some."""
        doomed = [key for key in keys if key in self._series]
        for key in doomed:
            sid = self._series[key].sid
            self._con.execute("DELETE FROM his WHERE sid = ?", (sid,))
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
        if batch.keys[0] >= cutoff:
            return batch
        i = bisect_left(batch.keys, cutoff)
        return PreparedSamples(batch.keys[i:], batch.vals[i:], batch.tz)

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

    def _make_room(self, samples: int) -> None:
        assert self.max_bytes is not None
        # A write needs its rows plus, per touched B-tree level, a page or two for splits.
        need = samples * SAMPLE_BYTES + 4 * self._page_size
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
        return deleted

    def _bounds(self) -> tuple[int | None, int | None]:
        # One primary-key probe per series (a global min(ts) would scan the whole table).
        row = self._con.execute(
            "SELECT min((SELECT ts FROM his WHERE his.sid = s.sid ORDER BY ts LIMIT 1)),"
            " max((SELECT ts FROM his WHERE his.sid = s.sid ORDER BY ts DESC LIMIT 1))"
            " FROM his_series s"
        ).fetchone()
        return row[0], row[1]

    def _delete_before(self, cutoff: int) -> int:
        with transaction(self._con):
            cur = self._con.execute(
                "DELETE FROM his WHERE sid IN (SELECT sid FROM his_series) AND ts < ?", (cutoff,)
            )
        return max(cur.rowcount, 0)

    def _release_pages(self) -> None:
        con = self._con
        con.execute("PRAGMA incremental_vacuum").fetchall()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _copy(series: _Series) -> _Series:
    return _Series(series.sid, series.tz_name, series.tz, series.unit, series.has_unit)


def _encode(val: Value) -> str:
    if val.__class__ is Number and not math.isfinite(val[0]):
        word = "NaN" if val[0] != val[0] else ("INF" if val[0] > 0 else "-INF")
        return word + (val[1] or "")
    try:
        return encode_val(val)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"cannot store {val!r} as a history sample: {exc}") from None
