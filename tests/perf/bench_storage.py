"""Storage adapter micro-benchmark (scratch): the server bench's dataset, without HTTP.

    .venv/bin/python tests/perf/bench_storage.py [--points 10000] [--his 100000] [--runs 7]

Runs each adapter in a fresh subprocess (so RSS figures are not mixed) and prints, per adapter,
the median and p90 in ms of: add the dataset, read ``point and temp and sensor``, read 100 ids,
hisWrite of the 100,000-sample history (batches of 10,000) and of 1,000 samples, hisRead of one
day and of the whole range, watchSub of 1,000 ids + a poll after 100 curVal changes; and the
process RSS after loading (with a Python baseline of the imports alone).

Dataset as ../shared/bench/serve_hspy.py describes it (10 sites, 100 equips, N points, one
history point with M one-minute samples), rebuilt here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as a file: make ``tests.perf`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.haystack.tz import hs_tz
from gateway.storage.common import IndexedAdapter
from gateway.storage.memory import InMemoryAdapter
from gateway.storage.sqlite import SQLiteAdapter
from tests.perf.common import dataset_points

TZ = hs_tz("New_York")


def entities(n_points: int) -> list[dict[str, Value]]:
    ents: list[dict[str, Value]] = []
    for s in range(10):
        ents.append({"id": Ref(f"site-{s}"), "dis": f"Site {s}", "site": MARKER, "tz": "New_York"})
    for e in range(100):
        ents.append(
            {
                "id": Ref(f"equip-{e}"),
                "dis": f"Equip {e}",
                "equip": MARKER,
                ("ahu" if e % 10 == 0 else "vav"): MARKER,
                "siteRef": Ref(f"site-{e % 10}"),
            }
        )
    ents += dataset_points(n_points, Ref, Number, MARKER)
    for pid in ("his-main", "his-write"):
        ents.append(
            {
                "id": Ref(pid),
                "point": MARKER,
                "sensor": MARKER,
                "his": MARKER,
                "kind": "Number",
                "unit": "kW",
                "tz": "New_York",
            }
        )
    return ents


def history(m: int, end: dt.datetime) -> list[tuple[dt.datetime, Number]]:
    start = end - dt.timedelta(minutes=m - 1)
    return [
        (
            (start + k * dt.timedelta(minutes=1)).astimezone(TZ),
            Number(20.0 + (k % 1440) / 100, "kW"),
        )
        for k in range(m)
    ]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {
        "median": round(statistics.median(samples), 2),
        "p90": round(samples[min(len(samples) - 1, int(len(samples) * 0.9))], 2),
    }


async def run_one(kind: str, n_points: int, m: int, runs: int) -> dict[str, Any]:
    base_rss = rss_kib()
    out: dict[str, Any] = {"adapter": kind, "rss_baseline_mib": round(base_rss / 1024, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        store: IndexedAdapter = (
            InMemoryAdapter() if kind == "memory" else SQLiteAdapter(Path(tmp) / "bench.db")
        )
        await store.open()
        ents = entities(n_points)
        t = time.perf_counter()
        await store.add_records(ents)
        out["add_records_ms"] = round((time.perf_counter() - t) * 1000, 1)
        del ents
        end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        samples = history(m, end)
        t = time.perf_counter()
        for i in range(0, m, 10_000):
            await store.his_write(Ref("his-main"), samples[i : i + 10_000])
        out["his_write_all_ms"] = round((time.perf_counter() - t) * 1000, 1)
        del samples
        gc.collect()
        out["rss_loaded_mib"] = round(rss_kib() / 1024, 1)

        rows = await store.read_by_filter("point and temp and sensor")
        assert len(rows) == n_points * 3 // 20, len(rows)
        out["read_filter"] = await timed(
            lambda: store.read_by_filter("point and temp and sensor"), runs
        )
        ids = [Ref(f"pt-{i * 37 % n_points}") for i in range(100)]
        out["read_100_ids"] = await timed(lambda: store.read_by_ids(ids), runs)
        everything = await store.his_read(Ref("his-main"))
        assert len(everything) == m
        out["his_read_all"] = await timed(lambda: store.his_read(Ref("his-main")), runs)
        cols = await store.his_read_columns(Ref("his-main"))
        assert len(cols) == m and cols.samples() == everything
        del everything, cols
        out["his_read_columns_all"] = await timed(
            lambda: store.his_read_columns(Ref("his-main")), runs
        )

        async def columns_to_zinc_rows() -> None:
            # what an encoder could do with the columns: Zinc rows of ts,val
            cols = await store.his_read_columns(Ref("his-main"))
            fromts, tz, unit = dt.datetime.fromtimestamp, cols.tz, cols.unit or ""
            tail = " New_York,"
            "\n".join(
                [
                    fromts(t, tz).isoformat() + tail + repr(v) + unit
                    for t, v in zip(cols.times, cols.nums, strict=True)
                ]
            )

        out["his_read_columns_to_zinc_rows"] = await timed(columns_to_zinc_rows, runs)
        day = end - dt.timedelta(days=1)
        out["his_read_day"] = await timed(lambda: store.his_read(Ref("his-main"), day), runs)

        counter = iter(range(10**9))

        async def write_1000() -> None:
            k = next(counter)
            start = end + dt.timedelta(days=k + 1)
            batch = [(start + dt.timedelta(minutes=j), Number(float(j), "kW")) for j in range(1000)]
            await store.his_write(Ref("his-write"), batch)

        out["his_write_1000"] = await timed(write_1000, runs)
        watch_ids = [Ref(f"pt-{i}") for i in range(1000)]

        async def sub_and_poll() -> None:
            info = await store.watch_sub(None, "bench", watch_ids, 60, 0)
            k = next(counter)  # new values on every run
            await store.update_records(
                [{"id": Ref(f"pt-{i}"), "curVal": Number(i + k, "°F")} for i in range(0, 1000, 10)]
            )
            changed = await store.watch_poll(info.watch_id, False, 1)
            assert len(changed) == 100, len(changed)
            await store.watch_unsub(info.watch_id, None)

        out["watch_sub_1000_poll"] = await timed(sub_and_poll, runs)
        await store.aclose()
        if kind == "sqlite":
            t = time.perf_counter()
            again = SQLiteAdapter(Path(tmp) / "bench.db")
            await again.open()
            out["reopen_ms"] = round((time.perf_counter() - t) * 1000, 1)
            assert (
                len(await again.read_by_filter("point and temp and sensor")) == n_points * 3 // 20
            )
            await again.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--his", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--one", choices=["memory", "sqlite"])
    args = parser.parse_args()
    if args.one:
        result = trio.run(run_one, args.one, args.points, args.his, args.runs)
        print(json.dumps(result))
        return
    for kind in ("memory", "sqlite"):
        argv = ["--one", kind, "--points", str(args.points), "--his", str(args.his)]
        proc = subprocess.run(
            [sys.executable, __file__, *argv, "--runs", str(args.runs)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        print(json.dumps(json.loads(proc.stdout), indent=1))


if __name__ == "__main__":
    main()
