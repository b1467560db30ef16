"""The write side of a connection runner: priority-array winners out to the device.

Each writable, bound point has a :class:`~gateway.points.writes.WriteThrottle` (in its
:class:`~gateway.runtime.pointstate.PointState`); the throttle decides *when* to write, this
module only carries the decisions out:

- :meth:`PointWriter.effective_changed` (sync, called from the PointWrites listener) and
  :meth:`PointWriter.start` feed the throttles the effective value; :meth:`PointWriter.opened`
  tells them the connection opened (writeOnOpen, owed writes);
- :meth:`PointWriter.run` is the write loop of one open session: it asks the throttles of the
  points that changed or whose wake-up time came (never a scan of every point) and calls
  ``driver.write`` one write at a time, each under the call timeout and shielded from
  cancellation, so a write that has started always finishes and reports;
- the outcome goes back to the throttle (``succeeded``/``failed``: a failed write is owed again
  after writeRetryTime, never dropped) and into the point's ``writeStatus``/``writeErr``; a
  ``DownError`` also ends the session (the runner reconnects, and owed writes go on reopen).

The latency from a change of effective value to the device's acknowledgement is kept for
``statistics()``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

import trio

from drivers.base import DownError, Driver, DriverError, FaultError
from gateway.haystack.kinds import Ref, Value
from gateway.points.priority import DEFAULT_LEVEL
from gateway.points.writes import WriteCmd, WriteReason
from gateway.runtime.pointstate import PointState, error_text, write_state_of
from gateway.runtime.wakes import WakeQueue, Wakeup

__all__ = ["LATENCY_SAMPLES", "EffectiveValues", "PointWriter"]

log = logging.getLogger(__name__)

#: Latencies kept for statistics (change of effective value -> device acknowledged).
LATENCY_SAMPLES: Final = 4096

#: The effective value of a point's priority array now, or None when it was never written.
EffectiveValues = Callable[[Ref], "tuple[Value, int] | None"]

_TIMED_REASONS: Final = (WriteReason.CHANGE, WriteReason.MIN_TIME)


class PointWriter:
    """Sends the writes of one connector's points (see the module docstring)."""

    def __init__(
        self,
        label: str,
        points: Iterable[PointState],
        *,
        call_timeout: float,
        publish: Callable[[PointState], Awaitable[None]],
        lose: Callable[[str], None],
        worked: Callable[[], None],
    ) -> None:
        self._label = label
        self._points = {st.id: st for st in points if st.throttle is not None}
        self._call_timeout = call_timeout
        self._publish = publish
        self._lose = lose
        self._worked = worked
        self._dirty: dict[Ref, None] = {}
        self._wakes: WakeQueue[Ref] = WakeQueue()
        self._wakeup = Wakeup()
        self.writes = 0
        self.failures = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def __len__(self) -> int:
        return len(self._points)

    def start(self, effective: EffectiveValues | None, now: float) -> None:
        """Give every throttle the effective value at start (writeOnStart decides)."""
        for st in self._points.values():
            assert st.throttle is not None
            if st.throttle.desired is not None:
                continue  # a change arrived before start; it counts as the start
            current = effective(st.id) if effective is not None else None
            val, level = current if current is not None else (None, DEFAULT_LEVEL)
            st.throttle = st.throttle.evaluate(val, level, now)
            self._dirty[st.id] = None

    def effective_changed(self, id: Ref, val: Value, level: int) -> None:
        """The winner of point ``id``'s priority array is now ``(val, level)`` (sync)."""
        st = self._points.get(id)
        if st is None or st.throttle is None:
            return
        now = trio.current_time()
        st.throttle = st.throttle.evaluate(val, level, now)
        st.change_at = now
        self._dirty[id] = None
        self._wakeup.set()

    def opened(self, now: float) -> None:
        """The connection went from closed to open (writeOnOpen, owed writes go now)."""
        for st in self._points.values():
            assert st.throttle is not None
            st.throttle = st.throttle.opened(now)
            self._dirty[st.id] = None

    async def run(self, driver: Driver) -> None:
        """The write loop of one open session (ends by cancellation)."""
        while True:
            now = trio.current_time()
            due = list(self._dirty)
            self._dirty.clear()
            due.extend(self._wakes.pop_due(now))
            for pid in due:
                # A write that found the link down has ended the session: stop here, before
                # a throttle hands out (and would wait for) a write that cannot be sent.
                await trio.lowlevel.checkpoint_if_cancelled()
                st = self._points[pid]
                assert st.throttle is not None
                st.throttle, decision = st.throttle.due(now)
                if decision.send is not None:
                    await self._send(driver, st, decision.send)
                    now = trio.current_time()
                elif decision.wake_at is not None:
                    self._wakes.schedule(pid, decision.wake_at)
                else:
                    self._wakes.cancel(pid)
            if not self._dirty:
                await self._wakeup.wait_until(self._wakes.next_at())

    async def _send(self, driver: Driver, st: PointState, cmd: WriteCmd) -> None:
        timeout = self._call_timeout
        err: DriverError | None = None
        # Shielded: a write that has started finishes (or times out) even when the runner
        # is stopped, so the device and writeStatus agree.
        with trio.CancelScope(shield=True):
            try:
                with trio.fail_after(timeout):
                    await driver.write(st.rec, cmd.val, cmd.level)
            except DriverError as exc:
                err = exc
            except trio.TooSlowError:
                err = DownError(f"write timed out after {timeout:g}s")
            except TimeoutError as exc:
                err = DownError(f"write timed out: {error_text(exc)}")
            except Exception as exc:
                log.exception("%s: driver.write failed", self._label)
                err = FaultError(f"{type(exc).__name__}: {exc}")
        now = trio.current_time()
        assert st.throttle is not None
        self.writes += 1
        if err is None:
            st.throttle = st.throttle.succeeded(now)
            if st.change_at is not None and cmd.reason in _TIMED_REASONS:
                self.latencies.append(now - st.change_at)
                st.change_at = None
            self._worked()
        else:
            self.failures += 1
            st.throttle = st.throttle.failed(now)
            log.warning("%s: write of @%s failed: %s", self._label, st.id.val, err)
        st.write_own = write_state_of(err)
        self._dirty[st.id] = None  # the throttle may owe another write already
        await self._publish(st)
        if isinstance(err, DownError):
            self._lose(error_text(err))
