"""Run the benchmarks: ``python -m tests.perf [--compare] [names...]`` (``make bench``).

Every ``tests/perf/bench_*.py`` (or the ones named: ``codecs``, ``bench_server``...) runs as
``python -m tests.perf.bench_NAME`` in a subprocess of its own, one after the other, its
figures printed as they come. A subprocess each keeps one benchmark's memory, garbage collector
state, threads and trio run out of the next one's figures, and a crash or a hang (bounded by
``--timeout``) costs only that benchmark.

``--compare`` (``make bench-compare``) is passed on to the modules that declare ``COMPARE =
True`` at their top level (they then measure haystack-py side by side); the others run as
without it. A module's own options can be given after ``--`` when a single module is named.
Speed and memory targets are checked here, by figures and ratios, never by timed assertions in
the test suite. The exit status is 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def discover() -> list[str]:
    """The benchmark modules, by name (``bench_codecs``...)."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def declares_compare(name: str) -> bool:
    """Whether the module says ``COMPARE = True`` at its top level (read, not imported)."""
    tree = ast.parse((HERE / f"{name}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if "COMPARE" in names and isinstance(node.value, ast.Constant):
                return node.value.value is True
    return False


def resolve(names: Sequence[str]) -> list[str]:
    known = discover()
    chosen = []
    for name in names:
        module = name if name.startswith("bench_") else f"bench_{name}"
        module = module.removesuffix(".py")
        if module not in known:
            raise SystemExit(f"no benchmark {name!r}; known: {', '.join(known)}")
        chosen.append(module)
    return chosen or known


def run(cmd: list[str], timeout: float) -> str:
    """Run one benchmark in a session of its own, so that on a timeout (or Ctrl-C) the
    servers and workers it started stop with it."""
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        code = proc.wait(timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
        for sig, grace in ((signal.SIGINT, 10), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
                break
        if isinstance(exc, KeyboardInterrupt):
            raise
        return f"FAILED (over {timeout:g} s)"
    return "ok" if code == 0 else f"FAILED (exit {code})"


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_in:
        at = args_in.index("--")
        args_in, extra = args_in[:at], args_in[at + 1 :]
    ap = argparse.ArgumentParser(prog="python -m tests.perf", description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    ap.add_argument("--compare", action="store_true", help="side by side with haystack-py")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per benchmark")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(args_in)
    modules = resolve(args.names)
    if args.list:
        for name in modules:
            print(f"{name}{'  (--compare)' if declares_compare(name) else ''}")
        return 0
    if extra and len(modules) != 1:
        ap.error("options after -- need exactly one benchmark named")
    results: list[tuple[str, str, float]] = []
    for name in modules:
        cmd = [sys.executable, "-m", f"tests.perf.{name}"]
        if args.compare and declares_compare(name):
            cmd.append("--compare")
        cmd += extra
        print(f"\n===== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.monotonic()
        results.append((name, run(cmd, args.timeout), time.monotonic() - start))
    print("\n===== summary")
    for name, status, secs in results:
        print(f"  {name:18} {status:24} {secs:6.0f} s")
    return 0 if all(status == "ok" for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
