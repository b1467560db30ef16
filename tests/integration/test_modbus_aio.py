"""drivers.aio: the trio <-> asyncio bridge (calls, cancellation both ways, pushes, shutdown)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest
import trio
import trio.testing

from drivers.aio import AioClosedError, AioHost, TurnQueue, open_aio_host


def _aio_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hs-gateway-aio")]


async def test_run_returns_results_and_raises_errors(modbus_aio: AioHost) -> None:
    async def add(x: int, y: int) -> int:
        await asyncio.sleep(0)
        return x + y

    async def fail() -> None:
        raise KeyError("boom")

    assert await modbus_aio.run(add, 2, 3) == 5
    with pytest.raises(KeyError, match="boom"):
        await modbus_aio.run(fail)


async def test_call_runs_in_the_loop_thread(modbus_aio: AioHost) -> None:
    def where() -> tuple[str, bool]:
        return threading.current_thread().name, asyncio.get_running_loop().is_running()

    name, running = await modbus_aio.call(where)
    assert name == modbus_aio.thread_name and name != threading.current_thread().name
    assert running


async def test_trio_cancel_cancels_the_asyncio_task(modbus_aio: AioHost) -> None:
    events: list[str] = []

    async def sleeper() -> None:
        events.append("started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # cleanup that takes a moment on the asyncio side
            events.append("cancelled")
            raise

    with trio.fail_after(5):
        with trio.move_on_after(0.2) as scope:
            await modbus_aio.run(sleeper)
    assert scope.cancelled_caught
    # The trio task resumed only after the asyncio side had finished its cleanup.
    assert events == ["started", "cancelled"]
    assert modbus_aio.statistics().cancels == 1
    assert modbus_aio.statistics().calls_in_flight == 0


async def test_cancel_before_the_asyncio_task_starts(modbus_aio: AioHost) -> None:
    ran: list[str] = []

    async def never() -> None:
        ran.append("ran")

    with trio.CancelScope() as scope:
        scope.cancel()
        await modbus_aio.run(never)
    assert scope.cancelled_caught
    await modbus_aio.run(asyncio.sleep, 0.01)  # the loop is still healthy
    assert ran == []


async def test_asyncio_side_timeout(modbus_aio: AioHost) -> None:
    with trio.fail_after(5), pytest.raises(TimeoutError):
        await modbus_aio.run(asyncio.sleep, 10, within=0.05)
    assert modbus_aio.statistics().timeouts == 1


async def test_many_concurrent_calls(modbus_aio: AioHost) -> None:
    results: list[int] = []

    async def echo(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    async def one(i: int) -> None:
        results.append(await modbus_aio.run(echo, i))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(one, i)
    assert sorted(results) == list(range(300))
    assert modbus_aio.statistics().calls_total >= 300


async def test_pushes_arrive_in_a_trio_channel(modbus_aio: AioHost) -> None:
    pusher, receive = modbus_aio.open_push_channel(int, 2)

    def push_later(count: int) -> None:
        loop = asyncio.get_running_loop()
        for i in range(count):
            loop.call_later(0.001 * i, pusher.send_nowait, i)

    await modbus_aio.call(push_later, 2)
    with trio.fail_after(5):
        assert [await receive.receive(), await receive.receive()] == [0, 1]
    # A full channel drops (and counts) instead of blocking the loop.
    await modbus_aio.call(push_later, 5)
    await modbus_aio.run(asyncio.sleep, 0.05)
    await trio.testing.wait_all_tasks_blocked()
    assert pusher.dropped == 3
    assert [receive.receive_nowait(), receive.receive_nowait()] == [0, 1]
    pusher.close()
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()


async def test_turn_queue_keeps_the_gap(modbus_aio: AioHost) -> None:
    async def two_turns() -> list[tuple[float, float]]:
        queue = TurnQueue(gap=0.03)
        spans: list[tuple[float, float]] = []

        async def one() -> None:
            async with queue.turn():
                start = time.monotonic()
                await asyncio.sleep(0.005)
                spans.append((start, time.monotonic()))

        await asyncio.gather(one(), one(), one())
        return spans

    spans = await modbus_aio.run(two_turns)
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start - end >= 0.03  # a lower bound: sleeping never ends early


async def test_shutdown_leaves_no_thread_or_task() -> None:
    before = _aio_threads()
    cancelled: list[str] = []

    async def background() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append("background")
            raise

    def spawn() -> None:
        asyncio.get_running_loop().create_task(background())

    with trio.fail_after(10):
        async with open_aio_host() as aio:
            await aio.call(spawn)
            await aio.run(asyncio.sleep, 0.01)
            assert len(_aio_threads()) == len(before) + 1
    assert _aio_threads() == before
    assert cancelled == ["background"]
    with pytest.raises(AioClosedError):
        await aio.run(asyncio.sleep, 0)
