"""Watches: subscriptions with a lease, and what changed since a client's last poll.

Both storage adapters keep their watches here, in memory: a watch is a client's session state,
not data, so a restart closes every watch. A client that polls a closed watch gets an error grid
(``UnknownWatchError``) and subscribes again, as the Haystack spec requires of it.

- ids look like ``w-<16 hex digits>`` (random, so one client cannot guess another's watch);
- a lease is honoured up to ``max_lease`` (and at least ``MIN_LEASE``); the lease actually
  granted is returned, and every sub or poll renews it. An expired watch is forgotten;
- a watch remembers, for each subscribed record, the change version (``RecordIndex``) it has
  reported, so a poll returns exactly the records changed since, and ``refresh`` all of them;
- a watch also remembers the store's overall version when it last compared its records, so
  the usual poll of an unchanged store (a client polling every few seconds) looks at none.

Time is passed in as ``now`` (seconds on any monotonic clock the caller chooses).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from gateway.storage.base import UnknownWatchError

__all__ = ["DEFAULT_LEASE", "DEFAULT_MAX_LEASE", "MIN_LEASE", "Watch", "WatchRegistry"]

#: The lease a watch gets when the client asks for none (Haxall's default).
DEFAULT_LEASE: Final = 60.0
#: The longest lease granted unless configured otherwise.
DEFAULT_MAX_LEASE: Final = 3600.0
#: The shortest lease granted: less would expire between a client's sub and its first poll.
MIN_LEASE: Final = 1.0


@dataclass(slots=True)
class Watch:
    """One client's watch: its records (key -> version reported) and its lease."""

    watch_id: str
    dis: str
    lease: float
    expires: float
    seen: dict[str, int] = field(default_factory=dict)
    # The store's version when every record of the watch was last compared (-1: never);
    # while the store has not changed since, a poll has nothing to look at.
    compared: int = -1


class WatchRegistry:
    """Every open watch. ``version_of(key)`` gives a record's change version (None: gone)."""

    def __init__(
        self,
        version_of: Callable[[str], int | None],
        *,
        max_lease: float = DEFAULT_MAX_LEASE,
        store_version: Callable[[], int] | None = None,
        versions_of: Callable[[list[str]], list[int | None]] | None = None,
    ) -> None:
        if not max_lease >= MIN_LEASE:
            raise ValueError(f"max_lease must be at least {MIN_LEASE} s")
        self._version_of = version_of
        # The version of the latest change anywhere in the store (every change, removals
        # included, raises it): lets a poll of an unchanged store skip its records.
        self._store_version = store_version
        # version_of of many keys at once (for a sub of a thousand records)
        self._versions_of = versions_of or (lambda keys: list(map(version_of, keys)))
        self.max_lease = float(max_lease)
        self._watches: dict[str, Watch] = {}

    def __len__(self) -> int:
        return len(self._watches)

    def grant(self, lease: float | None) -> float:
        """The lease given for a requested one (None or nonsense: the default)."""
        if lease is None or not math.isfinite(lease) or lease <= 0:
            lease = DEFAULT_LEASE
        return min(max(float(lease), MIN_LEASE), self.max_lease)

    def expire(self, now: float) -> int:
        """Forget the watches whose lease has run out; how many."""
        doomed = [w for w, watch in self._watches.items() if watch.expires <= now]
        for watch_id in doomed:
            del self._watches[watch_id]
        return len(doomed)

    def _live(self, watch_id: str, now: float) -> Watch:
        watch = self._watches.get(watch_id)
        if watch is None or watch.expires <= now:
            self._watches.pop(watch_id, None)
            raise UnknownWatchError(f"unknown or expired watch {watch_id!r}")
        return watch

    def get(self, watch_id: str, now: float) -> Watch:
        """A live watch; ``UnknownWatchError`` if it is unknown or expired."""
        return self._live(watch_id, now)

    def sub(
        self,
        watch_id: str | None,
        dis: str | None,
        keys: Iterable[str],
        lease: float | None,
        now: float,
    ) -> Watch:
        """Open a watch (``watch_id`` None) or add records to one; (re)applies the lease.

        ``keys`` are ids of records that exist; they are added as already reported at their
        current version, since the sub response carries their current state.
        """
        self.expire(now)
        if watch_id is None:
            watch_id = self._new_id()
            watch = self._watches[watch_id] = Watch(watch_id, dis or watch_id, 0.0, 0.0)
            if self._store_version is not None:
                # (taken before the versions of the keys: a change in between is then found)
                watch.compared = self._store_version()
        else:
            watch = self._live(watch_id, now)
            if dis:
                watch.dis = dis
        watch.lease = self.grant(lease)
        watch.expires = now + watch.lease
        keys = list(keys)
        versions = self._versions_of(keys)
        if None in versions:  # a record went since the caller looked
            watch.seen.update((k, v) for k, v in zip(keys, versions, strict=True) if v is not None)
        else:
            watch.seen.update(zip(keys, versions, strict=True))  # type: ignore[arg-type]
        return watch

    def _new_id(self) -> str:
        while True:
            watch_id = "w-" + secrets.token_hex(8)
            if watch_id not in self._watches:
                return watch_id

    def unsub(self, watch_id: str, keys: Iterable[str] | None) -> None:
        """Remove records from a watch, or close it (``keys`` None); unknown watches ignored."""
        if keys is None:
            self._watches.pop(watch_id, None)
            return
        watch = self._watches.get(watch_id)
        if watch is not None:
            for key in keys:
                watch.seen.pop(key, None)

    def poll(self, watch_id: str, refresh: bool, now: float) -> list[str]:
        """Keys of the watch's records changed since its last poll (all on ``refresh``).

        Renews the lease; records removed from the store leave the watch.
        """
        self.expire(now)
        watch = self._live(watch_id, now)
        watch.expires = now + watch.lease
        store = self._store_version() if self._store_version is not None else None
        if not refresh and store is not None and store == watch.compared:
            return []  # the usual poll: nothing changed anywhere since the last look
        version_of = self._version_of
        seen = watch.seen
        changed: list[str] = []
        gone: list[str] = []
        for key, reported in seen.items():
            version = version_of(key)
            if version is None:
                gone.append(key)
            elif refresh or version > reported:
                changed.append(key)
                seen[key] = version
        for key in gone:
            del seen[key]
        if store is not None:
            watch.compared = store
        return changed
