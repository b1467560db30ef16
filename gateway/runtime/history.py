"""The history buffer: samples collected by the runners, written to the store in batches.

History is written in batches because the store may live on an SD card: one ``his_write`` per
point every few seconds instead of one per sample. :class:`HisBuffer` is shared by every
connection runner of a gateway:

- :meth:`~HisBuffer.add` (sync, from a runner) queues a sample; when ``max_samples`` are
  queued the flusher is woken at once, so a burst never waits for the interval;
- :meth:`~HisBuffer.run` flushes every ``flush_interval`` seconds (and on a wake-up);
- :meth:`~HisBuffer.flush` writes everything queued. Samples the store refused for a reason
  that may pass (the store is busy, a disk error) are put back and retried at the next flush;
  samples of a point the store no longer holds are dropped and counted, as nothing will ever
  take them. So that a store that keeps failing cannot eat the memory, at most ``max_queued``
  samples are held; beyond that the oldest sample of the point waiting longest goes, counted in
  ``dropped``.

The store's contract writes one point per call, so a flush makes one ``his_write`` (one
transaction, one fsync in SQLite) per point that has samples. That batches in time, not across
points: with thousands of ``his`` points a multi-point write in the store would be the next
step for an SD card.

Nothing is lost on shutdown: the supervisor calls :meth:`~HisBuffer.flush` one last time,
shielded and under a deadline, after every runner has stopped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import trio

from gateway.haystack.kinds import Ref
from gateway.points.hiscollect import HisSample
from gateway.runtime.wakes import Wakeup
from gateway.storage.base import RecordStore, UnknownIdError

__all__ = ["HisBuffer", "HisBufferStatistics"]

log = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL: Final = 5.0
DEFAULT_MAX_SAMPLES: Final = 5000
DEFAULT_MAX_QUEUED: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class HisBufferStatistics:
    """Counters of a HisBuffer (``statistics()``, trio style)."""

    queued: int
    written: int
    flushes: int
    failed_flushes: int
    dropped: int


class HisBuffer:
    """History samples waiting for the store, per point."""

    def __init__(
        self,
        store: RecordStore,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        if flush_interval <= 0 or max_samples < 1 or max_queued < max_samples:
            raise ValueError("need flush_interval > 0 and 1 <= max_samples <= max_queued")
        self._store = store
        self.flush_interval = flush_interval
        self.max_samples = max_samples
        self.max_queued = max_queued
        self._queue: dict[Ref, list[HisSample]] = {}
        self._order: deque[Ref] = deque()  # points in the order their first sample came
        self._count = 0
        self._wakeup = Wakeup()
        self._lock = trio.Lock()
        self._written = 0
        self._flushes = 0
        self._failed = 0
        self._dropped = 0

    def __len__(self) -> int:
        return self._count

    def statistics(self) -> HisBufferStatistics:
        """Samples queued, written, flushes made and failed, samples dropped."""
        return HisBufferStatistics(
            self._count, self._written, self._flushes, self._failed, self._dropped
        )

    def add(self, id: Ref, sample: HisSample) -> None:
        """Queue one sample of point ``id``."""
        samples = self._queue.get(id)
        if samples is None:
            samples = self._queue[id] = []
            self._order.append(id)
        samples.append(sample)
        self._count += 1
        if self._count > self.max_queued:
            self._drop_oldest()
        if self._count >= self.max_samples:
            self._wakeup.set()

    def pending(self, id: Ref) -> list[HisSample]:
        """The samples of ``id`` not yet written (a copy)."""
        return list(self._queue.get(id, ()))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush every ``flush_interval`` seconds, or sooner when ``max_samples`` are queued."""
        task_status.started()
        while True:
            await self._wakeup.wait_until(trio.current_time() + self.flush_interval)
            await self.flush()

    async def flush(self) -> int:
        """Write every queued sample; returns how many were written."""
        async with self._lock:
            if not self._count:
                return 0
            batch, self._queue = self._queue, {}
            self._order = deque()
            self._count = 0
            self._flushes += 1
            written = 0
            retry: list[tuple[Ref, list[HisSample]]] = []
            items = list(batch.items())
            for i, (id, samples) in enumerate(items):
                try:
                    await self._store.his_write(id, [(s.ts, s.val) for s in samples])
                except UnknownIdError:
                    log.warning("history of %s dropped: the point no longer exists", id)
                    self._dropped += len(samples)
                except trio.Cancelled:
                    # Keep what was not written yet: the final flush picks it up.
                    self._requeue([*retry, *items[i:]])
                    raise
                except Exception:
                    log.exception("history of %s not written; retrying at the next flush", id)
                    retry.append((id, samples))
                else:
                    written += len(samples)
            if retry:
                self._failed += 1
                self._requeue(retry)
            self._written += written
            return written

    def _requeue(self, items: Iterable[tuple[Ref, list[HisSample]]]) -> None:
        # Older samples go in front of anything queued meanwhile.
        for id, samples in items:
            newer = self._queue.get(id)
            if newer is None:
                self._order.appendleft(id)
            self._queue[id] = samples + (newer or [])
            self._count += len(samples)
        while self._count > self.max_queued:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        while self._order:
            id = self._order[0]
            samples = self._queue.get(id)
            if not samples:
                self._order.popleft()
                self._queue.pop(id, None)
                continue
            samples.pop(0)
            self._count -= 1
            self._dropped += 1
            if not samples:
                self._order.popleft()
                del self._queue[id]
            return
