"""The site PKI: chains verified by `cryptography` and by a real TLS handshake on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from gateway.auth import pki
from gateway.auth.pki import CertifiedKey

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> CertifiedKey:
    return pki.create_ca("Test Site CA", organization="hs-gateway tests", now=NOW)


@pytest.fixture(scope="module")
def server(ca: CertifiedKey) -> CertifiedKey:
    return pki.issue_server_certificate(
        ca,
        "gateway",
        hostnames=["gateway.local", "localhost"],
        ip_addresses=["127.0.0.1", ipaddress.ip_address("::1")],
        now=NOW,
    )


@pytest.fixture(scope="module")
def device(ca: CertifiedKey) -> CertifiedKey:
    return pki.issue_client_certificate(ca, "device-01", now=NOW)


def test_ca_is_a_leaf_only_ca(ca: CertifiedKey) -> None:
    cert = ca.certificate
    assert cert.subject == cert.issuer
    assert ca.common_name == "Test Site CA"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=3650)


def test_server_chain_verifies_for_every_name(ca: CertifiedKey, server: CertifiedKey) -> None:
    store = Store([ca.certificate])
    for subject in (
        DNSName("gateway.local"),
        DNSName("localhost"),
        IPAddress(ipaddress.ip_address("127.0.0.1")),
        IPAddress(ipaddress.ip_address("::1")),
    ):
        verifier = PolicyBuilder().store(store).time(NOW).build_server_verifier(subject)
        chain = verifier.verify(server.certificate, [])
        assert chain[-1] == ca.certificate
    wrong = PolicyBuilder().store(store).time(NOW).build_server_verifier(DNSName("other.local"))
    with pytest.raises(x509.verification.VerificationError):
        wrong.verify(server.certificate, [])
    eku = server.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_server_certificate_needs_a_name(ca: CertifiedKey) -> None:
    with pytest.raises(ValueError, match="at least one"):
        pki.issue_server_certificate(ca, "gateway", now=NOW)


def test_device_chain_verifies_as_a_client(ca: CertifiedKey, device: CertifiedKey) -> None:
    verifier = PolicyBuilder().store(Store([ca.certificate])).time(NOW).build_client_verifier()
    verified = verifier.verify(device.certificate, [])
    assert verified.chain[-1] == ca.certificate
    assert pki.common_name(device.certificate) == "device-01"
    assert pki.common_name(device.certificate.public_bytes(serialization.Encoding.DER)) == (
        "device-01"
    )
    eku = device.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = device.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["device-01"]
    with pytest.raises(ValueError, match="name"):
        pki.issue_client_certificate(ca, "", now=NOW)


def test_device_names_that_are_not_dns_names(ca: CertifiedKey) -> None:
    ahu = pki.issue_client_certificate(ca, "AHU 1/east", now=NOW)
    assert ahu.common_name == "AHU 1/east"
    san = ahu.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:hs-gateway:device:AHU%201%2Feast"
    ]
    verifier = PolicyBuilder().store(Store([ca.certificate])).time(NOW).build_client_verifier()
    verifier.verify(ahu.certificate, [])


def test_other_ca_and_expiry_fail_verification(ca: CertifiedKey, device: CertifiedKey) -> None:
    other = pki.create_ca("Other CA", now=NOW)
    foreign = PolicyBuilder().store(Store([other.certificate])).time(NOW).build_client_verifier()
    with pytest.raises(x509.verification.VerificationError):
        foreign.verify(device.certificate, [])
    short = pki.issue_client_certificate(ca, "temp", valid_days=1, now=NOW)
    later = NOW + dt.timedelta(days=2)
    expired = PolicyBuilder().store(Store([ca.certificate])).time(later).build_client_verifier()
    with pytest.raises(x509.verification.VerificationError):
        expired.verify(short.certificate, [])


def test_leaf_never_outlives_its_ca() -> None:
    short_ca = pki.create_ca("Short CA", valid_days=30, now=NOW)
    leaf = pki.issue_client_certificate(short_ca, "dev", valid_days=825, now=NOW)
    assert leaf.certificate.not_valid_after_utc == short_ca.certificate.not_valid_after_utc


def test_rsa_keys(ca: CertifiedKey) -> None:
    leaf = pki.issue_server_certificate(ca, "gw", hostnames=["gw"], key_type="rsa", now=NOW)
    assert isinstance(leaf.key, rsa.RSAPrivateKey) and leaf.key.key_size == 3072
    assert leaf.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    leaf.certificate.verify_directly_issued_by(ca.certificate)
    with pytest.raises(ValueError, match="key type"):
        pki.new_private_key("dsa")  # type: ignore[arg-type]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        pki.create_ca(now=dt.datetime(2025, 1, 1))


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_files_are_written_with_safe_modes(tmp_path: Path, ca: CertifiedKey, umask: int) -> None:
    old = os.umask(umask)
    try:
        pki.save_private_key(tmp_path / "ca.key", ca.key)
        pki.save_certificates(tmp_path / "ca.pem", ca.certificate)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.pem").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key", "ca.pem"]  # no temp files
    loaded = pki.load_certified_key(tmp_path / "ca.pem", tmp_path / "ca.key")
    assert loaded.certificate == ca.certificate
    assert loaded.key.public_key() == ca.key.public_key()


def test_encrypted_key_and_chain_files(
    tmp_path: Path, ca: CertifiedKey, server: CertifiedKey
) -> None:
    pki.save_private_key(tmp_path / "server.key", server.key, password=b"hunter2")
    assert b"ENCRYPTED" in (tmp_path / "server.key").read_bytes()
    with pytest.raises(TypeError):
        pki.load_private_key(tmp_path / "server.key")
    with pytest.raises(ValueError):
        pki.load_private_key(tmp_path / "server.key", password=b"wrong")
    key = pki.load_private_key(tmp_path / "server.key", password=b"hunter2")
    assert key.public_key() == server.key.public_key()
    pki.save_certificates(tmp_path / "chain.pem", server.certificate, ca.certificate)
    assert pki.load_certificates(tmp_path / "chain.pem") == [server.certificate, ca.certificate]
    pki.save_private_key(tmp_path / "other.key", ca.key)
    with pytest.raises(ValueError, match="is not the key of"):
        pki.load_certified_key(tmp_path / "chain.pem", tmp_path / "other.key")
    with pytest.raises(ValueError, match="no certificate"):
        pki.save_certificates(tmp_path / "none.pem")
    assert b"ENCRYPTED" in server.key_pem(b"pw") and server.cert_pem().startswith(b"-----BEGIN")


# -- a real TLS handshake between two stdlib ssl contexts ----------------------------------------


def _write(tmp: Path, name: str, issued: CertifiedKey) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    pki.save_certificates(cert, issued.certificate)
    pki.save_private_key(key, issued.key)
    return cert, key


def _handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> tuple[str | None, Exception | None]:
    """Connect over 127.0.0.1: (the client CN the server saw, or None; the client's error)."""
    seen: list[str | None] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            conn.settimeout(5)
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    seen.append(pki.common_name(tls.getpeercert(binary_form=True) or b""))
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        error: Exception | None = None
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                assert tls.recv(2) == b"ok"
        except (ssl.SSLError, ConnectionError) as exc:
            error = exc
        finally:
            thread.join(5)
    assert not thread.is_alive()
    return (seen[0] if seen else None), error


def _server_context(tmp_path: Path, ca: CertifiedKey, server: CertifiedKey) -> ssl.SSLContext:
    server_cert, server_key = _write(tmp_path, "server", server)
    ca_file = tmp_path / "ca.pem"
    pki.save_certificates(ca_file, ca.certificate)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(server_cert, server_key)
    ctx.load_verify_locations(ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _client(tmp_path: Path, ca: CertifiedKey, identity: CertifiedKey | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    if identity is not None:
        cert, key = _write(tmp_path, identity.common_name or "client", identity)
        ctx.load_cert_chain(cert, key)
    return ctx


def test_mutual_tls_handshake(tmp_path: Path) -> None:
    # issued "now": the fixtures' fixed date would be rejected by the real clock of ssl
    ca_now = pki.create_ca("Live CA")
    server_now = pki.issue_server_certificate(ca_now, "gw", hostnames=["localhost"])
    device_now = pki.issue_client_certificate(ca_now, "device-01")
    server_ctx = _server_context(tmp_path, ca_now, server_now)
    assert _handshake(server_ctx, _client(tmp_path, ca_now, device_now)) == ("device-01", None)
    # no client certificate: the server refuses the handshake
    cn, error = _handshake(server_ctx, _client(tmp_path, ca_now, None))
    assert cn is None and error is not None
    # a client certificate from another CA: refused too
    stranger = pki.issue_client_certificate(pki.create_ca("Other CA"), "intruder")
    cn, error = _handshake(server_ctx, _client(tmp_path, ca_now, stranger))
    assert cn is None and error is not None
