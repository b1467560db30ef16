"""The storage contract: what HaystackOps, the config loader and the drivers need from a store.

Two adapters implement it: ``memory.InMemoryAdapter`` (tests, embedding) and
``sqlite.SQLiteAdapter`` (the appliance's default). One shared contract test suite runs against
both. A store holds:

- **records** (Haystack dicts with an ``id`` Ref). ``add_records`` / ``update_records`` /
  ``remove_records`` change them; ``read_by_ids`` / ``read_by_filter`` / ``nav_children`` read
  them. A tag whose value is ``None`` is absent; in ``update_records`` the value ``REMOVE``
  deletes a tag. Records returned are **read-only**: the stores hand out their own dicts (a
  copy of every record read cost a third of a large read). A store never changes a dict it
  handed out (an update replaces the record with a new dict), so a caller may keep one as a
  snapshot, but must never mutate it: copy it first (``dict(rec)``) to change it.
- **runtime tags** (``RUNTIME_TAGS``: curVal, curStatus, connStatus, writeVal, ...). They are
  ordinary tags to readers and filters, but a store keeps them in memory only: drivers update
  them on every poll and an SD card must last years. After a restart they are gone until the
  drivers set them again.
- **history**: samples ``(ts, val)`` per point, ordered by time, one sample per timestamp (a
  later write of the same timestamp replaces the earlier one). Range reads are start-inclusive
  and end-exclusive.
- **priority arrays**: per writable point, the level records of
  ``gateway.points.priority.PriorityArray.to_records()``, saved durably on every write.
- **watches**: subscriptions with a lease, and a change counter so ``watch_poll`` reports only
  records changed since the last poll (any tag change, runtime tags and history included).
  Watches are session state, kept in memory by every adapter: a restart closes them, and a
  client whose poll then fails with ``UnknownWatchError`` subscribes again.
- **users** and **bearer tokens**: the ``UserStore`` of ``gateway.auth.users`` and the
  ``TokenStore`` of ``gateway.auth.tokens``.

Every mutating method is committed before it returns (an HTTP response that acknowledges a
write may follow it at once). Errors a client caused raise ``StorageError`` subclasses with a
message a person understands; the ops turn them into error grids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gateway.auth.tokens import TokenStore
from gateway.auth.users import UserStore
from gateway.haystack.filter import Filter
from gateway.haystack.kinds import Ref, Value
from gateway.storage.hiscolumns import HisColumns

__all__ = [
    "RUNTIME_TAGS",
    "DuplicateIdError",
    "HisColumns",
    "HisSample",
    "RecordStore",
    "StorageAdapter",
    "StorageError",
    "UnknownIdError",
    "UnknownWatchError",
    "WatchInfo",
]

#: Tags that live in memory only (never written to disk on a poll).
RUNTIME_TAGS: frozenset[str] = frozenset(
    {
        "curVal",
        "curStatus",
        "curErr",
        "connStatus",
        "connState",
        "connErr",
        "writeVal",
        "writeLevel",
        "writeStatus",
        "writeErr",
        "hisStatus",
        "hisErr",
    }
)

#: One history sample: an aware timestamp and a value (Number, Bool, Str, Coord or NA).
HisSample = tuple[dt.datetime, Value]


class StorageError(Exception):
    """A store refused a request; ``str(exc)`` is meant for the client."""


class UnknownIdError(StorageError, KeyError):
    """A record id that the store does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown id"


class DuplicateIdError(StorageError):
    """``add_records`` with an id that already exists (or twice in one call)."""


class UnknownWatchError(StorageError):
    """A watch id that is unknown or whose lease expired: the client must subscribe again."""


@dataclass(slots=True)
class WatchInfo:
    """A watch as ``watch_sub`` / ``watch_poll`` report it."""

    watch_id: str
    dis: str
    lease: float  # seconds
    ids: list[Ref] = field(default_factory=list)


@runtime_checkable
class RecordStore(Protocol):
    """Records, history and priority arrays: the part the config loader and drivers use."""

    async def add_records(self, records: Sequence[Mapping[str, Value]]) -> None:
        """Add new records (each with an ``id`` Ref); all or nothing."""

    async def update_records(self, records: Sequence[Mapping[str, Value]]) -> None:
        """Change tags of existing records (``id`` plus the tags; ``REMOVE`` deletes a tag)."""

    async def remove_records(self, ids: Sequence[Ref]) -> None:
        """Remove records with their history and priority array; unknown ids are ignored."""

    async def read_by_ids(self, ids: Sequence[Ref]) -> list[dict[str, Value] | None]:
        """The records in request order (read-only dicts); ``None`` where an id is unknown."""

    async def read_by_filter(
        self, filter: Filter | str, limit: int | None = None
    ) -> list[dict[str, Value]]:
        """Records matching a filter (``->`` paths resolved in the store), at most ``limit``;
        read-only dicts."""

    async def his_read(
        self, id: Ref, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[HisSample]:
        """Samples with ``start <= ts < end`` (open ends when None), ordered by time.

        Timestamps are in the zone of the latest write to the point. ``UnknownIdError`` if
        there is no such record.
        """

    async def his_read_columns(
        self, id: Ref, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> HisColumns:
        """The samples of ``his_read`` as columns (epoch seconds, floats): see ``HisColumns``.

        The fast path for large reads: no object per sample until one is asked for. A point
        without history gives empty columns in the zone of its ``tz`` tag (else UTC).
        """

    async def his_write(self, id: Ref, samples: Sequence[HisSample]) -> int:
        """Store samples (any order; one per timestamp, the last given wins); return the count.

        The count is of distinct timestamps stored; samples whose value is None are skipped.
        The caller has checked kinds, units and time zones against the point record.
        ``UnknownIdError`` if there is no such record; the point's watchers see a change.
        """

    async def save_priority_array(self, id: Ref, levels: Sequence[Mapping[str, Value]]) -> None:
        """Durably store a point's priority array (``PriorityArray.to_records()``).

        An empty list deletes it. ``UnknownIdError`` if there is no such record; removing the
        record removes its array.
        """

    async def load_priority_arrays(self) -> dict[Ref, list[dict[str, Value]]]:
        """Every stored priority array, by point id."""


@runtime_checkable
class StorageAdapter(RecordStore, UserStore, TokenStore, Protocol):
    """The whole contract HaystackOps is written against."""

    @property
    def is_open(self) -> bool:
        """True between ``open`` and ``aclose``."""

    async def open(self) -> None:
        """Open files, run migrations, load caches. Called once before anything else."""

    async def aclose(self) -> None:
        """Flush and close. The store is unusable afterwards."""

    async def nav_children(self, nav_id: Ref | str | None) -> list[dict[str, Value]]:
        """The nav tree: root -> sites -> equips -> points (see ``HaystackOps.nav``).

        Haxall's default tree: the root lists sites (else equips, else points); a site lists
        ``equip and siteRef==id``; an equip ``point and equipRef==id``. Every row carries
        ``navId`` (the record's id) except points, which are leaves. ``nav_id`` is the Ref or
        its Str form (``"@id"`` or ``"id"``, as Haystack 3 clients send it); an unknown one
        has no children.
        """

    async def his_span(self, id: Ref) -> tuple[dt.datetime, dt.datetime] | None:
        """The first and last sample times of a point, or None without history.

        ``UnknownIdError`` if there is no such record.
        """

    async def watch_sub(
        self, watch_id: str | None, dis: str | None, ids: Sequence[Ref], lease: float, now: float
    ) -> WatchInfo:
        """Open a watch (``watch_id`` None) or add ids to one; renews the lease.

        The lease is clamped to the adapter's maximum and returned in ``WatchInfo.lease``;
        ``WatchInfo.ids`` are every id of the watch in canonical form (the records' own id
        Refs). Unknown ids are not added. Adding to an unknown or expired watch raises
        ``UnknownWatchError``.
        """

    async def watch_unsub(self, watch_id: str, ids: Sequence[Ref] | None) -> None:
        """Remove ids from a watch, or close it (``ids`` None). Unknown watches are ignored."""

    async def watch_poll(self, watch_id: str, refresh: bool, now: float) -> list[dict[str, Value]]:
        """Records of the watch changed since its last poll (all of them on ``refresh``).

        Renews the lease. Raises ``UnknownWatchError`` for an unknown or expired watch.
        """
