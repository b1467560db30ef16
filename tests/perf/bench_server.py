"""The Haystack server over HTTP (issue 3), optionally side by side with haystack-py 0.1.10.

    .venv/bin/python -m tests.perf.bench_server [--compare] [--formats zinc,json]
        [--reps N] [--duration S] [--keep DIR] [--py-spy]

Our server is started the way the appliance starts it: ``create_app`` over a ``SQLiteAdapter``
on a file, served by ``gateway.web.tls.serve`` (Hypercorn under trio) on 127.0.0.1, in a
subprocess of its own, authentication off. The dataset is ../shared/bench/serve_hspy.py's (10
sites, 100 equips, 10,000 points, @his-main with 100,000 one-minute samples ending now, an empty
@his-write), written by ``serve_hspy.py 0 --dump`` and loaded through the storage API
(``add_records``, ``his_write``) into a SQLite file before any server starts; each server run
gets a fresh copy of that file.

For each format, ../shared/bench/haystack_load.py measures our server (and with ``--compare``
haystack-py's: ``serve_hspy.py`` under uvicorn, up at the same time): ``--rounds`` runs of it per
server, the servers taking turns run by run so that a change of machine load hits both alike,
their samples pooled. Printed: median and p90 of read ``point and temp and sensor``, read by 1
and 100 ids, hisRead of one day and of the whole range, pointWrite, watchSub of 1,000 ids +
watchPoll, hisWrite of 1,000 samples; read-by-id requests/s with 8 client threads; the server's
RSS after the last run; every wrong answer haystack_load recorded (ratios are left out where
either side answered wrongly).

The web stack's own ceiling is measured in the same run: a trivial Quart-Trio app on the same
Hypercorn serving function (one route that reads the request body and answers a fixed small
Zinc grid) under the same load as haystack_load's
throughput test (8 threads, one keep-alive ``http.client`` connection each, pre-encoded
``read`` bodies of a random id, for the same duration), taking turns with our read-by-id under
that same client. Their ratio is issue 3's ">= 85% of a trivial app" figure.

The transport floor is printed too: for read 100 ids, watchSub and hisWrite, one real request
to our server gives the sizes of the request and response bodies, then the same sizes go
through httpx (as haystack_load sends) to a raw ASGI route of that trivial server that only
reads the body and answers that many bytes. No server on this stack and client answers faster;
a 2x target at or below it cannot be met.

Targets (issue 3, same machine, every answer correct): the bulk operations (read of the 1,500
matching points, read of 100 ids, hisRead, watchSub, hisWrite) and the RSS at least 2x better
than haystack-py; read-by-id throughput >= 85% of the trivial app's. ``--py-spy`` records our
server with py-spy during each load run and prints where its time goes. Bounded: every
subprocess has a timeout, every load a duration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a file: make ``tests.perf`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.perf.common import (
    ROOT,
    SHARED_BENCH,
    hspy_python,
    machine_load,
    pct,
    start_py_spy,
    stop_py_spy,
    target_cell,
)

MODULE = "tests.perf.bench_server"
COMPARE = True  # tests.perf passes --compare on to this module
LOAD = SHARED_BENCH / "haystack_load.py"
SERVE_HSPY = SHARED_BENCH / "serve_hspy.py"
N_POINTS, N_HIS = 10_000, 100_000
FILTER = "point and temp and sensor"
READY_TIMEOUT = 180.0
LOAD_TIMEOUT = 900.0
TRIVIAL_BODY = b'ver:"3.0"\nid,dis\n@pt-0,"Equip 0 temp 0"\n'
# (haystack_load op, label, target: hs_py median / ours median)
OPS: tuple[tuple[str, str, float | None], ...] = (
    (f"read `{FILTER}`", "read 1,500 points (filter)", 2),
    ("read 1 id", "read 1 id", None),
    ("read 100 ids", "read 100 ids", 2),
    ("hisRead 1 day", "hisRead 1 day", None),
    ("hisRead full range", "hisRead 100,000 samples", 2),
    ("pointWrite level 8", "pointWrite level 8", None),
    ("pointWrite read array", "pointWrite read array", None),
    ("watchSub 1000 ids", "watchSub 1,000 ids", 2),
    ("watchPoll refresh", "watchPoll refresh (1,000)", None),
    ("watchPoll (no changes)", "watchPoll no changes", None),
    ("hisWrite 1000 samples", "hisWrite 1,000 samples", 2),
)


# -- the servers (subprocess entry points) -------------------------------------------------------


def _hyper_config() -> Any:
    """Hypercorn settings as the appliance's ``serve`` sets them, bound to 127.0.0.1:0."""
    import logging

    from hypercorn.config import Config

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 5.0
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def _serve(app: Any) -> int:
    """Serve ``app`` until SIGTERM/SIGINT; print ``READY <port>`` once listening."""
    from functools import partial

    import trio

    from gateway.web.tls import serve

    async def run() -> None:
        stop = trio.Event()
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                serving = partial(serve, app, _hyper_config(), shutdown_trigger=stop.wait)
                binds = await nursery.start(serving)
                print(f"READY {binds[0].rsplit(':', 1)[1]}", flush=True)
                async for _ in signals:
                    break
                stop.set()

    trio.run(run)
    return 0


def serve_ours(db: str) -> int:
    from gateway.storage.sqlite import SQLiteAdapter
    from gateway.web.app import create_app

    return _serve(create_app(storage=SQLiteAdapter(db)))


def serve_trivial() -> int:
    from quart import Response, request
    from quart_trio import QuartTrio

    app = QuartTrio("trivial")
    headers = {"Content-Type": "text/zinc; charset=utf-8", "Cache-Control": "no-cache, no-store"}

    @app.route("/api/read", methods=["POST"])
    async def read() -> Response:
        # Reads the request body as any POST handler does (one that left it unread served
        # ~125 requests/s here: the keep-alive connection stalls), then a fixed small grid.
        await request.get_data(cache=False)
        return Response(TRIVIAL_BODY, headers=headers)

    async def with_floor(scope: Any, receive: Any, send: Any) -> None:
        # /floor/N: raw ASGI, as our op routes are: read the whole body, answer N bytes.
        if scope["type"] != "http" or not scope["path"].startswith("/floor/"):
            await app(scope, receive, send)
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        size = int(scope["path"].rsplit("/", 1)[1])
        head = [(b"content-type", b"text/plain"), (b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": b"x" * size})

    return _serve(with_floor)


class Server:
    """A server subprocess that prints ``READY [port]`` on stdout when it listens; its stderr
    goes to ``log`` (a pipe nobody reads could fill up and stall it)."""

    def __init__(self, label: str, argv: list[str], log: Path, port: int | None = None) -> None:
        self.label = label
        self.log = log
        with log.open("w") as err:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        line = ""
        while not line.startswith("READY"):
            left = deadline - time.monotonic()
            ready = select.select([self.proc.stdout], [], [], max(0.0, left))[0] if left > 0 else []
            line = self.proc.stdout.readline() if ready else ""
            if not line and (not ready or self.proc.poll() is not None):
                self.stop()
                raise RuntimeError(f"{label} did not start: {log.read_text()[-2000:]}")
        words = line.split()
        self.port = port if port is not None else int(words[1])
        self.base = f"http://127.0.0.1:{self.port}/api"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the dataset --------------------------------------------------------------------------------


def dump_dataset(hspy: str, out: Path) -> None:
    subprocess.run(
        [
            hspy,
            str(SERVE_HSPY),
            "0",
            "--points",
            str(N_POINTS),
            "--his",
            str(N_HIS),
            "--dump",
            str(out),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )


def load_dataset(dump: Path, db: Path) -> tuple[int, int, float]:
    """The dumped grids into a new SQLite file through the storage API: (records, samples, s)."""
    import trio

    from gateway.haystack.codecs import zinc
    from gateway.haystack.kinds import Ref
    from gateway.storage.sqlite import SQLiteAdapter

    async def load() -> tuple[int, int]:
        store = SQLiteAdapter(db)
        await store.open()
        try:
            grid = zinc.decode_grid((dump / "entities.zinc").read_bytes())
            records = [{k: v for k, v in row.items() if v is not None} for row in grid.rows]
            await store.add_records(records)
            his = zinc.decode_grid((dump / "his-main.zinc").read_bytes())
            point = his.meta["id"]
            assert isinstance(point, Ref)
            samples = [(row["ts"], row["val"]) for row in his.rows]
            for i in range(0, len(samples), 10_000):
                await store.his_write(point, samples[i : i + 10_000])
            return len(records), len(samples)
        finally:
            await store.aclose()

    start = time.perf_counter()
    n_records, n_samples = trio.run(load)
    return n_records, n_samples, time.perf_counter() - start


# -- load runs ----------------------------------------------------------------------------------


def run_load(server: Server, fmt: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One haystack_load.py run against ``server``; its JSON results."""
    argv = [sys.executable, str(LOAD), "--base", server.base, "--format", fmt]
    argv += ["--server-pid", str(server.pid), "--label", server.label, "--out", str(out)]
    argv += ["--expect-filter-rows", str(N_POINTS * 3 // 20), "--his-samples", str(N_HIS)]
    argv += ["--reps", str(args.reps), "--duration", str(args.duration)]
    subprocess.run(argv, check=True, timeout=LOAD_TIMEOUT, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Several rounds of haystack_load against one server as one result of the same shape:
    samples pooled (median and p90 of all of them), failures summed, throughput as total
    requests over total time, RSS before the first round and after the last."""
    ops: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, o in result["ops"].items():
            m = ops.setdefault(
                name, {"samples_ms": [], "rows": [], "runs": 0, "failed": 0, "errors": []}
            )
            m["samples_ms"] += o["samples_ms"]
            m["rows"] += [r for r in o["rows"] if r not in m["rows"]]
            m["runs"] += o["runs"]
            m["failed"] += o["failed"]
            m["errors"] += [e for e in o["errors"] if e not in m["errors"]][: 3 - len(m["errors"])]
    for m in ops.values():
        samples = m["samples_ms"]
        m["median_ms"] = pct(samples, 50) if samples else None
        m["p90_ms"] = pct(samples, 90) if samples else None
    tps = [r["throughput"] for r in results if r.get("throughput")]
    throughput = None
    if tps:
        requests = sum(t["requests"] for t in tps)
        seconds = sum(t["duration_s"] for t in tps)
        throughput = {
            **tps[0],
            "duration_s": round(seconds, 2),
            "requests": requests,
            "req_per_s": round(requests / seconds, 1),
            "p50_ms": pct([t["p50_ms"] for t in tps], 50),
            "p90_ms": pct([t["p90_ms"] for t in tps], 50),
            "p99_ms": max(t["p99_ms"] for t in tps),
            "failed": sum(t["failed"] for t in tps),
            "errors": [e for t in tps for e in t["errors"]][:3],
            "client_cpu_pct": round(sum(t["client_cpu_pct"] for t in tps) / len(tps)),
            "server_cpu_pct": round(sum(t["server_cpu_pct"] or 0 for t in tps) / len(tps)),
        }
    server = None
    if results[0].get("server"):
        server = {"before": results[0]["server"]["before"], "after": results[-1]["server"]["after"]}
    meta = {**results[-1]["meta"], "rounds": len(results)}
    return {"meta": meta, "ops": ops, "throughput": throughput, "server": server}


def _has_id(body: bytes, i: int) -> bool:
    """Whether a Zinc body holds the Ref ``@pt-i`` (as haystack_load checks it)."""
    needle = f"@pt-{i}".encode()
    at = body.find(needle)
    while at >= 0:
        end = at + len(needle)
        if end == len(body) or body[end : end + 1] in (b" ", b",", b"\n", b"\r"):
            return True
        at = body.find(needle, end)
    return False


def raw_throughput(base: str, duration: float, check: bool, threads: int = 8) -> dict[str, Any]:
    """haystack_load's throughput test in essence: ``threads`` keep-alive stdlib connections
    POSTing pre-encoded Zinc ``read`` grids of a random id for ``duration`` seconds; with
    ``check``, each answer must hold the id asked for."""
    import http.client

    bodies = [f'ver:"3.0"\nid\n@pt-{i}\n'.encode() for i in range(N_POINTS)]
    headers = {"Accept": "text/zinc", "Content-Type": "text/zinc; charset=utf-8"}
    path = "/" + base.split("/", 3)[3] + "/read"
    host, port = base.split("/")[2].split(":")
    lats: list[float] = []
    failed = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def worker(seed: int) -> None:
        rnd, mine, bad = random.Random(seed), [], 0
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.perf_counter() < stop:
            i = rnd.randrange(N_POINTS)
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=bodies[i], headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                continue
            mine.append(time.perf_counter() - t0)
            if resp.status != 200 or (check and not _has_id(body, i)):
                bad += 1
        conn.close()
        with lock:
            lats.extend(mine)
            failed[0] += bad

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wall = time.perf_counter() - start
    return {
        "requests": len(lats),
        "seconds": wall,
        "req_per_s": len(lats) / wall,
        "p50_ms": pct(lats, 50) * 1000 if lats else None,
        "failed": failed[0],
    }


def stack_ceiling(
    ours: Server, trivial: Server, duration: float, pairs: int
) -> dict[str, dict[str, Any]]:
    """Our read-by-id and the trivial app under the same client, taking turns."""
    runs: dict[str, list[dict[str, Any]]] = {"ours read by id": [], "trivial app": []}
    for _ in range(pairs):
        runs["ours read by id"].append(raw_throughput(ours.base, duration, check=True))
        runs["trivial app"].append(raw_throughput(trivial.base, duration, check=False))
    out = {}
    for name, got in runs.items():
        requests = sum(r["requests"] for r in got)
        seconds = sum(r["seconds"] for r in got)
        out[name] = {
            "req_per_s": requests / seconds,
            "runs": [round(r["req_per_s"]) for r in got],
            "p50_ms": [round(r["p50_ms"], 2) for r in got if r["p50_ms"] is not None],
            "failed": sum(r["failed"] for r in got),
        }
    return out


# -- the transport floor ------------------------------------------------------------------------

#: The bulk operations whose round trip is mostly the web stack's (haystack_load's names).
FLOOR_OPS: tuple[str, ...] = ("read 100 ids", "watchSub 1000 ids", "hisWrite 1000 samples")


def probe_sizes(base: str, fmt: str) -> dict[str, tuple[int, int]]:
    """(request, response) body bytes of the bulk operations, from one request each to our
    server, encoded by ../shared/bench/haystack_wire.py as haystack_load encodes them."""
    sys.path.insert(0, str(SHARED_BENCH))
    from haystack_wire import DT, Hay, HsError, M, Num, Ref, decode

    hay = Hay(base, fmt)
    rnd = random.Random(7)
    ids = [Ref(f"pt-{i}") for i in rnd.sample(range(N_POINTS), 1000)]
    # @his-write is in New_York; a range haystack_load's own hisWrite (2020) does not touch
    zone = ZoneInfo("America/New_York")
    start = dt.datetime(2019, 6, 1, tzinfo=zone)
    stamps = [(start + dt.timedelta(minutes=i)).isoformat() for i in range(1000)]
    grids: dict[str, tuple[str, dict[str, Any], list[str], list[dict[str, Any]]]] = {
        "read 100 ids": ("read", {}, ["id"], [{"id": i} for i in ids[:100]]),
        "watchSub 1000 ids": (
            "watchSub",
            {"watchDis": "floor probe", "lease": Num(60, "s")},
            ["id"],
            [{"id": i} for i in ids],
        ),
        "hisWrite 1000 samples": (
            "hisWrite",
            {"id": Ref("his-write")},
            ["ts", "val"],
            [{"ts": DT(t, "New_York"), "val": Num(float(i), "kW")} for i, t in enumerate(stamps)],
        ),
    }
    sizes = {}
    for op, (name, meta, cols, rows) in grids.items():
        body = hay.enc(meta, cols, rows)
        response = hay.c.post(name, content=body)
        try:  # (HsError for an HTTP error or an error grid)
            answer, _, _ = decode(fmt, response.status_code, response.content)
        except HsError as exc:
            raise RuntimeError(f"floor probe {name}: {exc}") from None
        sizes[op] = (len(body), len(response.content))
        if name == "watchSub":
            hay.call("watchUnsub", {"watchId": answer["watchId"], "close": M}, [])
    hay.c.close()
    return sizes


def transport_floor(
    trivial: Server, sizes: dict[str, tuple[int, int]], reps: int = 40
) -> dict[str, float]:
    """Median ms of a POST of the same sizes to a raw ASGI route that does nothing but read
    the body and answer that many bytes, on the same Hypercorn, through httpx as haystack_load
    sends: what no server on this stack and client can go under."""
    import httpx

    root = trivial.base.rsplit("/api", 1)[0]
    out = {}
    with httpx.Client(timeout=30) as client:
        for op, (request_bytes, response_bytes) in sizes.items():
            body = b"y" * request_bytes
            lats = []
            for k in range(reps + 5):
                t0 = time.perf_counter()
                client.post(f"{root}/floor/{response_bytes}", content=body).read()
                if k >= 5:
                    lats.append((time.perf_counter() - t0) * 1000)
            out[op] = pct(lats, 50)
    return out


def report_floor(
    fmt: str,
    sizes: dict[str, tuple[int, int]],
    floor: dict[str, float],
    ours: dict[str, Any],
    theirs: dict[str, Any] | None,
) -> None:
    print(f"\n{fmt}: transport floor (a raw ASGI route on the same Hypercorn, same bodies)")
    for op in FLOOR_OPS:
        label = next(lbl for name, lbl, _ in OPS if name == op)
        request_bytes, response_bytes = sizes[op]
        line = f"  {label:28}{floor[op]:7.2f} ms  ({request_bytes:,} B in, {response_bytes:,} out)"
        _, med, _ = _op_cell(ours, op)
        if med:
            line += f"; ours {med:.2f}"
        _, other, _ = _op_cell(theirs, op)
        if other:
            line += f"; 2x target {other / 2:.2f}"
            if other / 2 <= floor[op]:
                line += " (below the floor)"
        print(line)


# -- the report ----------------------------------------------------------------------------------


def _op_cell(result: dict[str, Any] | None, op: str) -> tuple[str, float | None, bool]:
    """'median (p90)' of an op, its median, whether any answer was wrong."""
    o = (result or {}).get("ops", {}).get(op)
    if not o or o.get("median_ms") is None:
        return "", None, False
    wrong = bool(o["failed"])
    return f"{o['median_ms']:.2f} ({o['p90_ms']:.2f}){' ✗' if wrong else ''}", o["median_ms"], wrong


def _rss_mib(result: dict[str, Any] | None, when: str = "after", key: str = "VmRSS_kB") -> float:
    kb = ((result or {}).get("server") or {}).get(when, {}).get(key)
    return kb / 1024 if kb else 0.0


def _rss_cell(result: dict[str, Any] | None) -> str:
    """'after (before / peak)' in MiB."""
    return (
        f"{_rss_mib(result):.0f} ({_rss_mib(result, 'before'):.0f}/"
        f"{_rss_mib(result, 'after', 'VmHWM_kB'):.0f})"
    )


def report(fmt: str, ours: dict[str, Any], theirs: dict[str, Any] | None) -> None:
    print(f"\n{fmt}: median (p90) ms{'' if theirs is None else ', ratio = haystack-py / ours'}")
    head = f"  {'op':28}{'ours':>18}"
    if theirs is not None:
        head += f"{'haystack-py':>18}{'ratio':>8}  target"
    print(head)
    for op, label, target in OPS:
        cell, med, wrong = _op_cell(ours, op)
        line = f"  {label:28}{cell:>18}"
        if theirs is not None:
            other_cell, other, other_wrong = _op_cell(theirs, op)
            line += f"{other_cell:>18}"
            if wrong or other_wrong:
                line += "     n/a  (wrong answers)"
            elif other and med:
                line += f"{other / med:7.2f}x  {target_cell(other / med, target)}"
        print(line)
    tp, tp_h = ours.get("throughput") or {}, (theirs or {}).get("throughput") or {}
    line = f"  {'read-by-id req/s, 8 clients':28}{tp.get('req_per_s', 0):>18.0f}"
    if theirs is not None:
        line += f"{tp_h.get('req_per_s', 0):>18.0f}"
    print(
        line
        + f"   (server CPU {tp.get('server_cpu_pct')}%, client CPU {tp.get('client_cpu_pct')}%)"
    )
    rss, rss_h = _rss_mib(ours), _rss_mib(theirs)
    line = f"  {'RSS MiB after (before/peak)':28}{_rss_cell(ours):>18}"
    if theirs is not None and rss and rss_h:
        line += f"{_rss_cell(theirs):>18}{rss_h / rss:7.2f}x  {target_cell(rss_h / rss, 2)}"
    print(line)
    for result in (ours, theirs):
        if result is not None:
            print(f"  wrong answers ({result['meta']['label']}): {wrong_answers(result)}")


def wrong_answers(result: dict[str, Any]) -> str:
    fails = [
        f"{op}: {o['failed']}/{o['runs']} ({'; '.join(o['errors'])})"
        for op, o in result["ops"].items()
        if o["failed"]
    ]
    tp = result.get("throughput") or {}
    if tp.get("failed"):
        fails.append(f"throughput: {tp['failed']} ({'; '.join(tp['errors'])})")
    return "none" if not fails else "\n    " + "\n    ".join(fails)


def report_ceiling(ceiling: dict[str, dict[str, Any]], duration: float) -> None:
    ours, trivial = ceiling["ours read by id"], ceiling["trivial app"]
    print(f"\nweb stack ceiling: one client, 8 threads, {duration:g} s per run, runs in turns")
    for name, got in ceiling.items():
        line = (
            f"  {name:16}{got['req_per_s']:8.0f} req/s  runs {got['runs']} p50 ms {got['p50_ms']}"
        )
        print(line + (f"  FAILED {got['failed']}" if got["failed"] else ""))
    ratio = ours["req_per_s"] / trivial["req_per_s"]
    verdict = "ok" if ratio >= 0.85 else "MISSED"
    print(f"  ours / trivial app = {ratio:.0%}   target >= 85% {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", action="store_true", help="haystack-py's server too")
    ap.add_argument("--formats", default="zinc,json")
    ap.add_argument("--rounds", type=int, help="load runs per server, in turns (2; 3 compare)")
    ap.add_argument("--reps", type=int, help="timed reps per op and round (5; 7 compare)")
    ap.add_argument("--duration", type=float, help="throughput seconds per round (3; 4 compare)")
    ap.add_argument("--pairs", type=int, default=2, help="turns of the stack-ceiling test")
    ap.add_argument("--keep", help="keep the dataset, databases and results in this directory")
    ap.add_argument("--py-spy", action="store_true", help="profile our server during each load")
    ap.add_argument("--serve-ours", metavar="DB", help=argparse.SUPPRESS)
    ap.add_argument("--serve-trivial", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_ours:
        return serve_ours(args.serve_ours)
    if args.serve_trivial:
        return serve_trivial()
    args.rounds = args.rounds or (3 if args.compare else 2)
    args.reps = args.reps or (7 if args.compare else 5)
    args.duration = args.duration or (4.0 if args.compare else 3.0)
    formats = [f for f in args.formats.split(",") if f]
    print(
        f"== server: {N_POINTS:,} points, {N_HIS:,} samples; {args.rounds} rounds of "
        f"{args.reps} reps per op and {args.duration:g} s of throughput, servers in turns; "
        f"machine: {machine_load()}"
    )
    work = Path(args.keep or tempfile.mkdtemp(prefix="hsgw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    try:
        hspy = hspy_python()
        dump_dataset(hspy, work / "dataset")
        pristine = work / "pristine.db"
        pristine.unlink(missing_ok=True)
        n_rec, n_his, secs = load_dataset(work / "dataset", pristine)
        print(f"loaded {n_rec:,} records and {n_his:,} samples into SQLite in {secs:.1f} s")
        trivial_cmd = [sys.executable, "-m", MODULE, "--serve-trivial"]
        trivial = Server("trivial", trivial_cmd, work / "trivial.log")
        servers.append(trivial)
        files: list[str] = []
        for fmt in formats:
            db = work / f"ours-{fmt}.db"
            shutil.copyfile(pristine, db)
            contenders = {"ours": [sys.executable, "-m", MODULE, "--serve-ours", str(db)]}
            ports: dict[str, int | None] = {"ours": None}  # ours binds port 0 and says which
            if args.compare:
                ports["haystack-py"] = port = free_port()
                contenders["haystack-py"] = [hspy, str(SERVE_HSPY), str(port)]
                contenders["haystack-py"] += ["--points", str(N_POINTS), "--his", str(N_HIS)]
            running = {
                label: Server(label, cmd, work / f"{label}-{fmt}.log", ports[label])
                for label, cmd in contenders.items()
            }
            servers += running.values()
            profile = work / f"ours-{fmt}.pyspy"
            spy = start_py_spy(running["ours"].pid, profile) if args.py_spy else None
            rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in running}
            order = list(running)
            for r in range(args.rounds):
                for label in order[r % len(order) :] + order[: r % len(order)]:
                    out = work / f"{label}-{fmt}-{r}.json"
                    rounds[label].append(run_load(running[label], fmt, out, args))
            if spy is not None:
                stop_py_spy(spy, profile)
            merged = {label: merge(got) for label, got in rounds.items()}
            for label, result in merged.items():
                path = work / f"{label}-{fmt}.json"
                path.write_text(json.dumps(result, indent=1))
                files.append(str(path))
            ceiling = None
            if fmt == formats[0]:
                ceiling = stack_ceiling(running["ours"], trivial, args.duration, args.pairs)
            sizes = probe_sizes(running["ours"].base, fmt)
            floor = transport_floor(trivial, sizes)
            for server in running.values():
                server.stop()
            report(fmt, merged["ours"], merged.get("haystack-py"))
            report_floor(fmt, sizes, floor, merged["ours"], merged.get("haystack-py"))
            if ceiling is not None:
                report_ceiling(ceiling, args.duration)
        table = subprocess.run(
            [sys.executable, str(LOAD), "--compare", *files],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        print("\nhaystack_load.py --compare:\n" + table.stdout)
    finally:
        for server in servers:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"machine after: {machine_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
