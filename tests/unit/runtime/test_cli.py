"""The hs-gateway command: --help everywhere, --version, check-config's output and exit codes."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.runtime.cli import main
from tests.unit.runtime.test_config import FIRMWARE, POINT, line_of, write_config

COMMANDS = [
    [],
    ["serve"],
    ["check-config"],
    ["user"],
    ["user", "add"],
    ["user", "passwd"],
    ["user", "list"],
    ["user", "remove"],
    ["certs"],
    ["certs", "init-ca"],
    ["certs", "server"],
    ["certs", "client"],
    ["learn"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "hs-gateway")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hs-gateway" + "".join(" " + c for c in command))
    # Every option is explained (argparse prints a help line under each).
    assert "options:" in out
    if command[:1] == ["user"] and len(command) == 2:
        assert "--password-stdin" in out or command[1] in ("list", "remove")
    if command and command[0] != "user" and command != ["certs"]:
        assert "--config-dir" in out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("serve", "check-config", "user", "certs", "learn"):
        assert name in out
    demo_exists = importlib.util.find_spec("gateway.runtime.demo") is not None
    assert ("demo" in out) == demo_exists


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == "hs-gateway 0.1.0"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "required" in capsys.readouterr().err


def test_check_config_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_config(tmp_path, files={"points/p.trio": POINT})
    assert main(["check-config", "--config-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == (
        f"{root}: OK: 1 connector, 1 point, 1 site, 0 equips, 0 tunings, 1 register map"
    )


def test_check_config_prints_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = POINT.replace('modbusCur: "power"', 'modbusCur: "powr"') + 'curStatus: "ok"\n'
    root = write_config(tmp_path, files={"points/p.trio": bad})
    assert main(["check-config", "--config-dir", str(root)]) == 1
    captured = capsys.readouterr()
    path = root / "points" / "p.trio"
    assert captured.out.splitlines() == [
        f"{path}:{line_of(bad, 'modbusCur')}: modbusCur: no register 'powr' in meter.csv "
        "(did you mean 'power'?)",
        f"{path}:{line_of(bad, 'curStatus')}: curStatus: is set by the gateway at run time, "
        "not in configuration",
    ]
    assert captured.err.strip() == f"2 problems in {root}"


def test_check_config_of_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config-dir", str(tmp_path / "nope")]) == 1
    assert "is not a directory" in capsys.readouterr().err


def test_check_config_on_the_shipped_files(tmp_path: Path) -> None:
    """The shipped configuration passes once the certificates exist, as after installing."""
    root = tmp_path / "etc"
    shutil.copytree(FIRMWARE, root)
    assert main(["check-config", "--config-dir", str(root), "--no-tls-files"]) == 0
    assert main(["check-config", "--config-dir", str(root)]) == 1  # no certificates yet
    assert main(["certs", "init-ca", "--config-dir", str(root)]) == 0
    assert main(["certs", "server", "--config-dir", str(root), "--host", "gw.local"]) == 0
    assert main(["check-config", "--config-dir", str(root)]) == 0


def test_the_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("hs-gateway")
    if not exe.exists():
        pytest.skip("the hs-gateway console script is not installed in this environment")
    done = subprocess.run(
        [str(exe), "check-config", "--config-dir", str(FIRMWARE), "--no-tls-files"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OK: 3 connectors, 10 points" in done.stdout
