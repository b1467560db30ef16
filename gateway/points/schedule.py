"""Poll and reconnect timing for a connection runner: pure decisions, times in, times out.

Times here are seconds on the runner's monotonic clock (``trio.current_time()``), never wall
clock: a clock step must not make a runner poll in a burst or stop polling.

Poll buckets (Haxall's model): points with the same ``pollTime`` are read together, one bucket
per period. Each bucket's first poll is put at a random offset within its first period, so a
gateway that starts (or a connector that reopens) with many connectors does not send every
request in the same instant. After a poll, :meth:`PollBucket.advance` moves the bucket to the
next slot of its own grid (``first + k * pollTime``); slots missed by a slow poll are skipped and
counted, never caught up in a burst.

Reconnect backoff (:class:`Backoff`): after the n-th failed open in a row the next attempt waits
``min(cap, base * factor ** (n - 1))`` scaled by a random factor in ``[1 - jitter, 1]`` (jitter
0.5 by default, so the wait is at least half the step and never beyond it). Jitter spreads the
reconnects of many gateways after a shared outage; the lower bound keeps one runner from
hammering a device. :meth:`Backoff.ready` is False until the wait is over, so a runner makes at
most one attempt per step, and a success resets the sequence.

Randomness comes in as an argument (anything with ``random() -> float`` in ``[0, 1)``, such as
``random.Random``), so tests and simulations are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from gateway.points.tuning import Tuning

__all__ = ["Backoff", "PollBucket", "RandomSource", "poll_buckets"]

K = TypeVar("K", bound=Hashable)


class RandomSource(Protocol):
    """A source of uniform floats in ``[0, 1)`` (``random.Random`` is one)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class PollBucket(Generic[K]):
    """The points polled together every ``poll_time`` seconds, and when the next poll is due."""

    poll_time: float
    points: tuple[K, ...]
    next_poll: float

    def due(self, now: float) -> bool:
        """True when the bucket should be polled at ``now``."""
        return now >= self.next_poll

    def advance(self, now: float) -> tuple[PollBucket[K], int]:
        """The bucket after a poll that finished at ``now``, and how many slots were skipped.

        The next poll is the first slot of the bucket's grid after ``now``: on time when the
        poll took less than a period, else the next slot with the missed ones skipped.
        """
        nxt = self.next_poll + self.poll_time
        skipped = 0
        if nxt <= now:
            skipped = math.floor((now - nxt) / self.poll_time) + 1
            nxt += skipped * self.poll_time
        return PollBucket(self.poll_time, self.points, nxt), skipped

    def with_points(self, points: Iterable[K]) -> PollBucket[K]:
        """The same slot with another set of points (points added or removed at run time)."""
        return PollBucket(self.poll_time, tuple(points), self.next_poll)


def poll_buckets(
    tunings: Mapping[K, Tuning], *, now: float, rng: RandomSource
) -> list[PollBucket[K]]:
    """Group points by ``pollTime``; each bucket's first poll is randomly placed in
    ``[now, now + pollTime)``. Buckets come shortest period first; points keep their order.
    """
    groups: dict[float, list[K]] = {}
    for point, tuning in tunings.items():
        groups.setdefault(tuning.poll_time, []).append(point)
    return [
        PollBucket(period, tuple(groups[period]), now + rng.random() * period)
        for period in sorted(groups)
    ]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential reconnect backoff with jitter; immutable, one instance per connector."""

    base: float = 10.0
    cap: float = 300.0
    factor: float = 2.0
    jitter: float = 0.5
    failures: int = 0
    next_attempt: float = -math.inf

    def __post_init__(self) -> None:
        if not (0 < self.base <= self.cap) or self.factor < 1 or not (0 <= self.jitter <= 1):
            raise ValueError(
                "backoff needs 0 < base <= cap, factor >= 1 and 0 <= jitter <= 1, got "
                f"base={self.base} cap={self.cap} factor={self.factor} jitter={self.jitter}"
            )

    @classmethod
    def from_tuning(cls, tuning: Tuning) -> Backoff:
        """The backoff of a connector's tuning (``connOpenRetryFreq``, ``connOpenRetryMax``)."""
        return cls(base=tuning.open_retry_base, cap=tuning.open_retry_max)

    def step(self, failures: int) -> float:
        """The longest wait after ``failures`` failures in a row (``>= 1``)."""
        # min() before the power would still overflow for a large count; cap the exponent.
        exponent = min(failures - 1, 64)
        return min(self.cap, self.base * self.factor**exponent)

    def ready(self, now: float) -> bool:
        """True when an attempt may be made at ``now``."""
        return now >= self.next_attempt

    def failed(self, now: float, rng: RandomSource) -> Backoff:
        """The state after a failed attempt at ``now``: the next attempt waits one more step."""
        failures = self.failures + 1
        step = self.step(failures)
        wait = step * (1.0 - self.jitter * rng.random())
        return Backoff(self.base, self.cap, self.factor, self.jitter, failures, now + wait)

    def succeeded(self) -> Backoff:
        """The state after a successful attempt: the next failure starts again at ``base``."""
        return Backoff(self.base, self.cap, self.factor, self.jitter)
