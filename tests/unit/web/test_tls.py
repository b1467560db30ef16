"""TLSConfig: files checked with errors that name them, Hypercorn settings, SSL contexts."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from hypercorn.config import Config

from gateway.auth.pki import create_ca, save_private_key
from gateway.web.tls import PeerCertificate, TLSConfig, TLSConfigError, peer_certificate
from tests.web_harness import SitePki, make_site_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    return make_site_pki(tmp_path_factory.mktemp("pki"))


def _config(pki: SitePki, **changes: object) -> TLSConfig:
    options: dict[str, object] = {
        "certificate_path": pki.server_pem,
        "private_key_path": pki.server_key,
        "ca_certificates_path": pki.ca_pem,
    }
    options.update(changes)
    return TLSConfig(**options)  # type: ignore[arg-type]


def test_context_requires_verified_client_certificates_by_default(pki: SitePki) -> None:
    ctx = _config(pki).ssl_context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert len(ctx.get_ca_certs()) == 1


@pytest.mark.parametrize(
    ("changes", "mode"),
    [
        ({"require_client_cert": False}, ssl.CERT_OPTIONAL),
        ({"require_client_cert": False, "ca_certificates_path": None}, ssl.CERT_NONE),
        ({}, ssl.CERT_REQUIRED),
    ],
)
def test_verify_mode_follows_the_policy(
    pki: SitePki, changes: dict[str, object], mode: ssl.VerifyMode
) -> None:
    assert _config(pki, **changes).ssl_context().verify_mode is mode


def test_min_version_tls13(pki: SitePki) -> None:
    ctx = _config(pki, min_version=ssl.TLSVersion.TLSv1_3).ssl_context()
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1])
def test_old_min_versions_are_refused(pki: SitePki, version: ssl.TLSVersion) -> None:
    with pytest.raises(TLSConfigError, match="min_version"):
        _config(pki, min_version=version)


def test_client_certificates_need_a_ca(pki: SitePki) -> None:
    with pytest.raises(TLSConfigError, match="ca_certificates_path"):
        _config(pki, ca_certificates_path=None)


def test_configure_fills_hypercorn_settings(pki: SitePki) -> None:
    config = Config()
    assert not config.ssl_enabled
    _config(pki).configure(config)
    assert config.ssl_enabled
    assert config.certfile == str(pki.server_pem)
    assert config.keyfile == str(pki.server_key)
    assert config.ca_certs == str(pki.ca_pem)
    assert config.verify_mode is ssl.CERT_REQUIRED
    # Hypercorn's own context from these settings loads and verifies clients the same way.
    ctx = config.create_ssl_context()
    assert ctx is not None
    assert ctx.verify_mode is ssl.CERT_REQUIRED


def _bad_files(pki: SitePki, tmp: Path) -> list[tuple[str, dict[str, object], Path, str]]:
    garbage = tmp / "garbage.pem"
    garbage.write_text("not a PEM file\n")
    other_key = tmp / "other.key"
    save_private_key(other_key, create_ca().key)
    encrypted = tmp / "encrypted.key"
    save_private_key(encrypted, create_ca().key, password=b"s3cret")
    missing = tmp / "missing.pem"
    directory = tmp / "a-directory"
    directory.mkdir(exist_ok=True)
    return [
        ("missing cert", {"certificate_path": missing}, missing, "does not exist"),
        ("missing key", {"private_key_path": missing}, missing, "does not exist"),
        ("missing ca", {"ca_certificates_path": missing}, missing, "does not exist"),
        ("directory", {"certificate_path": directory}, directory, "is a directory"),
        ("garbage cert", {"certificate_path": garbage}, garbage, "not a PEM certificate"),
        ("garbage ca", {"ca_certificates_path": garbage}, garbage, "not a PEM CA certificate"),
        ("garbage key", {"private_key_path": garbage}, garbage, "not a PEM private key"),
        ("key of another cert", {"private_key_path": other_key}, other_key, "not the private key"),
        ("encrypted, no password", {"private_key_path": encrypted}, encrypted, "key_password"),
        (
            "wrong password",
            {"private_key_path": encrypted, "key_password": "wrong"},
            encrypted,
            "does not decrypt",
        ),
    ]


def test_bad_files_are_named(pki: SitePki, tmp_path: Path) -> None:
    failures = []
    for case, changes, path, message in _bad_files(pki, tmp_path):
        config = _config(pki, **changes)
        builds = (config.check_files, config.ssl_context, partial(config.configure, Config()))
        for build in builds:
            try:
                build()
            except TLSConfigError as exc:
                if exc.path != path or str(path) not in str(exc) or message not in str(exc):
                    failures.append(f"{case}: {exc}")
            else:
                failures.append(f"{case}: no error")
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_named(pki: SitePki, tmp_path: Path) -> None:
    key = tmp_path / "locked.key"
    key.write_bytes(pki.server_key.read_bytes())
    key.chmod(0)
    with pytest.raises(TLSConfigError, match="cannot be read") as info:
        _config(pki, private_key_path=key).ssl_context()
    assert info.value.path == key


def test_encrypted_key_with_its_password(pki: SitePki, tmp_path: Path) -> None:
    from gateway.auth.pki import load_private_key

    key = tmp_path / "server-encrypted.key"
    save_private_key(key, load_private_key(pki.server_key), password=b"s3cret")
    for password in ("s3cret", b"s3cret"):
        config = _config(pki, private_key_path=key, key_password=password)
        assert config.ssl_context().verify_mode is ssl.CERT_REQUIRED
        hypercorn = Config()
        config.configure(hypercorn)
        assert hypercorn.keyfile_password == "s3cret"
        assert hypercorn.create_ssl_context() is not None
    assert "s3cret" not in repr(config)


def test_peer_certificate_from_scope(pki: SitePki) -> None:
    cert_path, _ = pki.client("ahu-7")
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text())
    peer = PeerCertificate.from_der(der)
    assert peer.common_name == "ahu-7"
    assert peer.subject == "CN=ahu-7"
    assert peer.issuer == "CN=test site CA"
    assert peer_certificate({"state": {"hs_gateway.peer_certificate": peer}}) is peer
    for scope in ({}, {"state": None}, {"state": {"hs_gateway.peer_certificate": "CN=x"}}):
        assert peer_certificate(scope) is None


def test_plain_http_serving_does_not_load_cryptography() -> None:
    # ~8 MiB of RSS: loaded only where a certificate is read (TLS files, a client's cert).
    code = (
        "import sys, gateway.web.app, gateway.web.tls, gateway.storage.sqlite;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
