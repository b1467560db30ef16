"""hs-gateway serve as a real subprocess: systemd notify, TLS + login, polling, SIGHUP, SIGTERM.

The service runs against a pymodbus device simulator on 127.0.0.1 (in this test process), with
its own temporary configuration, store and certificates. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from drivers.aio import open_aio_host
from drivers.sim.modbus import DEMO_REGISTER_MAP, demo_devices, open_modbus_sim
from gateway.haystack.codecs import zinc
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import Number, Ref
from gateway.runtime.cli import main
from gateway.storage.sqlite import SQLiteAdapter
from tests.web_harness import scram_login

PASSWORD = "serve-test password"

CONN = """\
id: @ahu1
dis: AHU 1
conn
modbusConn
uri: `{uri}`
modbusSlave: 1
modbusRegMapUri: "ahu.csv"
connTuningRef: @fast
---
id: @fast
connTuning
pollTime: 500ms
connOpenRetryFreq: 1s
"""

POINTS = """\
id: @site
dis: Test site
site
tz: UTC
---
id: @ahu1-supply-temp
dis: Supply temperature
point
sensor
kind: "Number"
unit: "°C"
modbusConnRef: @ahu1
modbusCur: "supplyTemp"
siteRef: @site
"""

MORE_POINTS = """\
id: @ahu1-supply-sp
dis: Supply setpoint
point
sp
writable
kind: "Number"
unit: "°C"
modbusConnRef: @ahu1
modbusCur: "supplySp"
modbusWrite: "supplySp"
siteRef: @site
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_etc(root: Path, sim_uri: str, port: int) -> Path:
    (root / "points").mkdir(parents=True)
    (root / "maps").mkdir()
    (root / "state").mkdir()
    (root / "gateway.toml").write_text(
        f'[server]\nlisten = ["127.0.0.1"]\nport = {port}\n\n'
        '[storage]\npath = "state/gateway.db"\n\n[logging]\nlevel = "info"\n',
        encoding="utf-8",
    )
    (root / "maps" / "ahu.csv").write_text(DEMO_REGISTER_MAP, encoding="utf-8")
    (root / "points" / "ahu.trio").write_text(CONN.format(uri=sim_uri), encoding="utf-8")
    (root / "points" / "site.trio").write_text(POINTS, encoding="utf-8")
    assert main(["certs", "init-ca", "--config-dir", str(root)]) == 0
    assert main(["certs", "server", "--config-dir", str(root), "--ip", "127.0.0.1"]) == 0
    assert main(["check-config", "--config-dir", str(root)]) == 0
    return root


@dataclass
class Notifications:
    """What the service told "systemd" over the notify socket."""

    sock: trio.socket.SocketType
    seen: list[str] = field(default_factory=list)

    async def expect(self, pred: Callable[[str], bool], within: float = 30.0) -> str:
        """The next datagram for which ``pred`` holds (others are kept in ``seen``)."""
        with trio.fail_after(within):
            while True:
                msg = (await self.sock.recv(4096)).decode()
                self.seen.append(msg)
                if pred(msg):
                    return msg

    def count(self, field: str) -> int:
        return sum(1 for m in self.seen if field in m.split("\n"))


@asynccontextmanager
async def notify_socket(path: Path) -> AsyncIterator[Notifications]:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(str(path))
    try:
        yield Notifications(sock)
    finally:
        sock.close()


MDWE_WRAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit("PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


def serve_command(etc: Path, *, mdwe: bool) -> list[str]:
    args = ["-m", "gateway.runtime.cli", "serve", "--config-dir", str(etc)]
    args += ["--stop-deadline", "10"]
    if mdwe:
        # MemoryDenyWriteExecute=yes of the unit, as the kernel's own switch (Linux 6.3+).
        return [sys.executable, "-c", MDWE_WRAPPER, *args]
    return [sys.executable, *args]


async def read_points(http: httpx.AsyncClient, url: str, token: str) -> dict[Ref, dict[str, Any]]:
    r = await http.get(
        f"{url}/api/read",
        params={"filter": "point"},
        headers={"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"},
    )
    assert r.status_code == 200, r.text
    grid: Grid = zinc.decode_grid(r.text)
    return {row["id"]: row for row in grid.to_dicts()}


async def wait_for(check: Callable[[], Any], within: float = 20.0) -> Any:
    with trio.fail_after(within):
        while True:
            got = await check()
            if got:
                return got
            await trio.sleep(0.2)


def mdwe_supported() -> bool:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(66, 0, 0, 0, 0) >= 0)  # PR_GET_MDWE


@pytest.mark.parametrize("mdwe", [False, True], ids=["plain", "memory-deny-write-execute"])
async def test_serve_notifies_polls_reloads_and_stops(tmp_path: Path, mdwe: bool) -> None:
    if mdwe and not mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    port = free_port()
    async with (
        open_aio_host() as aio,
        open_modbus_sim(aio, demo_devices([1])) as sim,
        notify_socket(tmp_path / "notify") as notes,
    ):
        etc = make_etc(tmp_path / "etc", sim.uri, port)
        db = etc / "state" / "gateway.db"
        add = ["user", "add", "admin", "--role", "admin", "--db", str(db), "--password-stdin"]
        done = await trio.run_process(
            [sys.executable, "-m", "gateway.runtime.cli", *add],
            stdin=f"{PASSWORD}\n".encode(),
            capture_stdout=True,
        )
        assert done.returncode == 0
        env = dict(os.environ)
        env.update({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"})
        env.pop("WATCHDOG_PID", None)
        env.pop("JOURNAL_STREAM", None)
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            proc = await trio.lowlevel.open_process(
                serve_command(etc, mdwe=mdwe), env=env, stdout=log, stderr=log
            )
            try:
                await run_checks(proc, notes, etc, port, sim)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        assert proc.returncode == 0, log_text
        assert "stopped" in log_text
        assert "reload refused" in log_text
        assert "connector @ahu1: ok" in log_text
        # The reload of the map change: no record changed, yet the connector restarted.
        assert "records +0 ~0 -0; connectors started 0, restarted 1, stopped 0" in log_text
    # The SCRAM secret persists beside the database, readable by the service alone.
    secret = db.parent / "scram-secret"
    assert secret.stat().st_mode & 0o077 == 0 and len(secret.read_text().strip()) >= 32
    # The store was closed cleanly and holds the configured records.
    store = SQLiteAdapter(db)
    await store.open()
    try:
        ids = {rec["id"].val for rec in await store.read_by_filter("point")}  # type: ignore[union-attr]
        assert ids == {"ahu1-supply-temp", "ahu1-supply-sp"}
    finally:
        await store.aclose()


async def run_checks(
    proc: trio.Process, notes: Notifications, etc: Path, port: int, sim: Any
) -> None:
    ready = await notes.expect(lambda m: "READY=1" in m.split("\n"))
    assert "STATUS=1 connector " in ready and "1 point" in ready, ready
    # Watchdog pings every 0.2 s (half of WATCHDOG_USEC): six of them take about a second.
    start = trio.current_time()
    for _ in range(6):
        await notes.expect(lambda m: m == "WATCHDOG=1", within=2)
    assert 0.6 < trio.current_time() - start < 2.0

    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(etc / "tls" / "ca.pem"))
    async with httpx.AsyncClient(verify=context, timeout=10) as http:
        r = await http.get(f"{url}/api/about")
        assert r.status_code == 401  # TLS works, and nobody gets in without logging in
        token = await scram_login(http, f"{url}/api/about", "admin", PASSWORD)

        async def polled() -> Any:
            rec = (await read_points(http, url, token)).get(Ref("ahu1-supply-temp"))
            return rec if rec and rec.get("curStatus") == "ok" else None

        rec = await wait_for(polled)
        assert isinstance(rec["curVal"], Number)
        assert rec["curVal"].unit == "°C"
        assert abs(rec["curVal"].val - sim.value(1, "supplyTemp")) < 2.0

        # SIGHUP: a new points file is picked up; the running connector is restarted with it.
        (etc / "points" / "more.trio").write_text(MORE_POINTS, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        await notes.expect(lambda m: m == "RELOADING=1")
        ready = await notes.expect(lambda m: "READY=1" in m.split("\n"))
        assert "2 points" in ready, ready
        points = await read_points(http, url, token)
        assert Ref("ahu1-supply-sp") in points

        # A write through the API reaches the device's register.
        r = await http.post(
            f"{url}/api/pointWrite",
            content='ver:"3.0"\nid,level,val\n@ahu1-supply-sp,8,21.5°C\n',
            headers={
                "Authorization": f"BEARER authToken={token}",
                "Content-Type": "text/zinc",
                "Accept": "text/zinc",
            },
        )
        assert r.status_code == 200 and "err" not in r.text.split("\n")[0], r.text

        async def written() -> bool:
            return bool(sim.value(1, "supplySp") == 21.5)

        await wait_for(written)

        # SIGHUP after a change of the register map only: its connector restarts with it.
        with (etc / "maps" / "ahu.csv").open("a", encoding="utf-8") as csv:
            csv.write("spare,40100,u2,r,,,Spare register,,\n")
        proc.send_signal(signal.SIGHUP)
        await notes.expect(lambda m: m == "RELOADING=1")
        await notes.expect(lambda m: "READY=1" in m.split("\n"))

        # SIGHUP with a broken file: refused, and the service keeps running as it was.
        (etc / "points" / "broken.trio").write_text('id: @x\npoint\nkind: "Number\n')
        proc.send_signal(signal.SIGHUP)
        refused = await notes.expect(lambda m: "READY=1" in m.split("\n"))
        assert "reload refused (1 problem)" in refused, refused
        r = await http.get(
            f"{url}/api/about", headers={"Authorization": f"BEARER authToken={token}"}
        )
        assert r.status_code == 200

    # SIGTERM: STOPPING=1, then a clean exit within the deadline.
    proc.send_signal(signal.SIGTERM)
    await notes.expect(lambda m: "STOPPING=1" in m.split("\n"))
    with trio.fail_after(15):
        await proc.wait()


async def test_serve_refuses_a_bad_configuration(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "points").mkdir(parents=True)
    (etc / "gateway.toml").write_text("[server]\nprot = 1\n", encoding="utf-8")
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, "-m", "gateway.runtime.cli", "serve", "--config-dir", str(etc)],
            capture_stderr=True,
            check=False,
        )
    err = done.stderr.decode()
    assert done.returncode == 1
    assert f"{etc / 'gateway.toml'}:2: server.prot: unknown key in [server]" in err
    assert "not started" in err


def test_journal_lines_carry_their_priority(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from gateway.runtime.cli_serve import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("info", {"JOURNAL_STREAM": "8:1234"})
        logging.getLogger("hs_gateway").warning("connector @a: down: refused")
        logging.getLogger("hs_gateway").debug("not shown")
        configure_logging("debug", {})
        logging.getLogger("hs_gateway").debug("shown")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "<4>hs_gateway: connector @a: down: refused"
    assert err[1].endswith("DEBUG hs_gateway: shown")
    assert len(err) == 2
