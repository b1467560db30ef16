"""``SQLiteAdapter``: the appliance's store, one SQLite file (``/var/lib/hs-gateway/gateway.db``).

Records, priority arrays, users and tokens are written through to SQLite and also held in
memory (:mod:`gateway.storage.common`), so every read but history is answered without touching
the disk; history lives on disk only (:mod:`gateway.storage.sqlite_his`). Runtime tags
(``RUNTIME_TAGS``) and watches are never written: after a restart the drivers set the runtime
tags again and clients re-subscribe their watches.

Durability: WAL journal with ``synchronous=FULL`` by default. In WAL mode, ``NORMAL`` skips the
fsync of the WAL on each commit, so a power cut (not a crash of the process) may roll back the
last transactions *after* the HTTP response acknowledged them; a priority-array write that a
supervisory system was told succeeded would silently vanish. ``FULL`` syncs the WAL on every
commit. Its cost is one fsync per *write request* (a pointWrite, a hisWrite batch, a record or
user change, a token renewal at most once a minute per session), never per poll, since runtime
tags are not written, which an SD card easily affords. ``synchronous="NORMAL"`` is available
where that trade is wanted.

Threads: one connection (``check_same_thread=False``) is used by one worker thread at a time:
every blocking call goes through ``trio.to_thread.run_sync`` with this adapter's
``trio.CapacityLimiter(1)``. Every mutating method commits before it returns.

Locking: by default the database is opened with ``locking_mode=EXCLUSIVE``: the in-memory copy
is only valid while no one else writes the file, so a second gateway process on the same file
fails at ``open`` ("database is locked") instead of corrupting that assumption. Inspect the
file with the ``sqlite3`` shell only while the gateway is stopped (or pass
``exclusive=False``). With ``exclusive=False`` bearer tokens are read from and revoked in the
file itself, so the worker processes of one server share their sessions (records are still
cached per process: one writer of records at a time).

Schema: :mod:`gateway.storage.sqlite_schema` (migrations run at ``open``).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Final, Literal, TypeVar

import trio

from gateway.auth.roles import Role
from gateway.auth.scram import ScramCredentials
from gateway.auth.tokens import TokenRecord
from gateway.auth.users import User
from gateway.haystack.codecs.zinc import decode_val, encode_val
from gateway.haystack.errors import HaystackError
from gateway.haystack.kinds import Value
from gateway.storage.base import RUNTIME_TAGS, HisSample, StorageError
from gateway.storage.common import IndexedAdapter
from gateway.storage.hisblocks import DamagedBlockError
from gateway.storage.hiscolumns import HisColumns
from gateway.storage.history import PreparedSamples
from gateway.storage.sqlite_his import SQLiteHistory
from gateway.storage.sqlite_schema import migrate, transaction
from gateway.storage.watches import DEFAULT_MAX_LEASE

__all__ = ["SQLiteAdapter"]

_T = TypeVar("_T")
Synchronous = Literal["FULL", "NORMAL", "EXTRA"]
# The WAL file is truncated to this after a checkpoint (it may grow past it in between).
_JOURNAL_SIZE_LIMIT: Final = 4 * 1024 * 1024


class SQLiteAdapter(IndexedAdapter):
    """A ``StorageAdapter`` on one SQLite file.

    ``his_retention_days``: delete samples older than this many days. ``his_max_bytes``: keep
    the database file at or under this many bytes by deleting the oldest samples (see
    :mod:`gateway.storage.sqlite_his`). ``retention_interval``: how often (seconds) retention by
    age runs while history is written. ``lock_timeout``: how long ``open`` waits for another
    process to release the file (seconds). ``clock``: wall-clock seconds, for retention by age.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        his_retention_days: float | None = None,
        his_max_bytes: int | None = None,
        retention_interval: float = 600.0,
        synchronous: Synchronous = "FULL",
        exclusive: bool = True,
        lock_timeout: float = 5.0,
        max_lease: float = DEFAULT_MAX_LEASE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(max_lease=max_lease)
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        if his_max_bytes is not None and his_max_bytes < 64 * 1024:
            raise ValueError("his_max_bytes must be at least 64 KiB")
        if his_retention_days is not None and not his_retention_days > 0:
            raise ValueError("his_retention_days must be positive")
        self.path = os.fspath(path)
        self._retention_days = his_retention_days
        self._max_bytes = his_max_bytes
        self._retention_interval = retention_interval
        self._synchronous = synchronous
        self._exclusive = exclusive
        self._lock_timeout = lock_timeout
        self._clock = clock
        self._limiter = trio.CapacityLimiter(1)
        self._con: sqlite3.Connection | None = None
        self._his: SQLiteHistory | None = None

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        """Run ``fn(*args)`` in the worker thread that owns the connection."""
        if self._con is None:
            raise StorageError("the SQLite store is not open")
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StorageError(f"database error: {exc}") from exc
        except DamagedBlockError as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._con is not None
        return self._con

    @property
    def his(self) -> SQLiteHistory:
        """The history tables (use only through ``_run``; for retention and diagnostics)."""
        assert self._his is not None
        return self._his

    # -- open / close ----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True between ``open`` and ``aclose``."""
        return self._con is not None

    async def open(self) -> None:
        if self._con is not None:
            raise StorageError("the SQLite store is already open")
        try:
            await trio.to_thread.run_sync(self._open_sync, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc

    def _open_sync(self) -> None:
        con = sqlite3.connect(
            self.path, timeout=self._lock_timeout, check_same_thread=False, isolation_level=None
        )
        try:
            if self._exclusive:
                con.execute("PRAGMA locking_mode = EXCLUSIVE")
            # Takes effect only on a new database (before its first table): freed pages can
            # then be given back to the file system, so retention by size shrinks the file.
            con.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"{self.path}: cannot use the WAL journal (got {mode})")
            con.execute(f"PRAGMA synchronous = {self._synchronous}")
            con.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
            migrate(con)
            his = SQLiteHistory(
                con,
                retention_days=self._retention_days,
                max_bytes=self._max_bytes,
                retention_interval=self._retention_interval,
                clock=self._clock,
            )
            his.load()
            self._load(con)
            if self._retention_days is not None:
                his.prune_age(self._clock())
            if self._max_bytes is not None and his.size_bytes() > self._max_bytes:
                his.prune_to_size(int(self._max_bytes * 0.9))
        except BaseException:
            con.close()
            raise
        self._con, self._his = con, his

    def _load(self, con: sqlite3.Connection) -> None:
        # A generator, not a list: prepare_add copies each decoded record at once, so its
        # temporaries are freed before the next one is decoded. Decoding them all first left
        # ~15 MiB of freed blocks scattered among the kept ones (10,000 points), which the
        # allocator could never give back: the process stayed that much bigger.
        records = (_decode_tags(rid, text) for rid, text in con.execute("SELECT id, tags FROM rec"))
        self._index.apply_add(self._index.prepare_add(records))
        for point, text in con.execute("SELECT point, levels FROM priority_array"):
            levels = decode_val(text)
            if isinstance(levels, list):
                self._arrays[point] = [dict(level) for level in levels if isinstance(level, dict)]
        for name, role, enabled, creds, created, updated in con.execute(
            "SELECT username, role, enabled, credentials, created, updated FROM user"
        ):
            self._users[name] = User(
                name, Role(role), bool(enabled), ScramCredentials.from_text(creds), created, updated
            )
        for row in con.execute(
            "SELECT token_hash, username, role, created, expires, scheme FROM token"
        ):
            record = TokenRecord(row[0], row[1], Role(row[2]), row[3], row[4], row[5])
            self._tokens[record.token_hash] = record

    async def aclose(self) -> None:
        if self._con is None:
            return
        con, self._con = self._con, None
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(con.close, limiter=self._limiter)

    # -- write-through hooks ---------------------------------------------------------------

    async def _store_records(
        self, upserts: Sequence[Mapping[str, Value]], removed: Sequence[str]
    ) -> None:
        await self._run(self._store_records_sync, upserts, removed)

    def _store_records_sync(
        self, upserts: Sequence[Mapping[str, Value]], removed: Sequence[str]
    ) -> None:
        # Encode everything before the transaction: a value Zinc cannot write changes nothing.
        rows = [(rec["id"][0], _encode_tags(rec)) for rec in upserts]
        con = self._db
        gone: list[str] = []
        with transaction(con):
            con.executemany(
                "INSERT INTO rec (id, tags) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET tags = excluded.tags",
                rows,
            )
            if removed:
                keys = [(key,) for key in removed]
                con.executemany("DELETE FROM rec WHERE id = ?", keys)
                con.executemany("DELETE FROM priority_array WHERE point = ?", keys)
                gone = self.his.delete_points(removed)
        self.his.forget(gone)

    async def _store_array(self, key: str, levels: list[dict[str, Value]] | None) -> None:
        await self._run(self._store_array_sync, key, levels)

    def _store_array_sync(self, key: str, levels: list[dict[str, Value]] | None) -> None:
        con = self._db
        if levels is None:
            with transaction(con):
                con.execute("DELETE FROM priority_array WHERE point = ?", (key,))
            return
        text = _encode(levels, "priority array")
        with transaction(con):
            con.execute(
                "INSERT INTO priority_array (point, levels) VALUES (?, ?)"
                " ON CONFLICT (point) DO UPDATE SET levels = excluded.levels",
                (key, text),
            )

    async def _store_user(self, username: str, user: User | None) -> None:
        await self._run(self._store_user_sync, username, user)

    def _store_user_sync(self, username: str, user: User | None) -> None:
        con = self._db
        with transaction(con):
            if user is None:
                con.execute("DELETE FROM user WHERE username = ?", (username,))
            else:
                con.execute(
                    "INSERT OR REPLACE INTO user"
                    " (username, role, enabled, credentials, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        user.username,
                        str(user.role),
                        int(user.enabled),
                        user.credentials.to_text(),
                        user.created,
                        user.updated,
                    ),
                )

    async def _store_tokens(self, saved: Sequence[TokenRecord], removed: Sequence[str]) -> None:
        await self._run(self._store_tokens_sync, saved, removed)

    def _store_tokens_sync(self, saved: Sequence[TokenRecord], removed: Sequence[str]) -> None:
        con = self._db
        with transaction(con):
            con.executemany(
                "INSERT OR REPLACE INTO token"
                " (token_hash, username, role, created, expires, scheme)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (r.token_hash, r.username, str(r.role), r.created, r.expires, r.scheme)
                    for r in saved
                ],
            )
            con.executemany("DELETE FROM token WHERE token_hash = ?", [(h,) for h in removed])

    # -- bearer tokens shared between processes -------------------------------------------
    #
    # With ``exclusive=False`` several processes (workers of one server) may use the file:
    # tokens are then looked up and changed in the database itself, so a token issued by one
    # process is honoured by the others and a revocation (close, a password change) reaches
    # all of them at once. Exclusive (the appliance: one process), the memory copy answers.

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        if self._exclusive:
            return await super().get_token(token_hash)
        record = await self._run(self._token_row_sync, token_hash)
        if record is None:
            self._tokens.pop(token_hash, None)
        else:
            self._tokens[token_hash] = record
        return record

    def _token_row_sync(self, token_hash: str) -> TokenRecord | None:
        row = self._db.execute(
            "SELECT token_hash, username, role, created, expires, scheme FROM token"
            " WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        if row is None:
            return None
        return TokenRecord(row[0], row[1], Role(row[2]), row[3], row[4], row[5])

    async def renew_token(self, token_hash: str, expires: float) -> None:
        if self._exclusive:
            await super().renew_token(token_hash, expires)
            return
        # Only a row that is still there is renewed: another process may have revoked the
        # token since it was read, and writing the record back would bring it back to life.
        async with self._write_lock:
            with trio.CancelScope(shield=True):
                renewed = await self._run(self._renew_token_sync, token_hash, expires)
            record = self._tokens.get(token_hash)
            if not renewed:
                self._tokens.pop(token_hash, None)
            elif record is not None:
                self._tokens[token_hash] = replace(record, expires=expires)

    def _renew_token_sync(self, token_hash: str, expires: float) -> bool:
        with transaction(self._db):
            cursor = self._db.execute(
                "UPDATE token SET expires = ? WHERE token_hash = ?", (expires, token_hash)
            )
            return cursor.rowcount > 0

    async def revoke_token(self, token_hash: str) -> bool:
        if self._exclusive:
            return await super().revoke_token(token_hash)
        async with self._write_lock:
            self._tokens.pop(token_hash, None)
            with trio.CancelScope(shield=True):
                count = await self._run(self._delete_tokens_sync, "token_hash", token_hash)
        return count > 0

    async def revoke_user_tokens(self, username: str) -> int:
        if self._exclusive:
            return await super().revoke_user_tokens(username)
        async with self._write_lock:
            for token_hash in [h for h, r in self._tokens.items() if r.username == username]:
                del self._tokens[token_hash]
            with trio.CancelScope(shield=True):
                count = await self._run(self._delete_tokens_sync, "username", username)
        return count

    def _delete_tokens_sync(self, column: Literal["token_hash", "username"], value: str) -> int:
        with transaction(self._db):
            return self._db.execute(f"DELETE FROM token WHERE {column} = ?", (value,)).rowcount

    async def count_tokens(self) -> int:
        if self._exclusive:
            return await super().count_tokens()
        count: int = await self._run(
            lambda: self._db.execute("SELECT count(*) FROM token").fetchone()[0]
        )
        return count

    # -- history ---------------------------------------------------------------------------

    async def _his_write(self, key: str, batch: PreparedSamples) -> None:
        await self._run(self.his.write, key, batch)

    async def _his_read(self, key: str, start: int, end: int) -> list[HisSample]:
        return await self._run(self.his.read, key, start, end)

    async def _his_columns(self, key: str, start: int, end: int) -> HisColumns | None:
        return await self._run(self.his.read_columns, key, start, end)

    async def _his_span(self, key: str) -> tuple[dt.datetime, dt.datetime] | None:
        return await self._run(self.his.span, key)

    async def enforce_retention(self) -> int:
        """Apply retention by age and by size now; how many samples were deleted.

        The adapter does this by itself on open and when history is written; a runtime may
        call it periodically as well (for instance when nothing writes history).
        """
        async with self._his_lock:
            with trio.CancelScope(shield=True):
                deleted = await self._run(self._enforce_retention_sync)
        return deleted

    def _enforce_retention_sync(self) -> int:
        deleted = self.his.prune_age(self._clock())
        if self._max_bytes is not None and self.his.size_bytes() > self._max_bytes:
            deleted += self.his.prune_to_size(int(self._max_bytes * 0.9))
        return deleted

    async def his_sample_count(self) -> int:
        """How many samples the database holds (scans the history index)."""
        return await self._run(self.his.count)

    async def size_bytes(self) -> int:
        """The database size as retention measures it (``page_count * page_size``)."""
        return await self._run(self.his.size_bytes)


def _encode(val: Value, what: str) -> str:
    try:
        return encode_val(val)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"cannot store this {what}: {exc}") from None


def _encode_tags(rec: Mapping[str, Value]) -> str:
    return _encode({k: v for k, v in rec.items() if k not in RUNTIME_TAGS}, "record")


def _decode_tags(rid: str, text: str) -> dict[str, Value]:
    try:
        tags = decode_val(text)
    except HaystackError as exc:
        raise StorageError(f"stored record @{rid} is unreadable: {exc}") from None
    if not isinstance(tags, dict):
        raise StorageError(f"stored record @{rid} is not a dict")
    return tags
