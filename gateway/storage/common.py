"""What both storage adapters share: the whole contract over in-memory state, with write hooks.

:class:`IndexedAdapter` implements every method of ``StorageAdapter`` over a
:class:`~gateway.storage.index.RecordIndex`, a :class:`~gateway.storage.watches.WatchRegistry`
and dicts of priority arrays, users and token records. Reads are answered from memory. A
mutation runs in three steps under one write lock:

1. *prepare*: validate and compute the new state against the current one (nothing changes, so
   an invalid request changes nothing: all or nothing);
2. *store*: an ``await self._store_*`` hook writes it through (no-ops in memory; one SQLite
   transaction, committed before it returns, in ``sqlite.py``);
3. *apply*: install it in memory.

Steps 2 and 3 run shielded from cancellation, so a cancelled caller never leaves the disk and
memory apart. The lock serialises mutations, so a prepare never works on a state that another
task is about to replace (a driver's curVal update and a config change to the same record
cannot lose each other). A change that touches only runtime tags skips the store step. History
writes have a lock of their own (they change no record), which removals also take.

History is the one part kept per adapter (``_his_*`` hooks): in memory here, on disk in SQLite.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Mapping, Sequence
from dataclasses import replace

import trio

from gateway.auth.errors import UnknownUserError, UserExistsError
from gateway.auth.roles import Role
from gateway.auth.tokens import TokenRecord
from gateway.auth.users import User
from gateway.haystack.errors import HaystackError
from gateway.haystack.filter import Filter
from gateway.haystack.kinds import Ref, Value
from gateway.haystack.tz import UTC, hs_tz
from gateway.storage.base import HisSample, UnknownIdError, WatchInfo
from gateway.storage.hiscolumns import HisColumns
from gateway.storage.history import MAX_US, MIN_US, PreparedSamples, bound_us, prepare_samples
from gateway.storage.index import IndexStatistics, RecordIndex
from gateway.storage.watches import DEFAULT_MAX_LEASE, WatchRegistry

__all__ = ["IndexedAdapter"]


class IndexedAdapter:
    """The shared implementation of ``StorageAdapter``; subclasses provide the hooks."""

    def __init__(self, *, max_lease: float = DEFAULT_MAX_LEASE) -> None:
        self._index = RecordIndex()
        index = self._index
        self._watches = WatchRegistry(
            index.version_of,
            max_lease=max_lease,
            store_version=lambda: index.version,
            versions_of=index.versions_of,
        )
        self._arrays: dict[str, list[dict[str, Value]]] = {}
        self._users: dict[str, User] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._write_lock = trio.Lock()
        # History writes take their own lock, so that a long one (a big batch, or pruning under
        # a size quota) never delays a driver's curVal update; removal takes both.
        self._his_lock = trio.Lock()

    async def open(self) -> None:
        """Open files, run migrations, load caches. Called once before anything else."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Flush and close. The store is unusable afterwards."""
        raise NotImplementedError

    # -- hooks (the in-memory adapter keeps the defaults) ------------------------------------

    async def _store_records(
        self, upserts: Sequence[Mapping[str, Value]], removed: Sequence[str]
    ) -> None:
        """Write new or changed records (all their tags) and drop removed ones with their
        history and priority arrays."""
        await trio.lowlevel.checkpoint()

    async def _store_array(self, key: str, levels: list[dict[str, Value]] | None) -> None:
        """Write a point's priority array (None: delete it)."""
        await trio.lowlevel.checkpoint()

    async def _store_user(self, username: str, user: User | None) -> None:
        """Write a user (None: delete)."""
        await trio.lowlevel.checkpoint()

    async def _store_tokens(self, saved: Sequence[TokenRecord], removed: Sequence[str]) -> None:
        """Write token records and delete others by hash."""
        await trio.lowlevel.checkpoint()

    async def _his_write(self, key: str, batch: PreparedSamples) -> None:
        raise NotImplementedError

    async def _his_read(self, key: str, start: int, end: int) -> list[HisSample]:
        raise NotImplementedError

    async def _his_columns(self, key: str, start: int, end: int) -> HisColumns | None:
        """The samples as columns; None when the point has no history at all."""
        raise NotImplementedError

    async def _his_span(self, key: str) -> tuple[dt.datetime, dt.datetime] | None:
        raise NotImplementedError

    # -- diagnostics -----------------------------------------------------------------------

    def statistics(self) -> IndexStatistics:
        """Record count, tag count, change version and the candidates of the last filter read."""
        return self._index.statistics()

    # -- records ---------------------------------------------------------------------------

    async def add_records(self, records: Sequence[Mapping[str, Value]]) -> None:
        async with self._write_lock:
            prepared = self._index.prepare_add(records)
            if not prepared:
                return
            with trio.CancelScope(shield=True):
                await self._store_records(prepared, ())
                self._index.apply_add(prepared)

    async def update_records(self, records: Sequence[Mapping[str, Value]]) -> None:
        async with self._write_lock:
            changes = self._index.prepare_update(records)
            if not changes:
                return
            with trio.CancelScope(shield=True):
                persistent = [c.new for c in changes if c.persistent]
                if persistent:
                    await self._store_records(persistent, ())
                self._index.apply_update(changes)

    async def remove_records(self, ids: Sequence[Ref]) -> None:
        async with self._write_lock, self._his_lock:
            keys = self._index.known(ids)
            if not keys:
                return
            with trio.CancelScope(shield=True):
                await self._store_records((), keys)
                self._index.apply_remove(keys)
                for key in keys:
                    self._arrays.pop(key, None)

    async def read_by_ids(self, ids: Sequence[Ref]) -> list[dict[str, Value] | None]:
        await trio.lowlevel.checkpoint()
        return self._index.read_by_ids(ids)

    async def read_by_filter(
        self, filter: Filter | str, limit: int | None = None
    ) -> list[dict[str, Value]]:
        await trio.lowlevel.checkpoint()
        return self._index.read_by_filter(filter, limit)

    async def nav_children(self, nav_id: Ref | str | None) -> list[dict[str, Value]]:
        await trio.lowlevel.checkpoint()
        return self._index.nav_children(nav_id)

    def _key(self, id: Ref) -> str:
        if not isinstance(id, Ref) or id[0] not in self._index:
            raise UnknownIdError(f"unknown id {id}")
        return id[0]

    # -- history ---------------------------------------------------------------------------

    async def his_read(
        self, id: Ref, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[HisSample]:
        key = self._key(id)
        lo, hi = bound_us(start, MIN_US), bound_us(end, MAX_US)
        if lo >= hi:
            await trio.lowlevel.checkpoint()
            return []
        return await self._his_read(key, lo, hi)

    async def his_read_columns(
        self, id: Ref, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> HisColumns:
        key = self._key(id)
        lo, hi = bound_us(start, MIN_US), bound_us(end, MAX_US)
        cols = await self._his_columns(key, lo, hi) if lo < hi else None
        if cols is None:
            await trio.lowlevel.checkpoint()
            return HisColumns.empty(self._point_tz(key))
        return cols

    def _point_tz(self, key: str) -> dt.tzinfo:
        rec = self._index.get(key)
        name = rec.get("tz") if rec is not None else None
        if isinstance(name, str):
            try:
                return hs_tz(name)
            except HaystackError:
                pass
        return UTC

    async def his_write(self, id: Ref, samples: Sequence[HisSample]) -> int:
        batch = prepare_samples(samples)
        async with self._his_lock:
            key = self._key(id)
            if not batch.keys:
                return 0
            with trio.CancelScope(shield=True):
                await self._his_write(key, batch)
                self._index.touch(key)
        return len(batch.keys)

    async def his_span(self, id: Ref) -> tuple[dt.datetime, dt.datetime] | None:
        return await self._his_span(self._key(id))

    # -- priority arrays -------------------------------------------------------------------

    async def save_priority_array(self, id: Ref, levels: Sequence[Mapping[str, Value]]) -> None:
        async with self._write_lock:
            key = self._key(id)
            copy = [dict(level) for level in levels] or None
            with trio.CancelScope(shield=True):
                await self._store_array(key, copy)
                if copy is None:
                    self._arrays.pop(key, None)
                else:
                    self._arrays[key] = copy

    async def load_priority_arrays(self) -> dict[Ref, list[dict[str, Value]]]:
        await trio.lowlevel.checkpoint()
        out: dict[Ref, list[dict[str, Value]]] = {}
        for key, levels in self._arrays.items():
            rec = self._index.get(key)
            ref = rec["id"] if rec is not None else Ref(key)
            out[ref] = [dict(level) for level in levels]
        return out

    # -- watches ---------------------------------------------------------------------------

    def _watch_info(self, watch_id: str, dis: str, lease: float, keys: list[str]) -> WatchInfo:
        return WatchInfo(watch_id, dis, lease, self._index.ids_of(keys))

    async def watch_sub(
        self, watch_id: str | None, dis: str | None, ids: Sequence[Ref], lease: float, now: float
    ) -> WatchInfo:
        await trio.lowlevel.checkpoint()
        watch = self._watches.sub(watch_id, dis, self._index.known(ids), lease, now)
        return self._watch_info(watch.watch_id, watch.dis, watch.lease, list(watch.seen))

    async def watch_unsub(self, watch_id: str, ids: Sequence[Ref] | None) -> None:
        await trio.lowlevel.checkpoint()
        keys = None if ids is None else [ref[0] for ref in ids if isinstance(ref, Ref)]
        self._watches.unsub(watch_id, keys)

    async def watch_poll(self, watch_id: str, refresh: bool, now: float) -> list[dict[str, Value]]:
        await trio.lowlevel.checkpoint()
        keys = self._watches.poll(watch_id, refresh, now)
        get = self._index.get
        return [rec for rec in map(get, keys) if rec is not None]

    # -- users (UserStore) -----------------------------------------------------------------

    async def get_user(self, username: str) -> User | None:
        await trio.lowlevel.checkpoint()
        return self._users.get(username)

    async def list_users(self) -> list[User]:
        await trio.lowlevel.checkpoint()
        return [self._users[name] for name in sorted(self._users)]

    async def create_user(self, user: User) -> None:
        async with self._write_lock:
            if user.username in self._users:
                raise UserExistsError(f"user {user.username} exists")
            with trio.CancelScope(shield=True):
                await self._store_user(user.username, user)
                self._users[user.username] = user

    async def update_user(self, user: User) -> None:
        async with self._write_lock:
            if user.username not in self._users:
                raise UnknownUserError(f"no user {user.username}")
            with trio.CancelScope(shield=True):
                await self._store_user(user.username, user)
                self._users[user.username] = user

    async def delete_user(self, username: str) -> bool:
        async with self._write_lock:
            if username not in self._users:
                return False
            with trio.CancelScope(shield=True):
                await self._store_user(username, None)
                del self._users[username]
            return True

    async def count_admins(self) -> int:
        await trio.lowlevel.checkpoint()
        return sum(1 for u in self._users.values() if u.enabled and u.role is Role.ADMIN)

    # -- bearer tokens (TokenStore) --------------------------------------------------------

    async def save_token(self, record: TokenRecord) -> None:
        async with self._write_lock:
            with trio.CancelScope(shield=True):
                await self._store_tokens((record,), ())
                self._tokens[record.token_hash] = record

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        await trio.lowlevel.checkpoint()
        return self._tokens.get(token_hash)

    async def renew_token(self, token_hash: str, expires: float) -> None:
        async with self._write_lock:
            record = self._tokens.get(token_hash)
            if record is None:
                return
            renewed = replace(record, expires=expires)
            with trio.CancelScope(shield=True):
                await self._store_tokens((renewed,), ())
                self._tokens[token_hash] = renewed

    async def _drop_tokens(self, hashes: list[str]) -> int:
        # Called with the write lock held.
        if not hashes:
            await trio.lowlevel.checkpoint()
            return 0
        with trio.CancelScope(shield=True):
            await self._store_tokens((), hashes)
            for token_hash in hashes:
                del self._tokens[token_hash]
        return len(hashes)

    async def revoke_token(self, token_hash: str) -> bool:
        async with self._write_lock:
            hashes = [token_hash] if token_hash in self._tokens else []
            return await self._drop_tokens(hashes) > 0

    async def revoke_user_tokens(self, username: str) -> int:
        async with self._write_lock:
            hashes = [h for h, r in self._tokens.items() if r.username == username]
            return await self._drop_tokens(hashes)

    async def count_tokens(self) -> int:
        await trio.lowlevel.checkpoint()
        return len(self._tokens)

    async def purge_expired_tokens(self, now: float) -> int:
        async with self._write_lock:
            hashes = [h for h, r in self._tokens.items() if r.expired(now)]
            return await self._drop_tokens(hashes)

    async def evict_soonest_tokens(self, n: int) -> int:
        async with self._write_lock:
            if n <= 0:
                return await self._drop_tokens([])
            soonest = heapq.nsmallest(n, self._tokens.values(), key=lambda r: r.expires)
            return await self._drop_tokens([r.token_hash for r in soonest])
