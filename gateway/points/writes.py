"""When a point's effective value goes to the device: a small immutable state machine per point.

The priority array decides *what* the device should hold; this decides *when* ``driver.write``
runs, with the tuning's ``writeMinTime``, ``writeMaxTime``, ``writeOnStart``, ``writeOnOpen``
and ``writeRetryTime``. It does no I/O and keeps no clock: every call takes ``now`` (seconds on the
runner's monotonic clock) and returns a new state.

The runner's side::

    throttle = WriteThrottle.from_tuning(tuning)
    throttle = throttle.evaluate(val, level, now)      # start, and each effective change
    throttle = throttle.opened(now)                    # each closed -> open of the connector
    throttle, decision = throttle.due(now)             # while open: anything to send now?
    if decision.send: ... driver.write(point, decision.send.val, decision.send.level)
        throttle = throttle.succeeded(now) / throttle.failed(now)
    ... sleep until decision.wake_at (None: until the next event) ...

Call :meth:`~WriteThrottle.due` only while the connection is open; a write owed while it is
closed waits for :meth:`~WriteThrottle.opened`, and :func:`status.rollup_write` already shows the
connector's status in ``writeStatus`` meanwhile. A write cut short by the connection closing is
a failure: report :meth:`~WriteThrottle.failed`.

Rules:

- **start**: the first evaluation is not written (the device is trusted to hold its value)
  unless ``writeOnStart``; then it goes out as soon as the connection is open.
- **change**: a new effective value (a pointWrite, a relinquish, a timed override ending) is sent
  at once, unless it equals what the device last acknowledged and nothing is owed.
- **writeMinTime**: after a successful write, the next one waits until the window has closed;
  changes within the window are coalesced and only the latest value is sent then (reason
  ``minTime``). A value that returns to what the device holds cancels the owed write.
- **writeMaxTime**: the latest value is rewritten that long after the last successful write.
  Nothing is rewritten before the first write since start, as in Haxall.
- **writeOnOpen**: each reopen of the connection rewrites the latest value at once. The first
  open after start is the start itself and follows ``writeOnStart``. (Haxall replays only after
  a write since start; a device that rebooted while the link was down is the case this is for.)
- **failure**: a failed write is owed again after ``writeRetryTime`` (or as soon as the
  connection reopens, ``writeMinTime`` permitting), with the latest value, until it succeeds:
  never silently dropped.
- start and open writes are not held back by ``writeMinTime``; every other write is.
- one write at a time: while one is in flight, changes only update the latest value.

Values are compared by kind and value (``Number(1)`` is not ``True``); the level is part of the
command, so a new level with the same value is a change too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from gateway.haystack.kinds import Value
from gateway.points.tuning import Tuning

__all__ = ["WriteCmd", "WriteDecision", "WriteReason", "WriteThrottle"]


class WriteReason(StrEnum):
    """Why a write is sent."""

    START = "start"
    CHANGE = "change"
    MIN_TIME = "minTime"
    MAX_TIME = "maxTime"
    OPEN = "open"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class WriteCmd:
    """A ``driver.write(point, val, level)`` to make, and why."""

    val: Value
    level: int
    reason: WriteReason


@dataclass(frozen=True, slots=True)
class WriteDecision:
    """What :meth:`WriteThrottle.due` decided: a command to send now, and when to ask again."""

    send: WriteCmd | None = None
    wake_at: float | None = None


def _same(a: tuple[Value, int] | None, b: tuple[Value, int] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a[1] == b[1] and a[0].__class__ is b[0].__class__ and a[0] == b[0]


@dataclass(frozen=True, slots=True)
class WriteThrottle:
    """Write timing of one point: tuning (first five fields) and state (the rest)."""

    min_time: float | None = None
    max_time: float | None = None
    on_start: bool = False
    on_open: bool = False
    retry_time: float = 10.0
    #: The latest effective ``(val, level)``; None before the first evaluation.
    desired: tuple[Value, int] | None = None
    #: What the device last acknowledged; None when nothing was written since start.
    written: tuple[Value, int] | None = None
    last_ok: float | None = None
    #: A write is owed, and why.
    owed: WriteReason | None = None
    #: The owed write ignores ``writeMinTime`` (start, open).
    forced: bool = False
    retry_at: float | None = None
    in_flight: WriteCmd | None = None
    failures: int = 0
    opens: int = 0

    @classmethod
    def from_tuning(cls, tuning: Tuning) -> WriteThrottle:
        """A fresh state machine with the write settings of ``tuning``."""
        return cls().retuned(tuning)

    def retuned(self, tuning: Tuning) -> WriteThrottle:
        """The same state with new tuning (the tuning record changed at run time)."""
        return replace(
            self,
            min_time=tuning.write_min_time,
            max_time=tuning.write_max_time,
            on_start=tuning.write_on_start,
            on_open=tuning.write_on_open,
            retry_time=tuning.write_retry_time,
        )

    # -- events ---------------------------------------------------------------------------

    def evaluate(self, val: Value, level: int, now: float) -> WriteThrottle:
        """The effective value is ``(val, level)`` at ``now`` (the first call is the start)."""
        new = (val, level)
        if self.desired is None:
            if self.on_start:
                return replace(self, desired=new, owed=WriteReason.START, forced=True)
            return replace(self, desired=new)
        if _same(self.desired, new):
            return self
        state = replace(self, desired=new)
        if state.in_flight is not None or state.owed not in (
            None,
            WriteReason.CHANGE,
            WriteReason.MIN_TIME,
        ):
            # In flight: succeeded()/failed() look at the latest value. Start, open, maxTime
            # and retry writes stay owed and will carry the latest value.
            return state
        return state._owe_change(now)

    def opened(self, now: float) -> WriteThrottle:
        """The connection went from closed to open at ``now``."""
        opens = self.opens + 1
        if self.in_flight is not None or self.desired is None:
            return replace(self, opens=opens)
        if self.on_open and self.opens > 0:
            return replace(self, opens=opens, owed=WriteReason.OPEN, forced=True, retry_at=None)
        if self.owed is not None:
            # A write owed while the link was down goes now, not after its retry delay (but
            # still no sooner than writeMinTime allows: that protects the device, not the link).
            return replace(self, opens=opens, retry_at=None)
        return replace(self, opens=opens)

    def succeeded(self, now: float) -> WriteThrottle:
        """The write in flight succeeded at ``now``."""
        cmd = self._in_flight()
        state = replace(
            self,
            in_flight=None,
            written=(cmd.val, cmd.level),
            last_ok=now,
            failures=0,
            retry_at=None,
        )
        return state._owe_change(now)

    def failed(self, now: float) -> WriteThrottle:
        """The write in flight failed at ``now``; it is owed again after ``retry_time``."""
        self._in_flight()
        return replace(
            self,
            in_flight=None,
            owed=WriteReason.RETRY,
            forced=False,
            retry_at=now + self.retry_time,
            failures=self.failures + 1,
        )

    # -- the decision ---------------------------------------------------------------------

    def due(self, now: float) -> tuple[WriteThrottle, WriteDecision]:
        """What to send at ``now`` (the state then has it in flight) and when to ask again."""
        if self.in_flight is not None or self.desired is None:
            return self, WriteDecision()
        owed = self.owed
        if owed is None:
            if self.max_time is None or self.last_ok is None:
                return self, WriteDecision()
            rewrite_at = self.last_ok + self.max_time
            if now < rewrite_at:
                return self, WriteDecision(wake_at=rewrite_at)
            owed = WriteReason.MAX_TIME
        gate = self._gate()
        if gate is not None and now < gate:
            return replace(self, owed=owed), WriteDecision(wake_at=gate)
        val, level = self.desired
        cmd = WriteCmd(val, level, owed)
        state = replace(self, owed=None, forced=False, retry_at=None, in_flight=cmd)
        return state, WriteDecision(send=cmd)

    # -- helpers ----------------------------------------------------------------------------

    def _gate(self) -> float | None:
        """The earliest time the owed write may go (None: at once)."""
        if self.forced:
            return None
        gates = []
        if self.retry_at is not None:
            gates.append(self.retry_at)
        if self.min_time is not None and self.last_ok is not None:
            gates.append(self.last_ok + self.min_time)
        return max(gates) if gates else None

    def _owe_change(self, now: float) -> WriteThrottle:
        """Owe a write if the latest value differs from what the device holds."""
        if _same(self.desired, self.written):
            return replace(self, owed=None, forced=False)
        reason = WriteReason.CHANGE
        gate = self._gate()
        if gate is not None and now < gate:
            reason = WriteReason.MIN_TIME
        return replace(self, owed=reason)

    def _in_flight(self) -> WriteCmd:
        if self.in_flight is None:
            raise ValueError("no write is in flight")
        return self.in_flight
