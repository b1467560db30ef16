"""Point writes: the priority arrays of writable points, kept in memory and durable in the store.

``PointWrites`` is the one place a priority array changes. ``pointWrite`` (the op) and the
runtime (timed overrides expiring) both go through it:

1. the new array is computed by the pure ``PriorityArray`` (which validates level, kind, unit,
   who and duration);
2. it is saved through the store **before** the call returns, so an acknowledged write
   survives a power cut;
3. the point's runtime tags ``writeVal`` / ``writeLevel`` follow the winner;
4. listeners (the runtime's write dispatcher) hear about every change of effective value.

Arrays are restored from the store at start with every level, who, time and expiry intact.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from gateway.haystack.kinds import REMOVE, Ref, Value
from gateway.points.priority import PointWriteError, PriorityArray
from gateway.storage.base import RecordStore, UnknownIdError

__all__ = ["EffectiveChange", "PointWrites"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EffectiveChange:
    """The winner of a point's priority array changed (``val`` None: every level is null)."""

    id: Ref
    val: Value
    level: int
    who: str | None


Listener = Callable[[EffectiveChange], None]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PointWrites:
    """The priority arrays of one store's writable points."""

    def __init__(self, store: RecordStore, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self._store = store
        self._clock = clock
        self._arrays: dict[Ref, PriorityArray] = {}
        self._listeners: list[Listener] = []
        self._lock = trio.Lock()
        self._changed = trio.Event()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every change of effective value; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def load(self) -> None:
        """Restore every stored array and set ``writeVal``/``writeLevel`` on its point."""
        stored = await self._store.load_priority_arrays()
        if not stored:
            return
        ids = list(stored)
        recs = await self._store.read_by_ids(ids)
        now = self._clock()
        updates = []
        for id, rec in zip(ids, recs, strict=True):
            if rec is None:
                log.warning("priority array of %s kept, but the point no longer exists", id)
                continue
            try:
                array = PriorityArray.from_records(stored[id], rec)
            except (ValueError, PointWriteError) as exc:
                log.error("priority array of %s cannot be restored: %s", id, exc)
                continue
            self._arrays[id] = array
            updates.append(self._write_tags(id, array, now))
        if updates:
            await self._store.update_records(updates)

    def cached(self, id: Ref) -> PriorityArray | None:
        """The array of a point if it was ever written or restored."""
        return self._arrays.get(id)

    async def array(self, id: Ref) -> PriorityArray:
        """The array of a writable point (an empty one if it was never written)."""
        array = self._arrays.get(id)
        if array is not None:
            return array
        rec = await self._point(id)
        return PriorityArray.for_point(rec)

    async def write(
        self,
        id: Ref,
        level: int,
        val: Value,
        who: str,
        duration: Value = None,
    ) -> PriorityArray:
        """Write (or relinquish, ``val`` None) one level; durable before it returns."""
        async with self._lock:
            old = self._arrays.get(id)
            if old is None:
                old = PriorityArray.for_point(await self._point(id))
            now = self._clock()
            new = old.write(level, val, who, now=now, duration=duration)
            if new is old:
                return old
            await self._commit(id, old, new, now)
            return new

    async def expire_due(self) -> dt.datetime | None:
        """Drop timed overrides that ran out; return when the next one runs out."""
        async with self._lock:
            now = self._clock()
            for id, array in list(self._arrays.items()):
                expiry = array.next_expiry()
                if expiry is not None and expiry <= now:
                    await self._commit(id, array, array.expire(now), now)
            expiries = [e for a in self._arrays.values() if (e := a.next_expiry()) is not None]
            return min(expiries, default=None)

    async def wait_changed(self) -> None:
        """Wait until some array changes (a new timed override may expire sooner)."""
        await self._changed.wait()

    def effective(self, id: Ref) -> tuple[Value, int] | None:
        """The winning value and level of a point, or None if it was never written."""
        array = self._arrays.get(id)
        return None if array is None else array.effective(self._clock())

    def forget(self, id: Ref) -> None:
        """Drop a point's array from memory (its record was removed)."""
        self._arrays.pop(id, None)

    async def _point(self, id: Ref) -> Mapping[str, Value]:
        (rec,) = await self._store.read_by_ids([id])
        if rec is None:
            raise UnknownIdError(f"unknown point {id}")
        return rec

    async def _commit(
        self, id: Ref, old: PriorityArray, new: PriorityArray, now: dt.datetime
    ) -> None:
        await self._store.save_priority_array(id, new.to_records())
        self._arrays[id] = new
        await self._store.update_records([self._write_tags(id, new, now)])
        self._changed.set()
        self._changed = trio.Event()
        # winner() ignores the clock: an expiry changes it even though effective(now) of the
        # old array already showed the override as released.
        if old.winner() != new.winner():
            val, level = new.winner()
            entry = new.level(level)
            change = EffectiveChange(id, val, level, entry.who if entry else None)
            for listener in list(self._listeners):
                listener(change)

    @staticmethod
    def _write_tags(id: Ref, array: PriorityArray, now: dt.datetime) -> dict[str, Value]:
        tags = array.write_tags(now)
        return {
            "id": id,
            "writeVal": tags.get("writeVal", REMOVE),
            "writeLevel": tags.get("writeLevel", REMOVE),
        }
