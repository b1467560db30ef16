"""systemd/hs-gateway.service: systemd-analyze verify, its exposure score, and what it promises."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.runtime.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "hs-gateway.service"
#: The exposure score `systemd-analyze security --offline=yes` gives the unit (lower is safer);
#: the README quotes it. A change that raises it must be a deliberate one.
MAX_EXPOSURE = 1.5

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def directives(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines by key (a key may repeat), comments and sections dropped."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def unit_for_here(tmp_path: Path) -> Path:
    """The unit with its command pointing at this environment's hs-gateway (verify checks it)."""
    exe = Path(sys.executable).with_name("hs-gateway")
    if not exe.exists():
        pytest.skip("the hs-gateway console script is not installed here")
    unit = tmp_path / "hs-gateway.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/hs-gateway", str(exe)))
    return unit


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = unit_for_here(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@needs_analyze
def test_exposure_score(tmp_path: Path) -> None:
    unit = unit_for_here(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security --offline=yes: {score}")
    assert score <= MAX_EXPOSURE


def test_unit_promises() -> None:
    unit = directives(UNIT.read_text())
    one = {k: v[-1] for k, v in unit.items()}
    assert one["Type"] == "notify"
    assert one["NotifyAccess"] == "main"
    assert (one["User"], one["Group"]) == ("hs-gateway", "hs-gateway")
    assert one["SupplementaryGroups"] == "dialout"
    assert one["StateDirectory"] == "hs-gateway"
    assert one["ConfigurationDirectory"] == "hs-gateway"
    assert one["Restart"] == "on-failure"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "RestrictNamespaces",
    ):
        assert one[key] == "yes", key
    assert one["ProtectSystem"] == "strict"
    assert one["CapabilityBoundingSet"] == ""
    assert set(one["RestrictAddressFamilies"].split()) == {
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
        "AF_NETLINK",
    }
    assert unit["SystemCallFilter"][0] == "@system-service"
    assert "char-ttyUSB rw" in unit["DeviceAllow"]


def test_exec_start_is_a_valid_command_within_the_stop_timeout() -> None:
    unit = directives(UNIT.read_text())
    argv = shlex.split(unit["ExecStart"][-1])
    assert argv[0] == "/usr/bin/hs-gateway"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    assert str(args.config_dir) == "/etc/hs-gateway"
    # The service's own deadline ends before systemd's SIGKILL.
    timeout = float(unit["TimeoutStopSec"][-1].removesuffix("s"))
    assert args.stop_deadline < timeout
    watchdog = float(unit["WatchdogSec"][-1].removesuffix("s"))
    assert watchdog >= 10  # the loop pings every watchdog/2: enough slack for a busy Pi
