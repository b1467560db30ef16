"""The Debian package, installed into a clean Debian 12 root: files, modes, service, purge.

``make test-deb`` runs this (it is skipped otherwise). It builds the .deb with ``make deb``
(or takes ``$HS_GATEWAY_DEB``), makes a Debian 12 minbase root with debootstrap from
deb.debian.org (cached as a tarball under build/packaging, so later runs unpack it in
seconds), and works in it through ``chroot`` only: no systemd is ever started, nothing is
mounted into the root. Needs root, debootstrap and the network (the Debian mirror, and PyPI for
the build).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
CACHE = BUILD / "packaging"
BASE_TARBALL = CACHE / "bookworm-minbase.tar.gz"
MIRROR = "http://deb.debian.org/debian"
# What the package depends on, so that installing it needs no package lists.
INCLUDE = "python3,python3.11,adduser,ca-certificates"
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}
PASSWORD = "packaging test password"


def run(cmd: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to completion, capturing its text output."""
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def deb() -> Path:
    """The package: ``$HS_GATEWAY_DEB``, or a fresh ``make deb``."""
    given = os.environ.get("HS_GATEWAY_DEB")
    if given:
        return Path(given).resolve()
    if shutil.which("dpkg-buildpackage") is None or shutil.which("dh_virtualenv") is None:
        pytest.skip("dpkg-buildpackage and dh-virtualenv are needed to build the package")
    started = time.monotonic()
    done = run(["make", "-C", str(ROOT), "deb"], timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    debs = sorted((BUILD / "deb").glob("hs-gateway_*.deb"), key=lambda p: p.stat().st_mtime)
    print(f"\nmake deb: {time.monotonic() - started:.0f} s, {debs[-1].stat().st_size} bytes")
    return debs[-1]


@pytest.fixture(scope="module")
def base_tarball() -> Path:
    """A Debian 12 minbase root as a tarball (made once with debootstrap, then reused)."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root")
    if BASE_TARBALL.exists():
        return BASE_TARBALL
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / "base-root.tmp"
    _remove_root(work)
    started = time.monotonic()
    done = run(
        ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", "bookworm", str(work), MIRROR],
        timeout=1800,
    )
    assert done.returncode == 0, f"debootstrap from {MIRROR} failed:\n{done.stdout[-3000:]}"
    run(["chroot", str(work), "apt-get", "clean"], timeout=120, env=CHROOT_ENV)
    partial = BASE_TARBALL.with_suffix(".partial")
    tarred = run(["tar", "-C", str(work), "--numeric-owner", "-czf", str(partial), "."], 600)
    assert tarred.returncode == 0, tarred.stderr
    partial.rename(BASE_TARBALL)
    _remove_root(work)
    print(f"\ndebootstrap + tarball: {time.monotonic() - started:.0f} s")
    return BASE_TARBALL


def _mounted_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if (line.split()[1] + "/").startswith(prefix)]


def _remove_root(path: Path) -> None:
    if not path.exists():
        return
    # Never recurse into a mount (it would delete the host's files): there should be none.
    mounted = _mounted_under(path)
    assert not mounted, f"refusing to delete {path}: mounts under it: {mounted}"
    shutil.rmtree(path)


@pytest.fixture
def debian_root(base_tarball: Path) -> Iterator[Path]:
    """A fresh Debian 12 root unpacked from the cached tarball."""
    roots = CACHE / "roots"
    roots.mkdir(parents=True, exist_ok=True)
    root = roots / f"root-{os.getpid()}"
    _remove_root(root)
    root.mkdir()
    done = run(["tar", "-C", str(root), "--numeric-owner", "-xzf", str(base_tarball)], 600)
    assert done.returncode == 0, done.stderr
    try:
        yield root
    finally:
        _remove_root(root)


class Chroot:
    """Commands inside the root, as root or as another user."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(
        self, *cmd: str, user: str | None = None, stdin: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        prefix = ["chroot"]
        if user is not None:
            prefix.append(f"--userspec={user}:{user}")
        return run([*prefix, str(self.root), *cmd], timeout, env=CHROOT_ENV, input=stdin)

    def ok(self, *cmd: str, **kwargs: Any) -> str:
        done = self(*cmd, **kwargs)
        assert done.returncode == 0, f"{cmd}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def ids(self, name: str) -> tuple[int, int]:
        for line in self.path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2]), int(fields[3])
        raise AssertionError(f"no user {name} in the root")

    def owner_mode(self, inside: str) -> tuple[int, int, int]:
        st = self.path(inside).lstat()
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_install_check_serve_remove_purge(deb: Path, debian_root: Path) -> None:
    ch = Chroot(debian_root)
    shutil.copy(deb, ch.path("/tmp/hs-gateway.deb"))

    # -- install (the README's `apt install ./hs-gateway_<ver>_<arch>.deb`) ------------
    ch.ok("apt-get", "install", "-y", "/tmp/hs-gateway.deb", timeout=600)
    assert ch.ok("hs-gateway", "--version").strip() == "hs-gateway 0.1.0"
    out = ch.ok("hs-gateway", "check-config")
    assert "/etc/hs-gateway: OK: 3 connectors, 10 points" in out

    # -- files, owners, modes -----------------------------------------------------------
    uid, gid = ch.ids("hs-gateway")
    assert 0 < uid < 1000
    passwd = next(
        line
        for line in ch.path("/etc/passwd").read_text().splitlines()
        if line.startswith("hs-gateway:")
    )
    assert passwd.endswith(":/var/lib/hs-gateway:/usr/sbin/nologin")
    assert os.readlink(ch.path("/usr/bin/hs-gateway")) == "/opt/venvs/hs-gateway/bin/hs-gateway"
    assert os.readlink(ch.path("/opt/venvs/hs-gateway/bin/python3")) == "/usr/bin/python3"
    unit = next(
        p
        for p in (
            ch.path("/lib/systemd/system/hs-gateway.service"),
            ch.path("/usr/lib/systemd/system/hs-gateway.service"),
        )
        if p.exists()
    )
    assert unit.read_text() == (ROOT / "systemd" / "hs-gateway.service").read_text()
    assert not ch.path("/etc/systemd/system/multi-user.target.wants/hs-gateway.service").exists()
    # The unit's Documentation= link.
    assert ch.path("/usr/share/doc/hs-gateway/README.md").is_file()
    assert ch.owner_mode("/etc/hs-gateway/gateway.toml") == (0, gid, 0o640)
    assert ch.owner_mode("/var/lib/hs-gateway") == (uid, gid, 0o750)
    assert ch.owner_mode("/etc/hs-gateway/tls/ca.key") == (0, 0, 0o600)
    assert ch.owner_mode("/etc/hs-gateway/tls/ca.pem") == (0, 0, 0o644)
    assert ch.owner_mode("/etc/hs-gateway/tls/server.key") == (0, gid, 0o640)
    assert ch.owner_mode("/etc/hs-gateway/tls/server.pem") == (0, 0, 0o644)
    conffiles = ch.ok("dpkg-query", "-W", "-f=${Conffiles}", "hs-gateway")
    for name in ("gateway.toml", "points/tuning.trio", "points/site.trio", "maps/meter.csv"):
        assert f"/etc/hs-gateway/{name} " in conffiles
    if shutil.which("systemd-analyze"):
        verify_unit(unit, ch)

    # -- the service user can read what the service needs -------------------------------
    out = ch.ok("hs-gateway", "check-config", user="hs-gateway")
    assert "OK" in out

    # -- users: root acts as the store's owner, so the service can open the file -------
    ch.ok(
        "hs-gateway",
        "user",
        "add",
        "admin",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert ch.owner_mode("/var/lib/hs-gateway/gateway.db")[:2] == (uid, gid)
    assert "admin" in ch.ok("hs-gateway", "user", "list")

    # -- edit a conffile, then run the service briefly as the service user -------------
    port = free_port()
    toml = ch.path("/etc/hs-gateway/gateway.toml")
    edited = toml.read_text().replace("port = 8443", f"port = {port}")
    assert edited != toml.read_text()
    toml.write_text(edited)
    serve_briefly(ch, port)

    # -- reinstall: edited conffiles and the generated certificates stay -----------------
    certs_before = {
        n: sha256(ch.path(f"/etc/hs-gateway/tls/{n}")) for n in ("ca.key", "server.key")
    }
    ch.ok("dpkg", "--force-confdef", "--force-confold", "-i", "/tmp/hs-gateway.deb")
    assert toml.read_text() == edited
    assert {n: sha256(ch.path(f"/etc/hs-gateway/tls/{n}")) for n in certs_before} == certs_before

    # -- remove keeps the state and the configuration; purge deletes them ---------------
    ch.ok("dpkg", "-r", "hs-gateway")
    assert not ch.path("/usr/bin/hs-gateway").exists()
    assert not ch.path("/opt/venvs/hs-gateway/bin/hs-gateway").exists()
    assert ch.path("/var/lib/hs-gateway/gateway.db").exists()
    assert toml.read_text() == edited
    ch.ok("dpkg", "-P", "hs-gateway")
    assert not ch.path("/var/lib/hs-gateway").exists()
    assert not ch.path("/etc/hs-gateway").exists()


def verify_unit(unit: Path, ch: Chroot) -> None:
    """systemd-analyze verify of the installed unit, its command resolved inside the root."""
    exe = ch.path("/opt/venvs/hs-gateway/bin/hs-gateway")
    copy = ch.path("/tmp/hs-gateway.service")
    copy.write_text(unit.read_text().replace("/usr/bin/hs-gateway", str(exe)))
    done = run(["systemd-analyze", "verify", "--man=no", str(copy)], timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def serve_briefly(ch: Chroot, port: int) -> None:
    """Start `hs-gateway serve` as hs-gateway, ask it over TLS, stop it with SIGTERM."""
    proc = subprocess.Popen(
        ["chroot", "--userspec=hs-gateway:hs-gateway", str(ch.root), "hs-gateway", "serve"],
        env=CHROOT_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        context = ssl.create_default_context(cafile=str(ch.path("/etc/hs-gateway/tls/ca.pem")))
        status = None
        deadline = time.monotonic() + 60
        while status is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/api/about", context=context, timeout=5
                )
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert status == 401, f"no answer from the service (exit {proc.poll()})"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-m", "packaging", "-v"]))
