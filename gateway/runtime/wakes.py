"""Small timing helpers of the runners: a per-key wake-up queue and a wake-up signal.

:class:`WakeQueue` keeps, for each key (a point id), the one time it wants to be looked at
again; the latest :meth:`~WakeQueue.schedule` of a key replaces the earlier one. It is a heap
with lazy deletion, so scheduling and popping cost ``O(log n)`` however many points a
connector has, and a loop never scans every point to find the few that are due.

:class:`Wakeup` lets sync code (a listener, a poll) wake a loop that sleeps until a deadline:
``set()`` is remembered until the loop's next :meth:`~Wakeup.wait_until`, so a signal given
while the loop was busy is never lost.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Generic, TypeVar

import trio

__all__ = ["WakeQueue", "Wakeup"]

K = TypeVar("K", bound=Hashable)


class WakeQueue(Generic[K]):
    """When each key wants to be looked at next (seconds on the trio clock)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._current: dict[K, tuple[float, int]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: object) -> bool:
        return key in self._current

    def schedule(self, key: K, at: float) -> None:
        """Look at ``key`` at ``at`` (replaces an earlier schedule of the same key)."""
        old = self._current.get(key)
        if old is not None and old[0] == at:
            return
        self._seq += 1
        self._current[key] = (at, self._seq)
        heapq.heappush(self._heap, (at, self._seq, key))
        if len(self._heap) > 4 * len(self._current) + 64:
            self._compact()

    def cancel(self, key: K) -> None:
        """Forget ``key``'s schedule."""
        self._current.pop(key, None)

    def next_at(self) -> float:
        """The earliest scheduled time (``inf`` when nothing is scheduled)."""
        heap = self._heap
        while heap:
            at, seq, key = heap[0]
            if self._current.get(key) == (at, seq):
                return at
            heapq.heappop(heap)
        return math.inf

    def pop_due(self, now: float) -> list[K]:
        """The keys due at ``now``, earliest first; they are no longer scheduled."""
        due: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, seq, key = heapq.heappop(heap)
            if self._current.get(key) == (at, seq):
                del self._current[key]
                due.append(key)
        return due

    def _compact(self) -> None:
        self._heap = [(at, seq, key) for key, (at, seq) in self._current.items()]
        heapq.heapify(self._heap)


class Wakeup:
    """A wake-up signal for one waiting loop."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Wake the loop (now, or at its next wait if it is busy)."""
        self._event.set()

    @property
    def is_set(self) -> bool:
        """True when a signal is waiting to be consumed."""
        return self._event.is_set()

    async def wait_until(self, deadline: float) -> bool:
        """Sleep until signalled or until ``deadline``; True when signalled."""
        with trio.move_on_at(deadline):
            await self._event.wait()
        signalled = self._event.is_set()
        if signalled:
            self._event = trio.Event()
        return signalled
