"""The connection runner: one connector's life, the same for every protocol (Haxall's hxConn).

A :class:`ConnectorRunner` owns every state transition of one connector; its driver only turns
requests into protocol traffic. One runner is one trio task tree, so a dead or slow device
delays nothing but its own connector::

    run
    ├── timers       stale sweep and history wake-ups (interval boundaries, COV windows)
    └── connection   closed -> opening -> open -> closed ..., one attempt per backoff step
        └── session  (while open)
            ├── polls    poll buckets grouped by pollTime, first poll randomly staggered
            └── writes   the WriteThrottle of each writable point decides when to write

Rules:

- **every driver call** (open, read, write, aclose) runs under ``fail_after`` of the
  connector's ``connCallTimeout``; a call that runs out counts as ``down``;
- **errors map by type** (``err.status``): a ``DownError`` from ``read`` or ``write`` ends the
  session (the connector goes ``down`` and reconnects); per-point errors in Readings fault only
  their points; a write's ``FaultError`` is the point's ``writeStatus`` and is retried after
  ``writeRetryTime``; anything a driver raises by mistake is logged and shown as ``fault``;
- **reconnect** waits for :class:`~gateway.points.schedule.Backoff` (exponential with jitter).
  The backoff is reset only by a session that worked (a good poll or write), so a device that
  accepts the connection and then never answers still backs off step by step;
- **status** roll-up: ``connStatus``/``connErr``/``connState`` on the connector; ``curStatus``/
  ``curVal``/``curErr``, ``writeStatus``/``writeErr`` and ``hisStatus``/``hisErr`` on each point,
  computed by ``gateway.points.status`` from the point's own state and the connector's. Only
  changed tags are written, in one ``update_records`` call per read slice;
- **slices**: a bucket is read ``read_slice`` points (default 100) per ``driver.read`` call, and
  each slice's changes are stored at once. A poll of 1,000 points thus never holds the trio
  thread (or the store's write lock) for long, so a pointWrite arriving meanwhile waits for one
  slice at most, and one slice allocates too few objects to set off the garbage collector by
  itself. Measured with 10,000 points (tests/perf/bench_poll.py), one update per poll gave a
  pointWrite -> register p99 of 25-70 ms; slices of 100 bring it to about 5-12 ms;
- **writes** come from the priority arrays through :meth:`ConnectorRunner.effective_changed`
  (sync: the supervisor's PointWrites listener) and leave through one write loop per session.
  A write in flight is shielded from cancellation (bounded by the call timeout), so stopping a
  runner lets it finish and report;
- **history**: each reading (and each status change) is offered to the point's
  :class:`~gateway.points.hiscollect.HisCollect`; samples go to the shared
  :class:`~gateway.runtime.history.HisBuffer`.

Times are trio's clock (``trio.current_time()``, monotonic; virtual under ``MockClock``);
history timestamps and priority-array expiries use ``wall_clock`` (aware datetimes).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import trio

from drivers.base import DownError, Driver, DriverError, FaultError, Reading
from gateway.haystack.kinds import Ref, Value
from gateway.points.schedule import Backoff, RandomSource, poll_buckets
from gateway.points.status import (
    ConnStatus,
    CurState,
    CurStatus,
    conn_tags,
    is_stale,
)
from gateway.runtime.bindings import ConnectorBinding
from gateway.runtime.history import HisBuffer
from gateway.runtime.pointstate import (
    CONN_TAGS,
    POINT_TAGS,
    PointState,
    cur_state_of,
    error_text,
    forget,
    owned,
    publish,
)
from gateway.runtime.wakes import WakeQueue, Wakeup
from gateway.runtime.writer import EffectiveValues, PointWriter
from gateway.storage.base import RecordStore, UnknownIdError

__all__ = ["ConnectorRunner", "EffectiveValues", "RunnerStatistics"]

log = logging.getLogger(__name__)

#: Points per ``driver.read`` call: a bucket larger than this is read in slices, so the work
#: one reading needs in the trio thread stays short and writes interleave on the bus.
DEFAULT_READ_SLICE: Final = 100


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class RunnerStatistics:
    """Counters of one runner (``statistics()``, trio style)."""

    conn_status: str
    conn_state: str
    opens: int
    open_failures: int
    polls: int
    poll_failures: int
    skipped_polls: int
    #: Duration of the last poll (every read slice and its store update), and the part of it
    #: spent in ``driver.read``.
    last_poll_seconds: float
    last_read_seconds: float
    writes: int
    write_failures: int
    #: Seconds from each change of effective value to the device acknowledging it, oldest
    #: first (the latest ``writer.LATENCY_SAMPLES``).
    write_latencies: tuple[float, ...]


class ConnectorRunner:
    """Runs one connector: open, poll, write, reconnect, status (see the module docstring)."""

    def __init__(
        self,
        binding: ConnectorBinding,
        *,
        store: RecordStore,
        effective: EffectiveValues | None = None,
        his: HisBuffer | None = None,
        rng: RandomSource | None = None,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
        read_slice: int = DEFAULT_READ_SLICE,
    ) -> None:
        if read_slice < 1:
            raise ValueError("read_slice must be at least 1")
        self.binding = binding
        self.read_slice = read_slice
        self.id = binding.id
        self.tuning = binding.tuning
        self._store = store
        self._effective = effective
        self._his = his
        self._rng: RandomSource = rng if rng is not None else random.Random()
        self._wall_clock = wall_clock
        kind = binding.kind
        self.points: dict[Ref, PointState] = {}
        for rec in binding.points:
            pid = rec["id"]
            assert isinstance(pid, Ref)
            self.points[pid] = PointState.build(
                rec,
                id=pid,
                tuning=binding.point_tunings[pid],
                cur_tag=kind.cur_tag,
                write_tag=kind.write_tag,
                config_fault=binding.point_faults.get(pid),
            )
        self._his_points = [st for st in self.points.values() if st.his is not None]
        self.conn_status = ConnStatus.UNKNOWN
        self.conn_err: str | None = None
        self.conn_state = "closed"
        if binding.conn_fault is not None:
            self.conn_status, self.conn_err = ConnStatus.FAULT, binding.conn_fault
        elif binding.conn.get("disabled") is not None:
            self.conn_status, self.conn_err = ConnStatus.DISABLED, "connector is disabled"
        self.backoff = Backoff.from_tuning(self.tuning)
        self.driver: Driver | None = None
        self.device_info: dict[str, Value] = {}
        self._conn_published: dict[str, Value] = {}
        self._update_lock = trio.Lock()
        # session
        self._session_scope: trio.CancelScope | None = None
        self._loss: tuple[ConnStatus, str] | None = None
        self._healthy = False
        self.writer = PointWriter(
            f"connector @{self.id.val}",
            self.points.values(),
            call_timeout=self.tuning.call_timeout,
            publish=self._publish_point,
            lose=lambda err: self._lose(ConnStatus.DOWN, err),
            worked=self._worked,
        )
        # timers
        self._stale_at = math.inf
        self._his_wakes: WakeQueue[Ref] = WakeQueue()
        self._timer_wakeup = Wakeup()
        self._timer_deadline = math.inf
        # lifetime
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        # statistics
        self._opens = self._open_failures = 0
        self._polls = self._poll_failures = self._skipped = 0
        self._last_poll = self._last_read = 0.0

    def __repr__(self) -> str:
        return f"ConnectorRunner(@{self.id.val}, {self.conn_status.value})"

    def statistics(self) -> RunnerStatistics:
        """Counters and the latest write latencies."""
        return RunnerStatistics(
            self.conn_status.value,
            self.conn_state,
            self._opens,
            self._open_failures,
            self._polls,
            self._poll_failures,
            self._skipped,
            self._last_poll,
            self._last_read,
            self.writer.writes,
            self.writer.failures,
            tuple(self.writer.latencies),
        )

    # -- lifetime -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled or :meth:`stop`; ``started`` once the initial status is out."""
        try:
            with trio.CancelScope() as self._scope:
                self.writer.start(self._effective, trio.current_time())
                await self._publish_initial()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._timer_loop)
                    task_status.started()
                    await self._connection_loop()
        finally:
            self._done.set()

    async def stop(self) -> None:
        """Stop the runner and wait until it has (in-flight writes finish, driver closed)."""
        if self._scope is not None:
            self._scope.cancel()
            await self._done.wait()

    def effective_changed(self, id: Ref, val: Value, level: int) -> None:
        """The winner of point ``id``'s priority array is now ``(val, level)`` (sync)."""
        self.writer.effective_changed(id, val, level)

    # -- connection ---------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        if self.conn_status in (ConnStatus.FAULT, ConnStatus.DISABLED):
            await trio.sleep_forever()  # configuration: only a reload changes it
        try:
            self.driver = self.binding.kind.factory(self.binding.conn)
        except DriverError as exc:
            await self._set_conn(ConnStatus.FAULT, error_text(exc), "closed")
            await trio.sleep_forever()
        except Exception as exc:
            log.exception("connector @%s: the driver cannot be built", self.id.val)
            await self._set_conn(ConnStatus.FAULT, f"{type(exc).__name__}: {exc}", "closed")
            await trio.sleep_forever()
        driver = self.driver
        while True:
            await trio.sleep_until(self.backoff.next_attempt)
            if not await self._open(driver):
                continue
            try:
                await self._session(driver)
            finally:
                loss = self._loss or (ConnStatus.DOWN, "connection closed")
                # A session that worked has reset the backoff: the reconnect waits one first
                # step; one that never worked goes on to the next step.
                self.backoff = self.backoff.failed(trio.current_time(), self._rng)
                with trio.CancelScope(shield=True):
                    await self._close(driver)
                await self._set_conn(loss[0], loss[1], "closed")

    async def _open(self, driver: Driver) -> bool:
        self.conn_state = "opening"
        err: tuple[ConnStatus, str] | None = None
        timeout = self.tuning.call_timeout
        try:
            with trio.fail_after(timeout):
                info = await driver.open()
        except DriverError as exc:
            err = (_conn_status(exc), error_text(exc))
        except trio.TooSlowError:
            err = (ConnStatus.DOWN, f"open timed out after {timeout:g}s")
        except TimeoutError as exc:
            err = (ConnStatus.DOWN, f"open timed out: {error_text(exc)}")
        except Exception as exc:
            log.exception("connector @%s: driver.open failed", self.id.val)
            err = (ConnStatus.FAULT, f"{type(exc).__name__}: {exc}")
        now = trio.current_time()
        if err is not None:
            self._open_failures += 1
            self.backoff = self.backoff.failed(now, self._rng)
            with trio.CancelScope(shield=True):
                await self._close(driver)
            await self._set_conn(err[0], err[1], "closed")
            return False
        self._opens += 1
        self.device_info = dict(info) if isinstance(info, Mapping) else {}
        self._loss = None
        self._healthy = False
        self.writer.opened(now)
        # Values from before the outage may be old by now: stale, not ok, until read again.
        await self._update(self._sweep_stale(now))
        await self._set_conn(ConnStatus.OK, None, "open")
        return True

    async def _close(self, driver: Driver) -> None:
        """Close the driver, bounded by the call timeout (call shielded)."""
        with trio.move_on_after(self.tuning.call_timeout) as scope:
            try:
                await driver.aclose()
            except Exception:
                log.exception("connector @%s: driver.aclose failed", self.id.val)
        if scope.cancelled_caught:
            log.warning("connector @%s: driver.aclose timed out", self.id.val)

    async def _session(self, driver: Driver) -> None:
        async with trio.open_nursery() as nursery:
            self._session_scope = nursery.cancel_scope
            nursery.start_soon(self._poll_loop, driver)
            nursery.start_soon(self.writer.run, driver)
        self._session_scope = None

    def _lose(self, status: ConnStatus, err: str) -> None:
        """The connection failed: end the session (the first reason is kept)."""
        if self._loss is None:
            self._loss = (status, err)
        if self._session_scope is not None:
            self._session_scope.cancel()

    def _worked(self) -> None:
        if not self._healthy:
            self._healthy = True
            self.backoff = self.backoff.succeeded()

    # -- polling ------------------------------------------------------------------------

    async def _poll_loop(self, driver: Driver) -> None:
        pollable = {st.id: st.tuning for st in self.points.values() if st.pollable}
        if not pollable:
            self._worked()  # nothing to read: an open that worked is all there is
            await trio.sleep_forever()
        buckets = poll_buckets(pollable, now=trio.current_time(), rng=self._rng)
        members = [[self.points[pid] for pid in b.points] for b in buckets]
        while True:
            for i, bucket in enumerate(buckets):
                if bucket.due(trio.current_time()):
                    await self._poll(driver, members[i])
                    buckets[i], skipped = bucket.advance(trio.current_time())
                    self._skipped += skipped
            await trio.sleep_until(min(b.next_poll for b in buckets))

    async def _poll(self, driver: Driver, states: list[PointState]) -> None:
        """Read one bucket, a slice at a time; each slice's changes in one update."""
        start = trio.current_time()
        updates: list[dict[str, Value]] = []
        size = self.read_slice
        reading_time = 0.0
        try:
            for first in range(0, len(states), size):
                part = states[first : first + size]
                began = trio.current_time()
                readings = await self._read(driver, part)
                reading_time += trio.current_time() - began
                if readings is None:
                    return  # the connection is lost; the session is ending
                self._apply_readings(part, readings, trio.current_time(), updates)
                if updates:
                    await self._update(updates)
                    updates = []
        finally:
            now = trio.current_time()
            self._polls += 1
            self._last_poll = now - start
            self._last_read = reading_time
            if updates:
                await self._update(updates)

    async def _read(self, driver: Driver, states: list[PointState]) -> Sequence[Reading] | None:
        """One ``driver.read`` under the call timeout; None when the connection failed."""
        timeout = self.tuning.call_timeout
        try:
            with trio.fail_after(timeout):
                return await driver.read([st.rec for st in states])
        except DownError as exc:
            reason = error_text(exc)
        except trio.TooSlowError:
            reason = f"read timed out after {timeout:g}s"
        except TimeoutError as exc:
            reason = f"read timed out: {error_text(exc)}"
        except DriverError as exc:  # read should raise only DownError: fault the slice
            return [Reading(st.id, err=exc) for st in states]
        except Exception as exc:
            log.exception("connector @%s: driver.read failed", self.id.val)
            err = FaultError(f"{type(exc).__name__}: {exc}")
            return [Reading(st.id, err=err) for st in states]
        self._poll_failures += 1
        self._lose(ConnStatus.DOWN, reason)
        return None

    def _apply_readings(
        self,
        states: list[PointState],
        readings: Sequence[Reading],
        now: float,
        updates: list[dict[str, Value]],
    ) -> None:
        """The new own state of each point; its tag changes are appended to ``updates``."""
        if len(readings) != len(states) or any(
            r.id != st.id for r, st in zip(readings, states, strict=False)
        ):
            readings = _match_readings(states, readings)
        conn, conn_err = self.conn_status, self.conn_err
        conn_ok = conn is ConnStatus.OK
        wall = self._wall_clock() if self._his is not None and self._his_points else None
        good = False
        stale_at = self._stale_at
        for st, reading in zip(states, readings, strict=True):
            val = reading.val
            own = st.own
            if reading.err is None:
                good = True
                st.last_ok = now
                stale_at = min(stale_at, now + st.tuning.stale_time)
                published = st.published
                if conn_ok and own.status is CurStatus.OK and published.get("curStatus") == "ok":
                    # The common case, kept short: an ok point stays ok, only curVal may move.
                    # (A pollable point shows its own state while the connector is ok.)
                    if own.val.__class__ is not val.__class__ or own.val != val:
                        st.own = CurState(CurStatus.OK, val)
                        published["curVal"] = val
                        updates.append({"id": st.id, "curVal": val})
                else:
                    st.own = CurState(CurStatus.OK, val)
                    self._changes_of(st, conn, conn_err, updates)
            else:
                st.own = cur_state_of(reading)
                self._changes_of(st, conn, conn_err, updates)
            # COV looks at every change; interval collection needs only its boundaries (the
            # timers), once a first reading has scheduled them.
            his = st.his
            if (
                his is not None
                and wall is not None
                and ((st.own != own) if his.cov else (st.id not in self._his_wakes))
            ):
                self._observe_his(st, now, wall)
        if good:
            self._worked()
        if stale_at < self._stale_at:
            self._stale_at = stale_at
            self._kick_timers(stale_at)

    @staticmethod
    def _changes_of(
        st: PointState, conn: ConnStatus, conn_err: str | None, updates: list[dict[str, Value]]
    ) -> None:
        changes = st.changes(st.tags(conn, conn_err))
        if changes:
            changes["id"] = st.id
            updates.append(changes)

    # -- timers: stale and history ------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            now = trio.current_time()
            if now >= self._stale_at:
                await self._update(self._sweep_stale(now))
            due = self._his_wakes.pop_due(now)
            if due and self._his is not None:
                wall = self._wall_clock()
                # Every interval point of the connector is due at the same boundary: a slice
                # at a time, so the boundary does not hold the trio thread in one long step.
                for i, pid in enumerate(due):
                    if i and not i % self.read_slice:
                        await trio.lowlevel.checkpoint()
                    self._observe_his(self.points[pid], now, wall)
            self._timer_deadline = min(self._stale_at, self._his_wakes.next_at())
            await self._timer_wakeup.wait_until(self._timer_deadline)

    def _kick_timers(self, at: float) -> None:
        if at < self._timer_deadline:
            self._timer_deadline = at
            self._timer_wakeup.set()

    def _sweep_stale(self, now: float) -> list[dict[str, Value]]:
        """Turn ok points whose last good read is older than staleTime to stale."""
        updates: list[dict[str, Value]] = []
        next_at = math.inf
        conn, conn_err = self.conn_status, self.conn_err
        wall: dt.datetime | None = None
        for st in self.points.values():
            if st.own.status is not CurStatus.OK or st.last_ok is None:
                continue
            if not is_stale(st.last_ok, now, st.tuning.stale_time, in_watch=False):
                next_at = min(next_at, st.last_ok + st.tuning.stale_time)
                continue
            st.own = st.own.stale()
            self._changes_of(st, conn, conn_err, updates)
            if st.his is not None and self._his is not None:
                wall = wall or self._wall_clock()
                self._observe_his(st, now, wall)
        self._stale_at = next_at
        return updates

    def _observe_his(self, st: PointState, now: float, wall: dt.datetime) -> None:
        decision = st.observe_his(wall, self.conn_status, self.conn_err)
        if decision.sample is not None and self._his is not None:
            self._his.add(st.id, decision.sample)
        if decision.wake_at is None:
            self._his_wakes.cancel(st.id)
            return
        at = now + max(0.0, (decision.wake_at - wall).total_seconds())
        self._his_wakes.schedule(st.id, at)
        self._kick_timers(at)

    # -- publishing ---------------------------------------------------------------------

    async def _publish_initial(self) -> None:
        """Learn what the store shows now (a previous runner's tags), then publish ours."""
        ids = [self.id, *self.points]
        try:
            current = await self._store.read_by_ids(ids)
        except Exception:
            log.exception("connector @%s: cannot read its records", self.id.val)
            current = [None] * len(ids)
        conn_rec, *point_recs = current
        self._conn_published = owned(conn_rec, CONN_TAGS)
        for st, rec in zip(self.points.values(), point_recs, strict=True):
            st.published = owned(rec, POINT_TAGS)
        await self._set_conn(self.conn_status, self.conn_err, self.conn_state)

    async def _set_conn(self, status: ConnStatus, err: str | None, state: str) -> None:
        """The connector's status changed: publish it and every point's roll-up at once."""
        self.conn_status, self.conn_err, self.conn_state = status, err, state
        now = trio.current_time()
        updates: list[dict[str, Value]] = []
        tags = conn_tags(status, err)
        tags["connState"] = state
        changes = publish(self._conn_published, tags)
        if changes:
            changes["id"] = self.id
            updates.append(changes)
        wall = self._wall_clock() if self._his is not None and self._his_points else None
        for st in self.points.values():
            self._changes_of(st, status, err, updates)
            if wall is not None and st.his is not None:
                self._observe_his(st, now, wall)
        await self._update(updates)

    async def _publish_point(self, st: PointState) -> None:
        updates: list[dict[str, Value]] = []
        self._changes_of(st, self.conn_status, self.conn_err, updates)
        await self._update(updates)

    async def _update(self, updates: list[dict[str, Value]]) -> None:
        """One update_records call; on failure the tags are published again next time."""
        if not updates:
            return
        try:
            async with self._update_lock:
                try:
                    await self._store.update_records(updates)
                except UnknownIdError:
                    # A record removed behind the runner's back (a reload in progress) must
                    # not hold back the others.
                    await self._update_each(updates)
        except BaseException as exc:
            for rec in updates:
                rid = rec.get("id")
                if rid == self.id:
                    forget(self._conn_published, CONN_TAGS)
                elif isinstance(rid, Ref) and rid in self.points:
                    forget(self.points[rid].published, POINT_TAGS)
            if not isinstance(exc, Exception):
                raise
            log.exception("connector @%s: runtime tags not stored", self.id.val)

    async def _update_each(self, updates: list[dict[str, Value]]) -> None:
        for rec in updates:
            try:
                await self._store.update_records([rec])
            except UnknownIdError:
                log.debug("connector @%s: %s is not in the store", self.id.val, rec.get("id"))


def _conn_status(err: DriverError) -> ConnStatus:
    status = err.status.removeprefix("remote")
    try:
        return ConnStatus(status[:1].lower() + status[1:])
    except ValueError:
        return ConnStatus.FAULT


def _match_readings(states: list[PointState], readings: Sequence[Reading]) -> list[Reading]:
    """Readings in the order of ``states`` when a driver returned them otherwise."""
    by_id: dict[Ref, Reading] = {r.id: r for r in readings}
    missing = FaultError("the driver returned no reading for the point")
    return [by_id.get(st.id) or Reading(st.id, err=missing) for st in states]
