"""The site PKI: a CA, the gateway's server certificate, device (client) certificates, PEM files.

Used by ``hs-gateway certs init-ca|server|client`` and by the tests. Keys are EC P-256 by default
(small and fast on an ARM box; every TLS 1.2+ client takes them) or RSA 3072. Certificates carry
what strict verifiers (OpenSSL's X509_STRICT, Python 3.13's default context, the
``cryptography`` verifier) expect: a critical basicConstraints, keyUsage, extendedKeyUsage,
subject and authority key identifiers, and — for servers — subjectAltNames for every host name
and IP address clients use (clients ignore the CN).

- CA: ``CA:TRUE, pathlen:0``, keyCertSign + cRLSign, 10 years by default.
- Server: serverAuth, SANs, 825 days by default (the longest lifetime Apple clients accept).
- Device: clientAuth, CN = device name (what :class:`~gateway.auth.authenticators.CertAuthenticator`
  matches), a SAN with the same name (a DNS name when it is one, else
  ``urn:hs-gateway:device:<name>``), 825 days by default.

Validity starts five minutes before ``now`` (devices' clocks drift) and never outlives the CA.
Files are written atomically with safe modes: private keys 0600 (optionally encrypted with a
password), certificates 0644, whatever the umask.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertifiedKey",
    "KeyType",
    "PrivateKey",
    "common_name",
    "create_ca",
    "issue_client_certificate",
    "issue_server_certificate",
    "load_certificates",
    "load_certified_key",
    "load_private_key",
    "new_private_key",
    "save_certificates",
    "save_private_key",
]

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

KEY_MODE: Final = 0o600
CERT_MODE: Final = 0o644
_BACKDATE: Final = dt.timedelta(minutes=5)
_RSA_BITS: Final = 3072
_DNS_NAME: Final = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A private key and its certificate."""

    key: PrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def common_name(self) -> str | None:
        """The certificate subject's CN."""
        return common_name(self.certificate)

    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM, encrypted when ``password`` is given."""
        return _key_pem(self.key, password)


def new_private_key(key_type: KeyType = "ec") -> PrivateKey:
    """A new EC P-256 or RSA 3072 private key."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    raise ValueError(f"unknown key type {key_type!r}")


def _name(common: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now


def create_ca(
    common_name: str = "hs-gateway site CA",
    *,
    organization: str | None = None,
    valid_days: int = 3650,
    key_type: KeyType = "ec",
    now: dt.datetime | None = None,
) -> CertifiedKey:
    """A new self-signed site CA that may sign leaf certificates only (pathlen 0)."""
    key = new_private_key(key_type)
    start = _now(now)
    subject = _name(common_name, organization)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertifiedKey(key, cert)


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    ca: CertifiedKey,
    *,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
    valid_days: int,
    key_type: KeyType,
    now: dt.datetime | None,
) -> CertifiedKey:
    key = new_private_key(key_type)
    start = _now(now)
    end = min(start + dt.timedelta(days=valid_days), ca.certificate.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return CertifiedKey(key, builder.sign(ca.key, hashes.SHA256()))


def issue_server_certificate(
    ca: CertifiedKey,
    common_name: str,
    *,
    hostnames: Iterable[str] = (),
    ip_addresses: Iterable[str | IPAddress] = (),
    valid_days: int = 825,
    key_type: KeyType = "ec",
    now: dt.datetime | None = None,
) -> CertifiedKey:
    """The gateway's TLS certificate, valid for ``hostnames`` and ``ip_addresses``."""
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if not sans:
        raise ValueError("a server certificate needs at least one host name or IP address")
    return _issue(
        ca,
        subject=_name(common_name, None),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=sans,
        valid_days=valid_days,
        key_type=key_type,
        now=now,
    )


def issue_client_certificate(
    ca: CertifiedKey,
    device_name: str,
    *,
    valid_days: int = 825,
    key_type: KeyType = "ec",
    now: dt.datetime | None = None,
) -> CertifiedKey:
    """A device's client certificate: CN = ``device_name``, clientAuth."""
    if not device_name:
        raise ValueError("a device certificate needs a name")
    return _issue(
        ca,
        subject=_name(device_name, None),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        sans=[_device_san(device_name)],
        valid_days=valid_days,
        key_type=key_type,
        now=now,
    )


def _device_san(device_name: str) -> x509.GeneralName:
    # Strict verifiers (cryptography's) want a SAN in client certificates too; the CN stays
    # what CertAuthenticator matches.
    if _DNS_NAME.fullmatch(device_name):
        return x509.DNSName(device_name)
    return x509.UniformResourceIdentifier("urn:hs-gateway:device:" + quote(device_name, safe=""))


def common_name(certificate: x509.Certificate | bytes) -> str | None:
    """The subject CN of a certificate (or of its DER bytes, as ``ssl`` gives them)."""
    cert = (
        x509.load_der_x509_certificate(certificate)
        if isinstance(certificate, bytes)
        else certificate
    )
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _key_pem(key: PrivateKey, password: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # Created with the final mode (fchmod: the umask must not widen or narrow it), filled,
    # synced, then renamed over the target, so no reader ever sees a partial or open key file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_private_key(path: str | Path, key: PrivateKey, *, password: bytes | None = None) -> None:
    """Write a private key as PEM with mode 0600 (encrypted when ``password`` is given)."""
    _write_atomic(Path(path), _key_pem(key, password), KEY_MODE)


def save_certificates(path: str | Path, *certificates: x509.Certificate) -> None:
    """Write one or more certificates (leaf first, for a chain) as PEM with mode 0644."""
    if not certificates:
        raise ValueError("no certificate to save")
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    _write_atomic(Path(path), pem, CERT_MODE)


def load_private_key(path: str | Path, *, password: bytes | None = None) -> PrivateKey:
    """Read a PEM private key (EC or RSA)."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=password)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an EC or RSA private key")
    return key


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Read every certificate of a PEM file."""
    certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    return list(certs)


def load_certified_key(
    cert_path: str | Path, key_path: str | Path, *, password: bytes | None = None
) -> CertifiedKey:
    """Read a certificate and its key (e.g. the site CA, to issue more certificates)."""
    cert = load_certificates(cert_path)[0]
    key = load_private_key(key_path, password=password)
    if cert.public_key() != key.public_key():
        raise ValueError(f"{key_path} is not the key of {cert_path}")
    return CertifiedKey(key, cert)
