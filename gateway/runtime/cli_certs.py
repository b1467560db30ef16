"""``hs-gateway certs init-ca|server|client``: the site PKI, as files with safe modes.

- ``init-ca``: a new site CA, ``ca.pem`` (0644) and ``ca.key`` (0600) beside the
  ``ca_certificates`` file of gateway.toml (``/etc/hs-gateway/tls/``).
- ``server``: the gateway's TLS certificate, signed by the site CA, for every ``--host`` and
  ``--ip`` clients use, written to the ``certificate`` / ``private_key`` files of gateway.toml.
  ``--group hs-gateway`` makes the key ``root:hs-gateway`` 0640, so the service (not running
  as root) can read it and nobody else can.
- ``client NAME``: a device certificate (CN = NAME) and its key, written to ``--out`` (the
  current directory by default) for the device; allow it in ``[server.tls.clients]``.

No command overwrites an existing file without ``--force``. Keys are EC P-256 unless
``--key-type rsa`` (RSA 3072) is asked for.
"""

from __future__ import annotations

import argparse
import grp
import os
import socket
import sys
from pathlib import Path
from typing import Any

from gateway.auth.pki import (
    CertifiedKey,
    KeyType,
    create_ca,
    issue_client_certificate,
    issue_server_certificate,
    load_certified_key,
    save_certificates,
    save_private_key,
)
from gateway.runtime.config import ConfigError, TLSSettings, load_settings

__all__ = ["add_parser"]

KEY_GROUP_MODE = 0o640


class CertsError(Exception):
    """A certs command that cannot be done; the message is for the operator."""


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``certs`` and its subcommands."""
    options = argparse.ArgumentParser(add_help=False, parents=[common])
    options.add_argument("--force", action="store_true", help="overwrite existing files")
    options.add_argument(
        "--days", type=int, metavar="N", help="validity in days (CA 3650, others 825)"
    )
    options.add_argument(
        "--key-type", choices=["ec", "rsa"], default="ec", help="EC P-256 (default) or RSA 3072"
    )
    certs = commands.add_parser(
        "certs",
        help="create the site CA, the server certificate and device certificates",
        description="The site PKI. File locations come from [server.tls] of gateway.toml.",
    )
    sub = certs.add_subparsers(dest="certs_command", metavar="<action>", required=True)

    init_ca = sub.add_parser(
        "init-ca",
        parents=[options],
        help="create the site CA (ca.pem, ca.key)",
        description="Create a new site CA. Every certificate it signed stops being trusted "
        "when it is replaced, so --force is needed to replace one.",
    )
    init_ca.add_argument("--cn", default="hs-gateway site CA", help="CA name (%(default)s)")
    init_ca.add_argument("--organization", help="organization (O=) of the CA")
    init_ca.set_defaults(handler=_handler(_init_ca))

    server = sub.add_parser(
        "server",
        parents=[options],
        help="issue the gateway's TLS certificate",
        description="Issue the gateway's certificate, signed by the site CA. Clients check "
        "the names and addresses they connect to against --host and --ip.",
    )
    server.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name of the gateway (repeatable; default: this host name and localhost)",
    )
    server.add_argument(
        "--ip",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="an IP address of the gateway (repeatable; default: 127.0.0.1 and ::1)",
    )
    server.add_argument("--cn", help="certificate CN (default: the first host name)")
    server.add_argument(
        "--group",
        metavar="GROUP",
        help="make the key readable by this group (0640), e.g. hs-gateway",
    )
    server.set_defaults(handler=_handler(_server))

    client = sub.add_parser(
        "client",
        parents=[options],
        help="issue a device (client) certificate",
        description="Issue a client certificate for a device or supervisory system; its CN "
        "is NAME, which [server.tls.clients] of gateway.toml must allow.",
    )
    client.add_argument("name", help="device name (the certificate CN)")
    client.add_argument(
        "--out", type=Path, default=Path("."), metavar="DIR", help="where NAME.pem and NAME.key go"
    )
    client.set_defaults(handler=_handler(_client))


def _handler(action: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            action(args, _tls_settings(args.config_dir))
        except CertsError as exc:
            print(f"hs-gateway: {exc}", file=sys.stderr)
            return 1
        return 0

    return run


def _tls_settings(config_dir: Path) -> TLSSettings:
    if not (config_dir / "gateway.toml").exists():
        defaults = TLSSettings()
        return TLSSettings(
            certificate=config_dir / defaults.certificate,
            private_key=config_dir / defaults.private_key,
            ca_certificates=config_dir / "tls" / "ca.pem",
        )
    try:
        return load_settings(config_dir).server.tls
    except ConfigError as exc:
        raise CertsError(str(exc)) from None


def _ca_paths(tls: TLSSettings) -> tuple[Path, Path]:
    if tls.ca_certificates is None:
        raise CertsError("gateway.toml sets no ca_certificates: there is no site CA to use")
    return tls.ca_certificates, tls.ca_certificates.with_suffix(".key")


def _check_free(force: bool, *paths: Path) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise CertsError(f"{', '.join(existing)} exists; use --force to replace it")
    for path in paths:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)


def _days(args: argparse.Namespace, default: int) -> int:
    days: int = args.days if args.days is not None else default
    if days < 1:
        raise CertsError("--days must be at least 1")
    return days


def _init_ca(args: argparse.Namespace, tls: TLSSettings) -> None:
    cert_path, key_path = _ca_paths(tls)
    _check_free(args.force, cert_path, key_path)
    key_type: KeyType = args.key_type
    ca = create_ca(
        args.cn, organization=args.organization, valid_days=_days(args, 3650), key_type=key_type
    )
    save_private_key(key_path, ca.key)
    save_certificates(cert_path, ca.certificate)
    print(f"site CA {args.cn!r}: {cert_path} (certificate), {key_path} (key, 0600)")


def _load_ca(tls: TLSSettings) -> CertifiedKey:
    cert_path, key_path = _ca_paths(tls)
    if not cert_path.exists() or not key_path.exists():
        raise CertsError(f"no site CA at {cert_path} and {key_path}: run 'certs init-ca' first")
    try:
        return load_certified_key(cert_path, key_path)
    except (OSError, ValueError) as exc:
        raise CertsError(f"cannot load the site CA: {exc}") from None


def _server(args: argparse.Namespace, tls: TLSSettings) -> None:
    _check_free(args.force, tls.certificate, tls.private_key)
    ca = _load_ca(tls)
    hosts = list(dict.fromkeys(args.host or [socket.gethostname(), "localhost"]))
    ips = list(dict.fromkeys(args.ip or ["127.0.0.1", "::1"]))
    key_type: KeyType = args.key_type
    try:
        issued = issue_server_certificate(
            ca,
            args.cn or hosts[0],
            hostnames=hosts,
            ip_addresses=ips,
            valid_days=_days(args, 825),
            key_type=key_type,
        )
    except ValueError as exc:
        raise CertsError(f"cannot issue the certificate: {exc}") from None
    save_private_key(tls.private_key, issued.key)
    if args.group:
        _share_with_group(tls.private_key, args.group)
    save_certificates(tls.certificate, issued.certificate, ca.certificate)
    names = ", ".join([*hosts, *ips])
    print(f"server certificate for {names}: {tls.certificate}, key {tls.private_key}")


def _share_with_group(path: Path, group: str) -> None:
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise CertsError(f"no group {group!r}") from None
    os.chown(path, -1, gid)
    os.chmod(path, KEY_GROUP_MODE)


def _client(args: argparse.Namespace, tls: TLSSettings) -> None:
    name: str = args.name
    if "/" in name or name.startswith("."):
        raise CertsError(f"{name!r} cannot be a file name; choose a device name without /")
    out: Path = args.out
    cert_path, key_path = out / f"{name}.pem", out / f"{name}.key"
    _check_free(args.force, cert_path, key_path)
    ca = _load_ca(tls)
    key_type: KeyType = args.key_type
    try:
        issued = issue_client_certificate(ca, name, valid_days=_days(args, 825), key_type=key_type)
    except ValueError as exc:
        raise CertsError(f"cannot issue the certificate: {exc}") from None
    save_private_key(key_path, issued.key)
    save_certificates(cert_path, issued.certificate)
    print(f"device certificate CN={name}: {cert_path}, key {key_path} (0600)")
    print(f'allow it in gateway.toml: [server.tls.clients] "{name}" = "viewer"')
