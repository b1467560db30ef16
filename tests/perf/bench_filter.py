"""Filter evaluation rate over 10,000 point records, optionally side by side with haystack-py.

    .venv/bin/python tests/perf/bench_filter.py              # this project only
    .venv/bin/python tests/perf/bench_filter.py --compare    # + haystack-py 0.1.10 (Python 3.13)

Records are built like /work/shared/bench/serve_hspy.py's points (10,000 points over 10 sites
and 100 equips); the resolver maps a site or equip Ref to its record. Every run builds fresh
records and parses the filter afresh (parse and compile are inside the timed region), so no
cache can make a repeat cheaper. The best of ``--runs`` runs is reported, as records/second.

With ``--compare`` a subprocess in haystack-py's interpreter (the 3.13 venv) measures
haystack-py and this project's code side by side, taking turns run by run so that a change of
machine load hits both alike, and prints the ratios (same interpreter, same records). Haystack-py
counts more matches for ``curVal > 60°F``: it ignores units in ordered comparisons. Bounded: a few
seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HSPY_PYTHON = "/root/.cache/hspybench/venv/bin/python"
N_POINTS = 10_000
FILTERS = (
    "point and temp and sensor",
    "point and curVal > 60°F",
    'siteRef->dis == "Site 3"',
    "not writable or cmd",
)
QUANTITIES = (
    ("temp", "°F"),
    ("humidity", "%RH"),
    ("pressure", "inH₂O"),
    ("flow", "cfm"),
    ("co2", "ppm"),
)


def make_records(marker: Any, number: Callable[..., Any], ref: Callable[[str], Any]) -> tuple:
    """(points, sites and equips by id) with the given library's kinds."""
    others: dict[str, dict[str, Any]] = {}
    for s in range(10):
        others[f"site-{s}"] = {"id": ref(f"site-{s}"), "dis": f"Site {s}", "site": marker}
    for e in range(100):
        others[f"equip-{e}"] = {
            "id": ref(f"equip-{e}"),
            "dis": f"Equip {e}",
            "equip": marker,
            "siteRef": ref(f"site-{e % 10}"),
        }
    points = []
    for i in range(N_POINTS):
        qty, unit = QUANTITIES[i % 5]
        e = i % 100
        p: dict[str, Any] = {"id": ref(f"pt-{i}"), "dis": f"Equip {e} {qty} {i}", "point": marker}
        if (i // 5) % 4 == 3:
            p["cmd"] = marker
            p["writable"] = marker
        else:
            p["sensor"] = marker
        p.update(
            {
                qty: marker,
                "his": marker,
                "kind": "Number",
                "unit": unit,
                "tz": "New_York",
                "siteRef": ref(f"site-{e % 10}"),
                "equipRef": ref(f"equip-{e}"),
                "curVal": number(round(50.0 + (i % 400) * 0.25, 2), unit),
            }
        )
        points.append(p)
    return points, others


Runner = Callable[[str], Callable[[], tuple[float, int]]]


def ours(mode: str) -> Runner:
    """This project: ``compiled`` (pred per record), ``select`` (the compiled loop) or
    ``interpreted`` (``matches``)."""
    sys.path.insert(0, str(ROOT))
    from gateway.haystack.filter import parse_filter
    from gateway.haystack.kinds import MARKER, Number, Ref

    def runner(text: str) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            points, others = make_records(MARKER, Number, Ref)
            resolve = _resolver(others, "ours")
            t0 = time.perf_counter()
            f = parse_filter(text)
            if mode == "compiled":
                pred = f.compile()
                n = sum(1 for r in points if pred(r, resolve))
            elif mode == "select":
                n = len(f.select(points, resolve))
            else:
                n = sum(1 for r in points if f.matches(r, resolve))
            return time.perf_counter() - t0, n

        return run

    return runner


def hspy() -> Runner:
    """haystack-py: ``parse`` then ``evaluate`` per record."""
    from hs_py.filter.eval import evaluate
    from hs_py.filter.parser import parse
    from hs_py.kinds import MARKER, Number, Ref

    def runner(text: str) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            points, others = make_records(MARKER, Number, Ref)
            resolve = _resolver(others, "hspy")
            t0 = time.perf_counter()
            node = parse(text)
            n = sum(1 for r in points if evaluate(node, r, resolve))
            return time.perf_counter() - t0, n

        return run

    return runner


def bench(contenders: dict[str, Runner], runs: int) -> dict[str, dict[str, Any]]:
    """Best rate of each contender per filter; the contenders take turns run by run, so a
    change of machine load hits them alike."""
    out: dict[str, dict[str, Any]] = {}
    for text in FILTERS:
        runs_of = {name: make(text) for name, make in contenders.items()}
        best = dict.fromkeys(runs_of, float("inf"))
        count = dict.fromkeys(runs_of, -1)
        for _ in range(runs):
            for name, run in runs_of.items():
                secs, count[name] = run()
                best[name] = min(best[name], secs)
        out[text] = {
            name: {"rate": N_POINTS / best[name], "matches": count[name]} for name in runs_of
        }
    return out


def _resolver(others: dict[str, dict[str, Any]], how: str) -> Callable[[Any], Any]:
    """One lookup by id, as a store would do it (each library reads its own Ref)."""
    get = others.get
    if how == "ours":
        return lambda ref: get(ref[0])  # Ref is a tuple (id, dis)
    return lambda ref: get(ref.val)  # hs_py's Ref is a dataclass


def _worker(python: str, runs: int) -> dict[str, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [python, __file__, "--worker", "--runs", str(runs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env=env,
    )
    result: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--compare", action="store_true", help="also run haystack-py (Python 3.13)")
    ap.add_argument("--hspy-python", default=HSPY_PYTHON)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:  # in haystack-py's interpreter: both libraries, taking turns
        both = {"compiled": ours("compiled"), "select": ours("select"), "hs_py": hspy()}
        print(json.dumps(bench(both, args.runs)))
        return 0

    py = f"py{sys.version_info.major}.{sys.version_info.minor}"
    modes = ("compiled", "select", "interpreted")
    here = bench({mode: ours(mode) for mode in modes}, args.runs)
    there = _worker(args.hspy_python, args.runs) if args.compare else None
    print(f"filter evaluation over {N_POINTS:,} records, best of {args.runs} (records/s)")
    for text in FILTERS:
        print(f"\n  {text}")
        for mode, row in here[text].items():
            print(f"    ours {mode:<12} {py}  {row['rate'] / 1e6:6.2f}M  ({row['matches']} match)")
        if there is None:
            continue
        h = there[text]["hs_py"]
        print(f"    haystack-py       py3.13  {h['rate'] / 1e6:6.2f}M  ({h['matches']} match)")
        for mode in ("compiled", "select"):
            o = there[text][mode]
            print(
                f"    ours {mode:<12} py3.13  {o['rate'] / 1e6:6.2f}M  ({o['matches']} match)"
                f"  {o['rate'] / h['rate']:.2f}x haystack-py"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
