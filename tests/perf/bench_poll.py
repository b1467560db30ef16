"""The gateway polling 10,000 Modbus points (f4) on 10 simulated devices over loopback.

Run: ``.venv/bin/python tests/perf/bench_poll.py [--seconds 20] [--store memory|sqlite]
[--tune-gc] [--read-slice 100] [--his] [--static]`` (``--help`` says what each does).
Prints figures, asserts nothing; takes about ``--seconds`` + 10 s. The simulated devices
(pymodbus servers) run in a child process, so the CPU measured here is the gateway's alone: the
trio thread (runners, store, status roll-up) plus the asyncio thread (pymodbus client,
drivers.aio bridge).

Figures:

- **poll rate**: polls per connector per second over the window (1.00 means every point was
  read every second) and the poll slots skipped because a poll overran its period;
- **cycle time**: the time to read all 10,000 points once, i.e. the sum over the 10
  connectors of the ``driver.read`` calls of one poll (their reads overlap in time, so this is
  the sequential equivalent; "with the store updates" adds the runtime tags being stored),
  against the **floor**: the Modbus requests one cycle needs (counted on the
  links) times one native pymodbus round trip of the same size (a 100-register read, measured
  here with plain asyncio against the same simulated devices);
- **CPU**: process CPU time over wall time in the window (100 % = one core), and that of the
  simulators' process for comparison;
- **pointWrite -> register**: from ``PointWrites.write`` (the priority array committed to the
  store) to the device acknowledging the Modbus write, for writes made while everything polls;
- diagnostics for the latency tail: the longest trio task steps (the trio thread is busy and
  nothing else in it runs meanwhile), the garbage collector's pauses, and the load average of
  the machine (other processes competing for the cores show up as latency here).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from drivers.aio import open_aio_host  # noqa: E402
from drivers.base import Driver, PointRec  # noqa: E402
from drivers.modbus.link import LinkRegistry  # noqa: E402
from drivers.modbus.regmap import RegisterMap  # noqa: E402
from gateway.haystack.kinds import MARKER, Number, Ref, Uri, Value  # noqa: E402
from gateway.points.tuning import load_tunings  # noqa: E402
from gateway.runtime.history import HisBuffer  # noqa: E402
from gateway.runtime.registry import (  # noqa: E402
    DriverKind,
    DriverRegistry,
    RegisterMaps,
    modbus_kind,
)
from gateway.runtime.supervisor import Gateway  # noqa: E402
from gateway.storage.memory import InMemoryAdapter  # noqa: E402
from gateway.writes import PointWrites  # noqa: E402

DEVICES = 10
POINTS_PER_DEVICE = 1000
WRITABLE_PER_DEVICE = 10
BLOCK = 100  # the driver's default block size (registers per read)


def register_map() -> str:
    lines = ["name,addr,data,rw"]
    for i in range(POINTS_PER_DEVICE - WRITABLE_PER_DEVICE):
        lines.append(f"r{i:04d},3{1 + 2 * i:04d},f4,r")
    for i in range(WRITABLE_PER_DEVICE):
        lines.append(f"w{i:02d},4{1 + 2 * i:04d},f4,rw")
    return "\n".join(lines) + "\n"


# -- the simulated devices (child process) ---------------------------------------------------


def serve_sims(count: int, moving: bool) -> None:
    """Child process: serve ``count`` devices, print their ports, run until stdin closes."""
    from drivers.sim.modbus import Drift, ModbusSim, SimDevice

    regmap = RegisterMap.parse(register_map(), source="bench.csv")

    async def main() -> None:
        sims = []
        for d in range(count):
            behaviours: dict[str, Any] = {}
            values: dict[str, float] = {}
            for row in regmap:
                if moving and row.name.startswith("r"):
                    behaviours[row.name] = Drift(base=20.0 + d, amplitude=2.0, period=97.0)
                else:
                    values[row.name] = 20.0
            sim = ModbusSim([SimDevice(1, regmap, values=values, behaviours=behaviours)])
            await sim.start()
            sims.append(sim)
        print(json.dumps([s.port for s in sims]), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        for sim in sims:
            await sim.stop()

    asyncio.run(main())


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the native round trip (the floor) -------------------------------------------------------


def native_round_trip(port: int, count: int = 300, batches: int = 7) -> float:
    """Seconds of one plain-asyncio pymodbus read of BLOCK registers (median of batch means)."""
    from pymodbus.client import AsyncModbusTcpClient

    async def run() -> float:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
        await client.connect()
        try:
            for _ in range(50):
                await client.read_input_registers(0, count=BLOCK, device_id=1)
            means = []
            for _ in range(batches):
                start = time.perf_counter()
                for _ in range(count):
                    await client.read_input_registers(0, count=BLOCK, device_id=1)
                means.append((time.perf_counter() - start) / count)
            return statistics.median(means)
        finally:
            client.close()

    return asyncio.run(run())


# -- the gateway -----------------------------------------------------------------------------


class StepWatch(trio.abc.Instrument):
    """The longest uninterrupted trio task steps (and how many took over 5 ms)."""

    def __init__(self) -> None:
        self._began = 0.0
        self.steps: list[float] = []
        self.recording = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._began = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.recording:
            self.steps.append(time.perf_counter() - self._began)


class GcWatch:
    """Pauses of the cyclic garbage collector, by generation."""

    def __init__(self) -> None:
        self._began = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.recording = False

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self.recording:
            self.pauses[info["generation"]].append(time.perf_counter() - self._began)


class AckWatch:
    """Wraps a driver's write to note when the device acknowledged each value."""

    def __init__(self) -> None:
        self.acked: dict[tuple[Ref, float], float] = {}
        self.event = trio.Event()

    def wrap(self, kind: DriverKind) -> DriverKind:
        def factory(conn: Mapping[str, Value]) -> Driver:
            driver = kind.factory(conn)
            original = driver.write

            async def write(point: PointRec, val: Value, level: int) -> None:
                await original(point, val, level)
                if isinstance(val, Number):
                    self.acked[(point["id"], val.val)] = time.perf_counter()
                    self.event.set()
                    self.event = trio.Event()

            driver.write = write  # type: ignore[method-assign]
            return driver

        return DriverKind(kind.name, factory)

    async def wait(self, key: tuple[Ref, float], within: float) -> float | None:
        with trio.move_on_after(within):
            while key not in self.acked:
                await self.event.wait()
            return self.acked[key]
        return None


def records(ports: Sequence[int], his: bool) -> tuple[list[Any], list[Any], dict[str, Value]]:
    tuning: dict[str, Value] = {
        "id": Ref("bench"),
        "connTuning": MARKER,
        "pollTime": Number(1, "s"),
        "connCallTimeout": Number(5, "s"),
    }
    regmap = RegisterMap.parse(register_map(), source="bench.csv")
    conns, points = [], []
    for d, port in enumerate(ports):
        cid = Ref(f"dev{d}")
        conns.append(
            {
                "id": cid,
                "conn": MARKER,
                "modbusConn": MARKER,
                "dis": f"device {d}",
                "uri": Uri(f"modbus-tcp://127.0.0.1:{port}"),
                "modbusSlave": Number(1),
                "modbusRegMapUri": "bench.csv",
                "connTuningRef": tuning["id"],
            }
        )
        for row in regmap:
            rec: dict[str, Value] = {
                "id": Ref(f"d{d}.{row.name}"),
                "point": MARKER,
                "dis": f"device {d} {row.name}",
                "kind": "Number",
                "unit": "°C",
                "modbusConnRef": cid,
                "modbusCur": row.name,
            }
            if row.writable:
                rec.update({"writable": MARKER, "modbusWrite": row.name})
            if his:
                rec.update({"his": MARKER, "tz": "UTC", "hisCollectInterval": Number(1, "min")})
            points.append(rec)
    return conns, points, tuning


async def run_gateway(
    ports: Sequence[int], args: argparse.Namespace, sim_pid: int, watches: list[Any]
) -> dict[str, Any]:
    conns, points, tuning = records(ports, args.his)
    tmp = tempfile.TemporaryDirectory()
    if args.store == "sqlite":
        from gateway.storage.sqlite import SQLiteAdapter

        store: Any = SQLiteAdapter(Path(tmp.name) / "bench.db")
        await store.open()
        await store.add_records([tuning, *conns, *points])
    else:
        store = InMemoryAdapter([tuning, *conns, *points])
        await store.open()
    writes = PointWrites(store)
    watch = AckWatch()
    out: dict[str, Any] = {}
    async with open_aio_host() as aio:
        links = LinkRegistry()
        maps = RegisterMaps({"bench.csv": RegisterMap.parse(register_map(), source="bench.csv")})
        registry = DriverRegistry([watch.wrap(modbus_kind(aio, links, maps))])
        gateway = Gateway(
            store,
            registry,
            writes=writes,
            tunings=load_tunings([tuning]),
            his=HisBuffer(store),
            rng=random.Random(1),
            tune_gc=args.tune_gc,
            read_slice=args.read_slice,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.run, conns, points)
            await trio.sleep(args.warmup)
            runners = list(gateway.runners.values())
            before = {r.id: r.statistics() for r in runners}
            requests0 = sum(link.statistics().requests for link in links.links.values())
            durations: list[float] = []
            read_durations: list[float] = []
            for watch_ in watches:
                watch_.recording = True
            cpu0, wall0, sim0 = time.process_time(), time.perf_counter(), proc_cpu(sim_pid)
            latencies: list[float] = []
            rng = random.Random(2)
            end = trio.current_time() + args.seconds
            next_write = trio.current_time()
            while trio.current_time() < end:
                await trio.sleep_until(next_write)
                next_write += args.write_every
                d = rng.randrange(len(ports))
                pid = Ref(f"d{d}.w{rng.randrange(WRITABLE_PER_DEVICE):02d}")
                val = round(rng.uniform(0, 100), 2)
                t0 = time.perf_counter()
                await writes.write(pid, 8, Number(val), "bench")
                acked = await watch.wait((pid, val), within=2.0)
                if acked is not None:
                    latencies.append(acked - t0)
                for r in runners:
                    stats = r.statistics()
                    durations.append(stats.last_poll_seconds)
                    read_durations.append(stats.last_read_seconds)
            cpu1, wall1, sim1 = time.process_time(), time.perf_counter(), proc_cpu(sim_pid)
            for watch_ in watches:
                watch_.recording = False
            requests1 = sum(link.statistics().requests for link in links.links.values())
            after = {r.id: r.statistics() for r in runners}
            nursery.cancel_scope.cancel()
    await store.aclose()
    tmp.cleanup()
    wall = wall1 - wall0
    polls = sum(after[i].polls - before[i].polls for i in after)
    out["wall"] = wall
    out["polls_per_conn_per_s"] = polls / len(after) / wall
    out["skipped"] = sum(after[i].skipped_polls - before[i].skipped_polls for i in after)
    out["poll_failures"] = sum(after[i].poll_failures - before[i].poll_failures for i in after)
    writes_made = sum(after[i].writes - before[i].writes for i in after)
    reads = requests1 - requests0 - writes_made
    out["requests_per_cycle"] = reads / (polls / len(after)) if polls else 0
    out["poll_samples"] = durations
    out["read_samples"] = read_durations
    out["cpu"] = (cpu1 - cpu0) / wall
    out["sim_cpu"] = (sim1 - sim0) / wall
    out["latencies"] = latencies
    out["writes"] = len(latencies)
    return out


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--static", action="store_true", help="values that never change")
    parser.add_argument("--his", action="store_true", help="collect history (1min interval)")
    parser.add_argument("--write-every", type=float, default=0.05, help="seconds between writes")
    parser.add_argument("--read-slice", type=int, default=100, help="points per driver.read")
    parser.add_argument(
        "--tune-gc", action="store_true", help="Gateway(tune_gc=True): see the supervisor"
    )
    parser.add_argument("--serve-sims", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sims:
        serve_sims(args.serve_sims, moving=not args.static)
        return
    cmd = [sys.executable, __file__, "--serve-sims", str(DEVICES)]
    if args.static:
        cmd.append("--static")
    sims = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert sims.stdout is not None
        ports = json.loads(sims.stdout.readline())
        rtt = native_round_trip(ports[0])
        load0 = os.getloadavg()[0]
        steps, collector = StepWatch(), GcWatch()
        gc.callbacks.append(collector)
        r = trio.run(run_gateway, ports, args, sims.pid, [steps, collector], instruments=[steps])
        gc.callbacks.remove(collector)
        load1 = os.getloadavg()[0]
    finally:
        if sims.stdin:
            sims.stdin.close()
        sims.wait(10)
    n_points = DEVICES * POINTS_PER_DEVICE
    cycle = [statistics.fmean(r["read_samples"]) * DEVICES]
    whole = statistics.fmean(r["poll_samples"]) * DEVICES
    floor = r["requests_per_cycle"] * rtt
    lat_ms = [x * 1000 for x in r["latencies"]]
    print(
        f"{n_points} f4 points on {DEVICES} simulated devices, pollTime 1s, store={args.store}"
        f"{', history' if args.his else ''}{', static values' if args.static else ''}"
        f"{', tune_gc' if args.tune_gc else ''}, read slice {args.read_slice}"
    )
    print(
        f"window {r['wall']:.1f} s after {args.warmup:.0f} s warm-up; {os.cpu_count()} cores, "
        f"load average {load0:.2f} before, {load1:.2f} after"
    )
    print(
        f"poll rate      {r['polls_per_conn_per_s']:.3f} polls/s per connector "
        f"(skipped slots {r['skipped']}, failed polls {r['poll_failures']})"
    )
    print(
        f"requests       {r['requests_per_cycle']:.1f} Modbus read requests per cycle "
        f"(native round trip of {BLOCK} registers: {rtt * 1000:.3f} ms)"
    )
    print(
        f"cycle time     {cycle[0] * 1000:.1f} ms of driver.read to read all points once "
        f"(sum over the connectors; p99 per connector {pct(r['read_samples'], 0.99) * 1000:.1f}"
        f" ms); with the store updates {whole * 1000:.1f} ms"
    )
    print(f"floor          {floor * 1000:.1f} ms  ->  cycle/floor = {cycle[0] / floor:.2f}")
    print(
        f"CPU gateway    {r['cpu'] * 100:.1f} % of one core "
        f"(simulators: {r['sim_cpu'] * 100:.1f} %)"
    )
    long_steps = [x for x in steps.steps if x > 0.005]
    print(
        f"trio steps     {len(steps.steps)} steps, {len(long_steps)} over 5 ms, "
        f"longest {max(steps.steps, default=0) * 1000:.1f} ms"
    )
    pauses = ", ".join(
        f"gen{g} n={len(p)} max {max(p, default=0) * 1000:.1f} ms"
        for g, p in collector.pauses.items()
    )
    print(f"gc pauses      {pauses}")
    if lat_ms:
        print(
            f"pointWrite->register  n={len(lat_ms)}  p50 {statistics.median(lat_ms):.2f} ms  "
            f"p99 {pct(lat_ms, 0.99):.2f} ms  max {max(lat_ms):.2f} ms"
        )


if __name__ == "__main__":
    main()
