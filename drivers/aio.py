"""The one asyncio thread that hosts the asyncio protocol libraries, bridged to trio.

pymodbus (and later bacpypes3 and asyncua) are asyncio libraries. They all live on one
dedicated thread running a stock ``asyncio.SelectorEventLoop``; this module is the only
place in the gateway that knows asyncio exists (DESIGN.md, "Concurrency").

From trio (``AioHost`` methods, awaited in trio tasks):

- ``await aio.run(coro_fn, *args)`` runs a coroutine function on the loop with
  ``asyncio.run_coroutine_threadsafe`` and parks the trio task; the loop wakes it through
  ``TrioToken.run_sync_soon`` when the coroutine finishes. No worker thread blocks.
- ``await aio.call(fn, *args)`` runs a plain function in the loop thread, for objects that
  must be created inside the loop (pymodbus clients and servers grab the running loop).
- A trio cancel of either cancels the asyncio task and waits until it has really finished
  (so locks and transactions on the loop side are released before trio moves on). A cancel
  is only a request, so every call also carries an asyncio-side timeout (the host default,
  or ``within=``); when it fires the call raises the builtin ``TimeoutError``.
- ``aio.pusher(send_channel)`` gives loop-side code a thread-safe ``send_nowait`` that
  delivers into a trio channel with ``run_sync_soon(channel.send_nowait, item)`` (COV,
  subscriptions); ``aio.open_push_channel`` makes the channel too.

For code running *on* the loop (protocol modules may not import asyncio themselves):
``bounded(awaitable, seconds)`` and ``TurnQueue`` (FIFO turns with an idle gap, for buses).

Lifetime: ``async with open_aio_host() as aio:`` starts the thread and, on exit, cancels
every task left on the loop, waits for them, shuts down async generators and the default
executor, closes the loop and joins the thread: nothing is left behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, TypeVarTuple

import outcome
import trio

__all__ = [
    "AioClosedError",
    "AioHost",
    "AioStatistics",
    "Pusher",
    "TurnQueue",
    "bounded",
    "open_aio_host",
]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
Ts = TypeVarTuple("Ts")

#: Asyncio-side bound for a call that names none: a safety net, not a policy (the runner's
#: ``fail_after`` is the policy).
DEFAULT_TIMEOUT = 60.0


class AioClosedError(RuntimeError):
    """The asyncio host is closed (or closing) and cannot run the call."""


@dataclass(frozen=True, slots=True)
class AioStatistics:
    """Counters of an AioHost (``statistics()``, trio style)."""

    calls_in_flight: int
    calls_total: int
    timeouts: int
    cancels: int


class _Call:
    """One trio -> asyncio call; its loop-side fields are touched only in the loop thread."""

    __slots__ = ("asyncio_task", "cancel_requested", "raise_cancel", "trio_task")

    def __init__(self, trio_task: trio.lowlevel.Task) -> None:
        self.trio_task = trio_task
        self.asyncio_task: asyncio.Task[Any] | None = None
        self.cancel_requested = False
        self.raise_cancel: Callable[[], Any] | None = None

    def cancel_in_loop(self) -> None:
        # Runs in the loop thread. If the task has not started yet, the guard sees the flag.
        self.cancel_requested = True
        if self.asyncio_task is not None:
            self.asyncio_task.cancel()


class AioHost:
    """The bridge to the asyncio thread; made by ``open_aio_host``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        token: trio.lowlevel.TrioToken,
        default_timeout: float,
        thread_name: str = "",
    ) -> None:
        self._loop = loop
        self._thread_name = thread_name
        self._token = token
        self._default_timeout = default_timeout
        self._closed = False
        self._in_flight = 0
        self._total = 0
        self._timeouts = 0
        self._cancels = 0

    @property
    def thread_name(self) -> str:
        """Name of the loop thread (for diagnostics and leak checks)."""
        return self._thread_name

    def statistics(self) -> AioStatistics:
        """Counters: calls in flight, total calls, asyncio-side timeouts, trio cancels."""
        return AioStatistics(self._in_flight, self._total, self._timeouts, self._cancels)

    async def run(
        self,
        fn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        within: float | None = None,
    ) -> T:
        """Run ``await fn(*args)`` on the loop and return its result to this trio task.

        ``within`` bounds the call on the asyncio side (default: the host's default).
        """
        if self._closed:
            raise AioClosedError("the asyncio host is closed")
        bound = self._default_timeout if within is None else within
        return await self._submit(lambda call: self._guard(call, fn, args, bound))

    async def run_shielded(
        self,
        fn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        within: float | None = None,
    ) -> T:
        """``run`` that a trio cancel does not interrupt: for cleanup (closing a link)."""
        with trio.CancelScope(shield=True):
            result = await self.run(fn, *args, within=within)
        return result  # noqa: RET504 (mypy: a CancelScope may swallow what it raises)

    async def call(
        self,
        fn: Callable[[*Ts], T],
        *args: *Ts,
        within: float | None = None,
    ) -> T:
        """Run the plain function ``fn(*args)`` in the loop thread (object factories)."""

        async def in_loop() -> T:
            return fn(*args)

        return await self.run(in_loop, within=within)

    def pusher(self, channel: _SendsNowait[T]) -> Pusher[T]:
        """A thread-safe ``send_nowait`` into ``channel`` for loop-side callbacks."""
        return Pusher(self._token, channel)

    def open_push_channel(
        self, item_type: type[T], max_buffer_size: int
    ) -> tuple[Pusher[T], trio.MemoryReceiveChannel[T]]:
        """A trio memory channel whose sending side can be used from the loop thread."""
        del item_type  # only for the type checker
        send, receive = trio.open_memory_channel[T](max_buffer_size)
        return Pusher(self._token, send, owns_channel=True), receive

    # -- internals ----------------------------------------------------------------------

    async def _guard(
        self,
        call: _Call,
        fn: Callable[[*Ts], Awaitable[T]],
        args: tuple[*Ts],
        within: float,
    ) -> T:
        # Runs in the loop thread, as the asyncio task of the call.
        call.asyncio_task = asyncio.current_task()
        if call.cancel_requested:
            raise asyncio.CancelledError
        try:
            async with asyncio.timeout(within):
                return await fn(*args)
        except TimeoutError:
            self._timeouts += 1
            raise

    async def _submit(self, make: Callable[[_Call], Coroutine[Any, Any, T]]) -> T:
        # A call made in an already-cancelled scope never reaches the loop.
        await trio.lowlevel.checkpoint_if_cancelled()
        trio_task = trio.lowlevel.current_task()
        call = _Call(trio_task)
        try:
            cfut = asyncio.run_coroutine_threadsafe(make(call), self._loop)
        except RuntimeError as exc:  # the loop has stopped
            raise AioClosedError("the asyncio host is closed") from exc
        self._in_flight += 1
        self._total += 1
        token = self._token

        def done_in_loop(fut: concurrent.futures.Future[T]) -> None:
            # Runs in the loop thread (or here, if the future is already done).
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._resume, call, fut)

        cfut.add_done_callback(done_in_loop)

        def abort(raise_cancel: Callable[[], Any]) -> trio.lowlevel.Abort:
            call.raise_cancel = raise_cancel
            self._cancels += 1
            # A closed loop has already cancelled the task in its shutdown.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(call.cancel_in_loop)
            # FAILED: the trio task stays parked until the asyncio task has finished.
            return trio.lowlevel.Abort.FAILED

        try:
            result: T = await trio.lowlevel.wait_task_rescheduled(abort)
        finally:
            self._in_flight -= 1
        return result

    def _resume(self, call: _Call, fut: concurrent.futures.Future[T]) -> None:
        # Runs in the trio thread.
        result: outcome.Outcome[T]
        if fut.cancelled():
            if call.raise_cancel is not None:
                result = outcome.capture(call.raise_cancel)
            else:
                result = outcome.Error(AioClosedError("the asyncio host cancelled the call"))
        else:
            exc = fut.exception()
            result = outcome.Error(exc) if exc is not None else outcome.Value(fut.result())
        trio.lowlevel.reschedule(call.trio_task, result)


class _SendsNowait(Protocol[T_contra]):
    def send_nowait(self, value: T_contra, /) -> None: ...


class Pusher(Generic[T]):
    """Delivers items from any thread into a trio channel without blocking the sender.

    A full channel drops the item and counts it (``dropped``): a loop-side callback must
    never wait on trio. A closed channel drops silently (the consumer has gone).
    """

    def __init__(
        self,
        token: trio.lowlevel.TrioToken,
        channel: _SendsNowait[T],
        *,
        owns_channel: bool = False,
    ) -> None:
        self._token = token
        self._channel = channel
        self._owns = owns_channel
        self.dropped = 0

    def send_nowait(self, value: T, /) -> None:
        """Queue ``value`` for delivery (thread-safe; returns immediately)."""
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._deliver, value)

    def _deliver(self, value: T) -> None:
        try:
            self._channel.send_nowait(value)
        except trio.WouldBlock:
            self.dropped += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def close(self) -> None:
        """Close the channel if this pusher made it (call from trio)."""
        if self._owns and isinstance(self._channel, trio.MemorySendChannel):
            self._channel.close()


# -- loop-side helpers (call only from coroutines running on the loop) ---------------------


async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable`` on the loop for at most ``seconds``; raises ``TimeoutError``."""
    async with asyncio.timeout(seconds):
        return await awaitable


class TurnQueue:
    """One turn at a time, first come first served, with an idle ``gap`` between turns.

    For a shared bus: every request takes a turn, and the next request may start only
    ``gap`` seconds after the previous one ended (Modbus RTU's inter-frame silence).
    Loop-side only; construct it inside the loop (or before any waiter exists).
    """

    def __init__(self, gap: float = 0.0) -> None:
        self.gap = gap
        self._lock = asyncio.Lock()
        self._last_end = -1e9
        self.turns = 0
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the bus for one request (``waiting`` counts the requests in line)."""
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        try:
            if self.gap > 0:
                wait = self._last_end + self.gap - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            self.turns += 1
            yield
        finally:
            self._last_end = time.monotonic()
            self._lock.release()

    async def pause(self) -> None:
        """Keep the bus idle for ``gap`` inside a turn (between two frames of one turn)."""
        if self.gap > 0:
            await asyncio.sleep(self.gap)


# -- lifetime ------------------------------------------------------------------------------

_thread_counter = 0


def _run_loop(
    loop: asyncio.AbstractEventLoop,
    token: trio.lowlevel.TrioToken,
    finished: Callable[[], None],
) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            loop.close()
        finally:
            asyncio.set_event_loop(None)
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(finished)


async def _drain_loop(grace: float) -> None:
    """Cancel every other task on the loop, wait for them, then shut generators down."""
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    for task in others:
        task.cancel()
    if others:
        await asyncio.wait(others, timeout=grace)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


@contextlib.asynccontextmanager
async def open_aio_host(
    *, default_timeout: float = DEFAULT_TIMEOUT, shutdown_grace: float = 5.0
) -> AsyncIterator[AioHost]:
    """Start the asyncio thread; on exit stop it and leave no task or thread behind."""
    global _thread_counter
    token = trio.lowlevel.current_trio_token()
    loop = asyncio.SelectorEventLoop()
    finished = trio.Event()
    _thread_counter += 1
    name = f"hs-gateway-aio-{_thread_counter}"
    thread = threading.Thread(
        target=_run_loop, args=(loop, token, finished.set), name=name, daemon=True
    )
    thread.start()
    host = AioHost(loop, token, default_timeout, name)
    try:
        yield host
    finally:
        with trio.CancelScope(shield=True):
            try:
                await host.run(_drain_loop, shutdown_grace, within=shutdown_grace * 2)
            finally:
                host._closed = True
                loop.call_soon_threadsafe(loop.stop)
                with trio.move_on_after(shutdown_grace * 2):
                    await finished.wait()
                thread.join(timeout=shutdown_grace)
