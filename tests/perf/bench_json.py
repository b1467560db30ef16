"""JSON v4 / v3 codec throughput, optionally side by side with haystack-py (hs_py).

    .venv/bin/python tests/perf/bench_json.py [--runs 5] [--compare] [--hspy-python PATH]
    .venv/bin/python tests/perf/bench_json.py --scale

Grids (the issue's two): a 10,000-row x 13-column point grid (id Ref with dis, dis, markers,
kind, unit, tz, siteRef/equipRef, curVal Number with unit) and a 100,000-row history grid (ts
DateTime in New_York, val Number in kW); plus "sparse", 10,000 points whose rows carry
different tags (18 columns, many nulls), which the JSON v4 reader's fast row path cannot take.
Every run builds fresh grid objects for encode and a fresh copy of the bytes for decode; the
best of ``--runs`` runs is reported (rows per second). ``--scale`` decodes JSON v4 histories of
125,000 to 1,000,000 rows (fast path and general reader) to show the rate stays flat.

``--compare`` runs the same measurements with hs_py 0.1.10 (its ``encoding.json``, on orjson)
in the Python 3.13 virtualenv where it is installed, alternating rounds with ours so that a busy
machine slows both alike, and prints the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import inspect
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

HSPY_PYTHON = "/root/.cache/hspybench/venv/bin/python"
POINTS, HIS = 10_000, 100_000

COLS: tuple[str, ...] = ("id", "dis", "point", "his", "sensor", "temp", "kind", "unit", "tz")
COLS += ("siteRef", "equipRef", "curVal", "air")


# The two row builders take the kinds as arguments, so that the same source builds hs_py's
# grids in its own interpreter (see hspy_round).
def point_rows(n: int, Ref: Any, Number: Any, MARKER: Any) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        e = i % 100
        rows.append(
            {
                "id": Ref(f"pt-{i}", f"Equip {e} temp {i}"),
                "dis": f"Equip {e} temp {i}",
                "point": MARKER,
                "his": MARKER,
                "sensor": MARKER,
                "temp": MARKER,
                "kind": "Number",
                "unit": "°F",
                "tz": "New_York",
                "siteRef": Ref(f"site-{e % 10}"),
                "equipRef": Ref(f"equip-{e}"),
                "curVal": Number(50.0 + (i % 400) * 0.25, "°F"),
                "air": MARKER,
            }
        )
    return rows


def sparse_rows(n: int, Ref: Any, Number: Any, MARKER: Any) -> list[dict[str, Any]]:
    # Rows with different tag sets (like serve_hspy's points): the fast row path cannot apply.
    qtys = (("temp", "°F"), ("humidity", "%RH"), ("pressure", "inH₂O"), ("flow", "cfm"))
    rows = []
    for i in range(n):
        qty, unit = qtys[i % 4]
        e = i % 100
        row = {"id": Ref(f"pt-{i}"), "dis": f"Equip {e} {qty} {i}", "point": MARKER, qty: MARKER}
        if (i // 5) % 4 == 3:
            row["cmd"] = MARKER
            row["writable"] = MARKER
        else:
            row["sensor"] = MARKER
        row.update(
            {
                "his": MARKER,
                "kind": "Number",
                "unit": unit,
                "tz": "New_York",
                "siteRef": Ref(f"site-{e % 10}"),
                "equipRef": Ref(f"equip-{e}"),
                "curVal": Number(50.0 + (i % 400) * 0.25, unit),
            }
        )
        rows.append(row)
    return rows


def his_rows(n: int, Number: Any) -> list[dict[str, Any]]:
    ny = ZoneInfo("America/New_York")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    step = dt.timedelta(minutes=1)
    return [
        {
            "ts": (start + k * step).astimezone(ny),
            "val": Number(round(20.0 + (k % 1440) / 100.0, 2), "kW"),
        }
        for k in range(n)
    ]


HSPY_ROUND = """
import gc, json, sys, time
from hs_py.encoding.json import JsonVersion, decode_grid, encode_grid
from hs_py.grid import Col, Grid
from hs_py.kinds import MARKER, Number, Ref

def grid(name):
    if name == "points":
        return Grid(meta={"ver": "3.0"}, cols=tuple(Col(c) for c in COLS),
                    rows=tuple(point_rows(POINTS, Ref, Number, MARKER)))
    if name == "sparse":
        return Grid.make_rows(sparse_rows(POINTS, Ref, Number, MARKER))
    return Grid(meta={"ver": "3.0", "id": Ref("his-main")}, cols=(Col("ts"), Col("val")),
                rows=tuple(his_rows(HIS, Number)))

out = {}
for version, label in ((JsonVersion.V4, "json4"), (JsonVersion.V3, "json3")):
    for name in ("points", "sparse", "his"):
        g = grid(name)
        gc.collect()
        t = time.perf_counter(); data = encode_grid(g, version=version)
        out[f"{label} {name} encode"] = time.perf_counter() - t
        del g
        fresh = bytes(bytearray(data))
        gc.collect()
        t = time.perf_counter(); decoded = decode_grid(fresh, version=version)
        out[f"{label} {name} decode"] = time.perf_counter() - t
        del decoded  # freed outside the timed part, as ours
print(json.dumps(out))
"""


def our_grid(name: str) -> Any:
    from gateway.haystack import MARKER, Col, Grid, Number, Ref

    if name == "points":
        return Grid([Col(c) for c in COLS], point_rows(POINTS, Ref, Number, MARKER))
    if name == "sparse":
        return Grid.from_rows(sparse_rows(POINTS, Ref, Number, MARKER))
    return Grid(["ts", "val"], his_rows(HIS, Number), {"id": Ref("his-main")})


def our_round() -> dict[str, float]:
    from gateway.haystack.codecs import json3, json4

    out = {}
    for label, codec in (("json4", json4), ("json3", json3)):
        for name in ("points", "sparse", "his"):
            grid = our_grid(name)
            out[f"{label} {name} encode"], data = _timed(codec.encode_grid, grid)
            del grid
            fresh = bytes(bytearray(data))
            out[f"{label} {name} decode"], decoded = _timed(codec.decode_grid, fresh)
            assert len(decoded) == (HIS if name == "his" else POINTS)
    return out


def _timed(fn: Callable[[Any], Any], arg: Any) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn(arg)
    return time.perf_counter() - start, result


def hspy_round(python: str) -> dict[str, float]:
    source = "\n".join(
        [
            "import datetime as dt",
            "from typing import Any",
            "from zoneinfo import ZoneInfo",
            f"POINTS, HIS, COLS = {POINTS}, {HIS}, {COLS!r}",
            inspect.getsource(point_rows),
            inspect.getsource(sparse_rows),
            inspect.getsource(his_rows),
            HSPY_ROUND,
        ]
    )
    proc = subprocess.run([python, "-c", source], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def scale() -> int:
    """Decode rate of JSON v4 histories from 125,000 to 1,000,000 rows (linear: flat)."""
    from gateway.haystack import Grid, Number
    from gateway.haystack.codecs import json4

    print("JSON v4 decode, history grid (ts, val), fast path and general reader")
    for rows in (125_000, 250_000, 500_000, 1_000_000):
        data = json4.encode_grid(Grid(["ts", "val"], his_rows(rows, Number)))
        secs, grid = _timed(json4.decode_grid, data)
        assert len(grid) == rows
        del grid
        # The same document with one row the fast path does not take: the general reader.
        general = data.replace(b',"unit":"kW"}}]', b',"unit":"kW"},"x":[]}]', 1)
        gsecs, grid = _timed(json4.decode_grid, general)
        assert len(grid) == rows
        del grid
        print(
            f"{rows:>10,} rows  {rows / secs:>10,.0f} rows/s  general {rows / gsecs:>10,.0f} rows/s"
        )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compare", action="store_true", help="measure hs_py side by side")
    ap.add_argument("--hspy-python", default=HSPY_PYTHON)
    ap.add_argument("--scale", action="store_true", help="JSON v4 decode of 125k..1M-row histories")
    args = ap.parse_args()
    if args.scale:
        return scale()

    ours: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for key, secs in our_round().items():
            ours.setdefault(key, []).append(secs)
        if args.compare:
            for key, secs in hspy_round(args.hspy_python).items():
                theirs.setdefault(key, []).append(secs)

    print(f"best of {args.runs} runs, rows/s (Python {sys.version.split()[0]})")
    header = f"{'':24}{'ours':>12}"
    if args.compare:
        header += f"{'haystack-py':>14}{'ratio':>8}"
    print(header)
    for key, times in ours.items():
        rows = HIS if " his " in key else POINTS
        line = f"{key:24}{rows / min(times):>12,.0f}"
        if args.compare and key in theirs:
            other = rows / min(theirs[key])
            line += f"{other:>14,.0f}{(rows / min(times)) / other:>7.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
