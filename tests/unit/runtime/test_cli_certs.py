"""hs-gateway certs: files, modes, chains, and never overwriting without --force."""

from __future__ import annotations

import grp
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.auth.pki import common_name, load_certificates, load_certified_key
from gateway.runtime.cli import main
from tests.unit.runtime.test_config import TOML, write_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    toml = TOML.replace("enabled = false", "enabled = true")
    return write_config(tmp_path / "etc", toml)


def certs(etc: Path, *args: str) -> int:
    return main(["certs", args[0], "--config-dir", str(etc), *args[1:]])


def test_init_ca_server_and_client(
    etc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = os.umask(0)  # the modes must not depend on the umask
    try:
        assert certs(etc, "init-ca", "--cn", "Plant CA", "--organization", "ACME") == 0
        assert certs(etc, "server", "--host", "gw.example", "--ip", "192.0.2.10") == 0
        out = tmp_path / "devices"
        assert certs(etc, "client", "bms-1", "--out", str(out), "--key-type", "rsa") == 0
    finally:
        os.umask(old)
    tls = etc / "tls"
    assert {p.name: mode(p) for p in tls.iterdir()} == {
        "ca.pem": 0o644,
        "ca.key": 0o600,
        "server.pem": 0o644,
        "server.key": 0o600,
    }
    assert (mode(out / "bms-1.pem"), mode(out / "bms-1.key")) == (0o644, 0o600)
    ca = load_certified_key(tls / "ca.pem", tls / "ca.key")
    assert ca.common_name == "Plant CA"
    server_chain = load_certificates(tls / "server.pem")
    assert [common_name(c) for c in server_chain] == ["gw.example", "Plant CA"]
    sans = server_chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["gw.example"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]
    device = load_certificates(out / "bms-1.pem")[0]
    assert common_name(device) == "bms-1"
    usage = device.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    # The server certificate, its key and the CA make a working TLS server context.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls / "server.pem", tls / "server.key")
    context.load_verify_locations(tls / "ca.pem")
    printed = capsys.readouterr().out
    assert '[server.tls.clients] "bms-1" = "viewer"' in printed
    # And the whole configuration now checks clean, TLS files included.
    assert main(["check-config", "--config-dir", str(etc)]) == 0


def test_nothing_is_overwritten_without_force(
    etc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs(etc, "init-ca") == 0
    before = (etc / "tls" / "ca.key").read_bytes()
    assert certs(etc, "init-ca") == 1
    assert "exists; use --force" in capsys.readouterr().err
    assert (etc / "tls" / "ca.key").read_bytes() == before
    assert certs(etc, "init-ca", "--force") == 0
    assert (etc / "tls" / "ca.key").read_bytes() != before
    assert certs(etc, "server") == 0
    assert certs(etc, "server") == 1
    assert certs(etc, "server", "--force") == 0


def test_server_without_a_ca(etc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs(etc, "server") == 1
    assert "run 'certs init-ca' first" in capsys.readouterr().err
    assert not (etc / "tls" / "server.pem").exists()


def test_server_key_shared_with_a_group(etc: Path) -> None:
    group = grp.getgrgid(os.getegid()).gr_name
    assert certs(etc, "init-ca") == 0
    assert certs(etc, "server", "--group", group) == 0
    key = etc / "tls" / "server.key"
    assert mode(key) == 0o640
    assert key.stat().st_gid == os.getegid()


def test_unknown_group(etc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs(etc, "init-ca") == 0
    assert certs(etc, "server", "--group", "no-such-group-here") == 1
    assert "no group" in capsys.readouterr().err


def test_client_name_cannot_escape_the_output_directory(
    etc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs(etc, "init-ca") == 0
    assert certs(etc, "client", "../evil", "--out", str(etc)) == 1
    assert "cannot be a file name" in capsys.readouterr().err


def test_without_gateway_toml_the_default_paths_are_used(tmp_path: Path) -> None:
    assert main(["certs", "init-ca", "--config-dir", str(tmp_path)]) == 0
    assert (tmp_path / "tls" / "ca.pem").exists()
    assert (tmp_path / "tls" / "ca.key").exists()


def test_paths_follow_gateway_toml(tmp_path: Path) -> None:
    toml = TOML.replace(
        "enabled = false",
        'certificate = "pki/gw.pem"\nprivate_key = "pki/gw.key"\nca_certificates = "pki/site.pem"',
    )
    etc = write_config(tmp_path / "etc", toml)
    assert certs(etc, "init-ca") == 0
    assert certs(etc, "server") == 0
    assert sorted(p.name for p in (etc / "pki").iterdir()) == [
        "gw.key",
        "gw.pem",
        "site.key",
        "site.pem",
    ]
