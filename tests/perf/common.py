"""Helpers shared by the benchmarks: interpreters, subprocess workers, figures and targets.

Standard library only: the benchmarks import this module in the other interpreters they drive
too (haystack-py's Python 3.13 virtualenv, and a 3.13 virtualenv holding only what
``gateway.haystack`` needs, so that our codecs can be timed on haystack-py's interpreter).

- ``hspy_python()``: the haystack-py 0.1.10 interpreter that ``../shared/bench/setup_hspy.sh``
  makes (``$HSPY_VENV``, default ``~/.cache/hspybench/venv``), set up on first use;
- ``gw313_python()``: ``~/.cache/hsgwbench/venv`` (Python 3.13 + orjson at our version +
  tzdata), created on first use;
- ``Worker``: a benchmark worker in another interpreter, asked for one round at a time over a
  pipe, so that several contenders take turns round by round (a change of machine load then
  hits them alike);
- ``pct``, ``rate``, ``machine_load``, ``target_cell``: figures and their targets;
- ``start_py_spy`` / ``stop_py_spy``: sample a server with py-spy, print its hot functions.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHARED_BENCH = ROOT.parent / "shared" / "bench"
CACHE = Path.home() / ".cache"
GW313_VENV = CACHE / "hsgwbench" / "venv"
SETUP_TIMEOUT = 600.0


def hspy_python() -> str:
    """haystack-py's interpreter; runs ``setup_hspy.sh`` (idempotent) when it is missing."""
    venv = Path(os.environ.get("HSPY_VENV", CACHE / "hspybench" / "venv"))
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"[setup] {python} missing: running setup_hspy.sh", flush=True)
        subprocess.run(
            ["bash", str(SHARED_BENCH / "setup_hspy.sh")], check=True, timeout=SETUP_TIMEOUT
        )
    return str(python)


def find_python313() -> str:
    """A working Python 3.13 (on PATH or under pyenv), found as setup_hspy.sh finds one."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [shutil.which("python3.13")]  # may be a pyenv shim that refuses to run
    found += [str(p) for p in sorted(root.glob("versions/3.13*/bin/python3.13"), reverse=True)]
    for cand in found:
        ok = cand and subprocess.run([cand, "-c", "import sys"], check=False, capture_output=True)
        if ok and ok.returncode == 0:
            return cand
    raise RuntimeError("no Python 3.13 found (pyenv install 3.13)")


def gw313_python() -> str:
    """A Python 3.13 venv with orjson (our pinned version) and tzdata; made on first use.

    ``gateway.haystack`` is pure Python over orjson and tzdata, so with ``PYTHONPATH`` at the
    repository it runs there unchanged: our codecs on the interpreter haystack-py runs on.
    """
    python = GW313_VENV / "bin" / "python"
    orjson = importlib.metadata.version("orjson")
    check = f"import importlib.metadata as m, tzdata; assert m.version('orjson') == {orjson!r}"
    if (
        python.exists()
        and subprocess.run([python, "-c", check], check=False, capture_output=True).returncode == 0
    ):
        return str(python)
    print(f"[setup] creating {GW313_VENV} (Python 3.13, orjson=={orjson}, tzdata)", flush=True)
    if not python.exists():
        GW313_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([find_python313(), "-m", "venv", str(GW313_VENV)], check=True, timeout=120)
    pip = [python, "-m", "pip", "install", "--quiet", f"orjson=={orjson}", "tzdata"]
    done = subprocess.run(pip, check=False, capture_output=True, text=True, timeout=SETUP_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"pip install into {GW313_VENV} failed: {done.stderr[-1000:]}")
    return str(python)


def repo_env() -> dict[str, str]:
    """The environment for a worker in another interpreter: the repository on its path."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


class Worker:
    """``python -m MODULE --worker ARGS...`` that answers each line it is sent with one JSON
    line: one round of a benchmark at a time, so the parent decides who runs when."""

    def __init__(self, label: str, python: str, module: str, *args: str) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [python, "-m", module, "--worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=repo_env(),
        )

    def round(self, request: str = "round", timeout: float = 300.0) -> dict[str, Any]:
        """Ask for one round; its JSON answer (bounded by ``timeout`` seconds)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            code = self.proc.poll()
            self.close()
            if code is not None:
                raise RuntimeError(f"worker {self.label} exited ({code}): see its error above")
            raise RuntimeError(f"worker {self.label}: no answer within {timeout:g} s")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve_worker(run_round: Any) -> int:
    """The worker side of ``Worker``: one round per line read, until stdin closes."""
    for line in sys.stdin:
        print(json.dumps(run_round(line.strip())), flush=True)
    return 0


def pct(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank), as haystack_load.py computes it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def rate(value: float) -> str:
    """1234567 -> '1.23M', 45678 -> '45.7k'."""
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def target_cell(ratio: float | None, target: float | None) -> str:
    """'>= 2x ok' / '>= 2x MISSED' / '' for a figure without a target."""
    if target is None or ratio is None:
        return ""
    return f">= {target:g}x " + ("ok" if ratio >= target else "MISSED")


def _cpu_ticks() -> dict[int, tuple[int, str]]:
    """pid -> (user + system clock ticks so far, command line) of every process."""
    out: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        out[int(stat.parent.name)] = (int(fields[11]) + int(fields[12]), cmd.strip())
    return out


def machine_load(window: float = 1.0) -> str:
    """The load average and the processes busy over the next ``window`` seconds (other
    engineers' test runs share this machine: a figure is only as good as its quiet)."""
    one, five, _ = os.getloadavg()
    before = _cpu_ticks()
    time.sleep(window)
    after = _cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (ticks, cmd) in after.items():
        share = (ticks - before.get(pid, (ticks, ""))[0]) / hz / window
        if share >= 0.1:
            busy.append((share, f"{cmd[:70] or pid} {share:.0%}"))
    text = f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"
    return text + "; busy now: " + ("; ".join(b for _, b in sorted(busy, reverse=True)) or "none")


# -- py-spy: where a server process spends its time --------------------------------------------


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of process ``pid`` into ``out`` (collapsed stacks) until stopped."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("  (py-spy not found: pip install py-spy)")
        return None
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
    return subprocess.Popen(
        [*argv, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop_py_spy(spy: subprocess.Popen[bytes], out: Path) -> None:
    """Stop the recording and print where the time went."""
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if out.exists():
        print(profile_summary(out))


def profile_summary(collapsed: Path, top: int = 18) -> str:
    """The functions holding most samples of a py-spy raw (collapsed stacks) file: own time
    (leaf frame) and total time (anywhere on the stack)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    lines = [f"  py-spy: {samples} samples of the server ({collapsed.name})"]
    lines += ["    own time:"] + [f"    {c / samples:6.1%}  {n}" for n, c in own.most_common(top)]
    lines += ["    total time (the serving loop's own frames left out):"]
    busy = [(n, c) for n, c in total.most_common() if not n.startswith(_OUTER_FRAMES)]
    lines += [f"    {c / samples:6.1%}  {n}" for n, c in busy[: top * 2]]
    return "\n".join(lines)


_OUTER_FRAMES = ("<frozen", "tests/perf/", "trio/_core/_run.py:", "threading.py:")


def _frame_name(frame: str) -> str:
    """'handle (gateway/web/app.py:148)' -> 'gateway/web/app.py:handle' (no line number)."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}"


# -- the benchmark dataset (../shared/bench/serve_hspy.py's) ---------------------------------

#: The quantities of the points, in turn, with their units.
QUANTITIES: tuple[tuple[str, str], ...] = (
    ("temp", "°F"),
    ("humidity", "%RH"),
    ("pressure", "inH₂O"),
    ("flow", "cfm"),
    ("co2", "ppm"),
)


def dataset_points(n: int, ref: Any, number: Any, marker: Any) -> list[dict[str, Any]]:
    """serve_hspy.py's points: one of five quantities, sensor or writable cmd, 1,500 of
    10,000 match ``point and temp and sensor``."""
    rows = []
    for i in range(n):
        qty, unit = QUANTITIES[i % len(QUANTITIES)]
        e = i % 100
        row = {"id": ref(f"pt-{i}"), "dis": f"Equip {e} {qty} {i}", "point": marker}
        if (i // 5) % 4 == 3:
            row["cmd"] = row["writable"] = marker
        else:
            row["sensor"] = marker
        row.update(
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
        rows.append(row)
    return rows
