"""Serve an ASGI app with the real Hypercorn on 127.0.0.1 for a test, on an ephemeral port."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import hypercorn.trio
import trio
from hypercorn.config import Config

from gateway.auth.pki import (
    CertifiedKey,
    create_ca,
    issue_client_certificate,
    issue_server_certificate,
    save_certificates,
    save_private_key,
)


@asynccontextmanager
async def serve_app(app: Any, *, configure: Any = None, serve: Any = None) -> AsyncIterator[str]:
    """Run ``app`` under Hypercorn until the block ends; yields the base URL."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 2.0
    if configure is not None:
        configure(config)
    shutdown = trio.Event()
    serve_fn = serve or hypercorn.trio.serve
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve_fn, app, config, shutdown_trigger=shutdown.wait))
        try:
            yield binds[0]
        finally:
            shutdown.set()


def client_ssl_context(ca_pem: str | None = None) -> ssl.SSLContext:
    """A client TLS context trusting ``ca_pem`` (a PEM file path)."""
    return ssl.create_default_context(cafile=ca_pem)


# -- TLS files and Haystack logins, for the auth and TLS tests ------------------------------


@dataclass(frozen=True)
class SitePki:
    """A site CA with a server certificate for 127.0.0.1, written as PEM files in ``root``."""

    root: Path
    ca: CertifiedKey

    @property
    def ca_pem(self) -> Path:
        return self.root / "ca.pem"

    @property
    def server_pem(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    def client(self, name: str, **options: Any) -> tuple[Path, Path]:
        """Issue and write a device certificate; its (cert, key) paths."""
        return write_certified(self.root, name, issue_client_certificate(self.ca, name, **options))

    def client_context(self, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """A client context trusting the site CA, presenting ``cert`` when given."""
        ctx = client_ssl_context(str(self.ca_pem))
        if cert is not None:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        return ctx


def write_certified(root: Path, name: str, certified: CertifiedKey) -> tuple[Path, Path]:
    """Write a certificate and its key as ``{name}.pem`` / ``{name}.key`` in ``root``."""
    cert_path, key_path = root / f"{name}.pem", root / f"{name}.key"
    save_certificates(cert_path, certified.certificate)
    save_private_key(key_path, certified.key)
    return cert_path, key_path


def make_site_pki(root: Path) -> SitePki:
    """A fresh site CA and a server certificate (``localhost``, ``127.0.0.1``) in ``root``."""
    ca = create_ca("test site CA")
    pki = SitePki(root, ca)
    save_certificates(pki.ca_pem, ca.certificate)
    server = issue_server_certificate(
        ca, "gateway", hostnames=["localhost"], ip_addresses=["127.0.0.1"]
    )
    save_certificates(pki.server_pem, server.certificate)
    save_private_key(pki.server_key, server.key)
    return pki


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``SCHEME a=1, b=2`` -> (scheme, params), read independently of the server's parser."""
    scheme, _, rest = value.partition(" ")
    return scheme, auth_params(rest)


def auth_params(value: str) -> dict[str, str]:
    """``a=1, b=2`` -> {"a": "1", "b": "2"} (Authentication-Info has no scheme)."""
    return dict(p.strip().split("=", 1) for p in value.split(",") if p.strip())


def b64_text(value: str) -> str:
    """Decode base64 in either alphabet, padded or not."""
    value = value.replace("-", "+").replace("_", "/")
    return base64.b64decode(value + "=" * (-len(value) % 4)).decode()


async def scram_login(http: Any, url: str, username: str, password: str, /, **quirks: Any) -> str:
    """Log in with SCRAM through ``http`` (an httpx.AsyncClient) at ``url``; the auth token."""
    from tests.unit.auth.scram_client import HandClient

    client = HandClient(username, password, **quirks)
    r = await http.get(url, headers={"Authorization": client.hello()})
    assert r.status_code == 401, (r.status_code, r.text)
    _, hello = parse_challenge(r.headers["WWW-Authenticate"])
    r = await http.get(url, headers={"Authorization": client.first(hello["handshakeToken"])})
    assert r.status_code == 401, (r.status_code, r.text)
    _, first = parse_challenge(r.headers["WWW-Authenticate"])
    server_first = b64_text(first["data"])
    final = client.final(server_first, first["handshakeToken"])
    r = await http.get(url, headers={"Authorization": final})
    assert r.status_code == 200, (r.status_code, r.text)
    info = auth_params(r.headers["Authentication-Info"])
    assert client.verify_server_final(b64_text(info["data"]))
    return info["authToken"]


def point_records() -> list[dict[str, Any]]:
    """A small site: a history point (``his``, kW) and a writable point (``writable``, °F)."""
    from gateway.haystack.kinds import MARKER, Ref

    return [
        {"id": Ref("site"), "site": MARKER, "dis": "Site", "tz": "UTC"},
        {
            "id": Ref("power"),
            "point": MARKER,
            "his": MARKER,
            "sensor": MARKER,
            "kind": "Number",
            "unit": "kW",
            "tz": "UTC",
            "dis": "Site power",
            "siteRef": Ref("site"),
        },
        {
            "id": Ref("setpoint"),
            "point": MARKER,
            "writable": MARKER,
            "sp": MARKER,
            "kind": "Number",
            "unit": "°F",
            "tz": "UTC",
            "dis": "Zone setpoint",
            "siteRef": Ref("site"),
        },
    ]
