"""``InMemoryAdapter``: the whole storage contract in memory, for tests and embedding.

Nothing survives the process: records, history, priority arrays, users and tokens live in
Python objects (see :mod:`gateway.storage.common` for how they are kept). Watches are in memory
in every adapter, so a restart closes them and clients subscribe again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import trio

from gateway.haystack.kinds import Value
from gateway.storage.base import HisSample
from gateway.storage.common import IndexedAdapter
from gateway.storage.hiscolumns import HisColumns
from gateway.storage.history import MemoryHistory, PreparedSamples
from gateway.storage.watches import DEFAULT_MAX_LEASE

__all__ = ["InMemoryAdapter"]


class InMemoryAdapter(IndexedAdapter):
    """A ``StorageAdapter`` that keeps everything in memory.

    ``records`` are added at construction (as ``add_records`` would: each needs an ``id`` Ref,
    ids must be distinct). ``max_lease`` bounds the lease a watch may ask for (seconds).
    """

    def __init__(
        self, records: Iterable[Mapping[str, Value]] = (), *, max_lease: float = DEFAULT_MAX_LEASE
    ) -> None:
        super().__init__(max_lease=max_lease)
        self._his = MemoryHistory()
        self._opened = False
        self._index.apply_add(self._index.prepare_add(records))

    @property
    def is_open(self) -> bool:
        """True between ``open`` and ``aclose`` (the data is there either way)."""
        return self._opened

    async def open(self) -> None:
        self._opened = True
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self._opened = False
        await trio.lowlevel.checkpoint()

    async def _store_records(
        self, upserts: Sequence[Mapping[str, Value]], removed: Sequence[str]
    ) -> None:
        self._his.remove(removed)
        await trio.lowlevel.checkpoint()

    async def _his_write(self, key: str, batch: PreparedSamples) -> None:
        self._his.write(key, batch)
        await trio.lowlevel.checkpoint()

    async def _his_read(self, key: str, start: int, end: int) -> list[HisSample]:
        await trio.lowlevel.checkpoint()
        return self._his.read(key, start, end)

    async def _his_columns(self, key: str, start: int, end: int) -> HisColumns | None:
        await trio.lowlevel.checkpoint()
        return self._his.columns(key, start, end)

    async def _his_span(self, key: str) -> tuple[dt.datetime, dt.datetime] | None:
        await trio.lowlevel.checkpoint()
        return self._his.span(key)
