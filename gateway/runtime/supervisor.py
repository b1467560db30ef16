"""The supervisor: every connection runner of a gateway in one trio nursery, with hot reload.

::

    gateway = Gateway(storage, registry, writes=point_writes, tunings=tunings)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run, connectors, points)
        await gateway.start(hypercorn.trio.serve, app, config)   # the same nursery
        ...
        await gateway.apply(new_connectors, new_points)           # SIGHUP
        await gateway.stop()                                       # SIGTERM

:meth:`Gateway.run` owns one nursery holding one :class:`~gateway.runtime.connector.
ConnectorRunner` per connector, the history flusher, the task that ends timed overrides when
they run out, and whatever :meth:`Gateway.start` adds (the web server). It subscribes to
``PointWrites`` and hands each change of effective value to the runner of the point.

Shutdown (cancellation of ``run``, or :meth:`Gateway.stop`) is graceful within a deadline:
writes in flight finish (they are shielded and bounded by the call timeout), every driver is
closed, and after the runners have stopped the history buffer is flushed one last time,
shielded, within ``shutdown_grace`` seconds.

Hot reload (:meth:`Gateway.apply`): the new configuration is bound again and compared per
connector (:class:`~gateway.runtime.bindings.ConnectorBinding` equality: the connector record,
its points and their resolved tunings). Only connectors that were added, removed or changed are
started, stopped or restarted; the others keep running untouched. Priority arrays are never
touched: they live in ``PointWrites`` and a restarted runner reads the effective values from
there.

Options worth knowing: ``read_slice`` (points per ``driver.read``, see
:mod:`~gateway.runtime.connector`) and ``tune_gc``. Polling replaces thousands of values a
second; Python's cyclic garbage collector then runs a full pass every few seconds over every
object alive (the configuration, the store's records), pausing the process for 30-180 ms with
10,000 points, which shows directly in the pointWrite latency. With ``tune_gc``, each
:meth:`Gateway.apply` collects once, freezes what is alive (``gc.freeze()``: never walked
again) and makes collections rare (young ones after 5,000 new objects instead of 700, full
ones after 1,000 middle-generation passes instead of 10). It is
process-wide, so the appliance turns it on and embedders decide for themselves.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from gateway.haystack.kinds import REMOVE, Ref, Value
from gateway.points.schedule import RandomSource
from gateway.points.tuning import DEFAULT_TUNING, Tuning
from gateway.runtime.bindings import Bindings, bind
from gateway.runtime.connector import DEFAULT_READ_SLICE, ConnectorRunner
from gateway.runtime.history import HisBuffer
from gateway.runtime.registry import DriverRegistry
from gateway.storage.base import RecordStore
from gateway.writes import EffectiveChange, PointWrites

__all__ = ["Gateway", "ReloadResult", "run_gateway"]

log = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_GRACE: Final = 5.0
_EXPIRY_CHECK_MAX: Final = 60.0
#: With tune_gc: a young collection after this many new objects (Python's is 700), a full
#: one after this many middle-generation ones (Python's is 10).
_GC_YOUNG: Final = 5000
_GC_FULL_EVERY: Final = 1000

Records = Iterable[Mapping[str, Value]]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What :meth:`Gateway.apply` did, by connector id."""

    started: list[Ref] = field(default_factory=list)
    stopped: list[Ref] = field(default_factory=list)
    restarted: list[Ref] = field(default_factory=list)
    unchanged: list[Ref] = field(default_factory=list)


class Gateway:
    """The runtime of one gateway: connection runners, history and overrides (see module)."""

    def __init__(
        self,
        store: RecordStore,
        registry: DriverRegistry,
        *,
        writes: PointWrites | None = None,
        tunings: Mapping[Ref, Tuning] | None = None,
        default_tuning: Tuning = DEFAULT_TUNING,
        his: HisBuffer | None = None,
        rng: RandomSource | None = None,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
        load_writes: bool = True,
        expire_overrides: bool = True,
        read_slice: int = DEFAULT_READ_SLICE,
        tune_gc: bool = False,
    ) -> None:
        self.store = store
        self.registry = registry
        self.writes = writes
        self.tunings: dict[Ref, Tuning] = dict(tunings or {})
        self.default_tuning = default_tuning
        self.his = his if his is not None else HisBuffer(store)
        self.shutdown_grace = shutdown_grace
        self._rng: RandomSource = rng if rng is not None else random.Random()
        self._wall_clock = wall_clock
        self._load_writes = load_writes
        self._expire_overrides = expire_overrides
        self.read_slice = read_slice
        self.tune_gc = tune_gc
        self._runners: dict[Ref, ConnectorRunner] = {}
        self._owner: dict[Ref, ConnectorRunner] = {}
        self._orphans: dict[Ref, str] = {}
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self._apply_lock = trio.Lock()
        self._done = trio.Event()

    @property
    def runners(self) -> Mapping[Ref, ConnectorRunner]:
        """The running connection runners by connector id."""
        return dict(self._runners)

    def runner(self, conn_id: Ref) -> ConnectorRunner | None:
        """The runner of connector ``conn_id``."""
        return self._runners.get(conn_id)

    @property
    def orphans(self) -> Mapping[Ref, str]:
        """Points whose connector does not exist, with the reason shown in their curErr."""
        return dict(self._orphans)

    # -- lifetime -----------------------------------------------------------------------

    async def run(
        self,
        connectors: Records,
        points: Records,
        *,
        task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run every connector until cancelled or :meth:`stop`; ``started(self)`` when up."""
        unsubscribe = self.writes.subscribe(self._on_change) if self.writes else None
        try:
            with trio.CancelScope() as self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    if self.writes is not None and self._load_writes:
                        await self.writes.load()
                    await nursery.start(self.his.run)
                    if self.writes is not None and self._expire_overrides:
                        nursery.start_soon(self._expire_loop, self.writes)
                    await self.apply(connectors, points)
                    task_status.started(self)
        finally:
            self._nursery = None
            if unsubscribe is not None:
                unsubscribe()
            # Every runner has stopped: nothing adds samples any more.
            with trio.CancelScope(shield=True), trio.move_on_after(self.shutdown_grace):
                await self.his.flush()
            if len(self.his):
                log.error("%d history samples could not be written at shutdown", len(self.his))
            self._done.set()

    async def stop(self) -> None:
        """Shut down gracefully and wait until :meth:`run` has returned."""
        if self._scope is not None:
            self._scope.cancel()
            await self._done.wait()

    async def start(self, async_fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Start a service (the web server) in the gateway's nursery; ``nursery.start``."""
        if self._nursery is None:
            raise RuntimeError("the gateway is not running")
        return await self._nursery.start(async_fn, *args)

    # -- configuration ------------------------------------------------------------------

    async def apply(
        self,
        connectors: Records,
        points: Records,
        tunings: Mapping[Ref, Tuning] | None = None,
        *,
        restart: Collection[Ref] = (),
    ) -> ReloadResult:
        """Run exactly the given configuration: start, stop or restart only what changed.

        ``restart`` names connectors to restart even though their records did not change
        (their driver's configuration did: a register map file edited on its own).
        """
        if self._nursery is None:
            raise RuntimeError("the gateway is not running")
        async with self._apply_lock:
            if tunings is not None:
                self.tunings = dict(tunings)
            bindings = bind(connectors, points, self.registry, self.tunings, self.default_tuning)
            for cid, reason in bindings.unknown.items():
                log.warning("connector @%s skipped: %s", cid.val, reason)
            result = ReloadResult()
            stopping: list[ConnectorRunner] = []
            for cid, runner in list(self._runners.items()):
                new = bindings.connectors.get(cid)
                if new is None:
                    result.stopped.append(cid)
                elif new != runner.binding or cid in restart:
                    result.restarted.append(cid)
                else:
                    result.unchanged.append(cid)
                    continue
                stopping.append(runner)
                del self._runners[cid]
            if stopping:
                async with trio.open_nursery() as stops:
                    for runner in stopping:
                        stops.start_soon(runner.stop)
            for cid, binding in bindings.connectors.items():
                if cid in self._runners:
                    continue
                if cid not in result.restarted:
                    result.started.append(cid)
                runner = ConnectorRunner(
                    binding,
                    store=self.store,
                    effective=self.writes.effective if self.writes else None,
                    his=self.his,
                    rng=self._rng,
                    wall_clock=self._wall_clock,
                    read_slice=self.read_slice,
                )
                self._runners[cid] = runner
            self._owner = {
                pid: runner for runner in self._runners.values() for pid in runner.points
            }
            for cid in [*result.started, *result.restarted]:
                await self._nursery.start(self._runners[cid].run)
            await self._publish_orphans(bindings)
            if self.tune_gc:
                _tune_gc()
            return result

    async def _publish_orphans(self, bindings: Bindings) -> None:
        updates: list[dict[str, Value]] = []
        for pid, reason in bindings.orphans.items():
            if self._orphans.get(pid) != reason:
                updates.append(
                    {"id": pid, "curStatus": "fault", "curErr": reason, "curVal": REMOVE}
                )
        self._orphans = dict(bindings.orphans)
        for rec in updates:
            try:
                await self.store.update_records([rec])
            except Exception:
                log.exception("cannot show the fault of orphan point %s", rec["id"])

    # -- writes -------------------------------------------------------------------------

    def _on_change(self, change: EffectiveChange) -> None:
        # Called inside PointWrites' commit: never let a runner's problem fail a pointWrite.
        runner = self._owner.get(change.id)
        if runner is None:
            return
        try:
            runner.effective_changed(change.id, change.val, change.level)
        except Exception:
            log.exception("write of %s not dispatched", change.id)

    async def _expire_loop(self, writes: PointWrites) -> None:
        """Release timed overrides when they run out (their runners then write the winner)."""
        while True:
            next_expiry = await writes.expire_due()
            delay = _EXPIRY_CHECK_MAX
            if next_expiry is not None:
                delay = max(0.001, (next_expiry - self._wall_clock()).total_seconds())
            with trio.move_on_after(min(delay, _EXPIRY_CHECK_MAX)):
                await writes.wait_changed()


def _tune_gc() -> None:
    """Keep the cyclic garbage collector's pauses short (see the module docstring)."""
    # The configuration just loaded lives until the next reload: collect what the previous
    # one left, once, then freeze everything alive so that no collection walks it again.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    # A poll allocates a burst of values that live until the next poll: with Python's young
    # threshold (700) the burst itself triggers collections that promote it, and the
    # survivors pile up into a full collection every few seconds. Make both rare.
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, _GC_YOUNG), middle, max(old, _GC_FULL_EVERY))


async def run_gateway(
    storage: RecordStore,
    connectors: Records,
    points: Records,
    *,
    registry: DriverRegistry,
    task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a :class:`Gateway` (``options`` go to its constructor); ``started(gateway)``."""
    gateway = Gateway(storage, registry, **options)
    await gateway.run(connectors, points, task_status=task_status)
