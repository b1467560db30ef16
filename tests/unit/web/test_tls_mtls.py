"""mTLS over the real Hypercorn: the handshake refuses bad certificates, the app sees good ones.

Certificates come from the project's own PKI (``gateway.auth.pki``); the clients are httpx
over real TLS on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from quart import request

from gateway.auth.authenticators import CertAuthenticator
from gateway.auth.pki import create_ca, issue_client_certificate
from gateway.auth.roles import Role
from gateway.haystack.codecs import ZINC
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import Number, Ref
from gateway.storage.memory import InMemoryAdapter
from gateway.web.app import create_app
from gateway.web.tls import TLSConfig, client_common_name, client_subject, serve
from tests.web_harness import SitePki, make_site_pki, point_records, serve_app, write_certified

ZINC_HEADERS = {"Content-Type": "text/zinc", "Accept": "text/zinc"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    return make_site_pki(tmp_path_factory.mktemp("mtls"))


def _cert_app(allowed: dict[str, Role]) -> Any:
    storage = InMemoryAdapter(point_records())
    app = create_app(storage=storage, authenticator=CertAuthenticator(roles=allowed))
    seen: list[tuple[str | None, str | None]] = []

    @app.route("/whoami")
    async def whoami() -> str:
        seen.append((client_subject(request.scope), client_common_name(request.scope)))
        return client_subject(request.scope) or "no certificate"

    app.extensions["seen"] = seen
    return app


@asynccontextmanager
async def _serving(app: Any, tls: TLSConfig) -> AsyncIterator[str]:
    async with serve_app(app, serve=partial(serve, tls=tls)) as url:
        yield url


def _tls(pki: SitePki, **options: Any) -> TLSConfig:
    return TLSConfig(pki.server_pem, pki.server_key, pki.ca_pem, **options)


async def _get(url: str, context: ssl.SSLContext, **options: Any) -> httpx.Response:
    async with httpx.AsyncClient(verify=context, **options) as http:
        return await http.get(url, headers={"Accept": "text/zinc"})


async def _post(http: httpx.AsyncClient, url: str, grid: Grid) -> httpx.Response:
    return await http.post(url, content=ZINC.encode(grid), headers=ZINC_HEADERS)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no certificate", "did not return a certificate"),
        ("another CA", "unable to get local issuer certificate"),
        ("expired", "certificate has expired"),
    ],
)
async def test_bad_client_certificates_fail_the_handshake(
    pki: SitePki, tmp_path: Path, case: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    cert: tuple[Path, Path] | None = None
    if case == "another CA":
        cert = write_certified(tmp_path, "rogue", issue_client_certificate(create_ca(), "ahu-1"))
    elif case == "expired":
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        cert = pki.client("ahu-1-old", valid_days=1, now=long_ago)
    app = _cert_app({"ahu-1": Role.OPERATOR, "ahu-1-old": Role.OPERATOR})
    caplog.set_level(logging.INFO, logger="gateway.web.tls")
    async with _serving(app, _tls(pki)) as url:
        with pytest.raises(httpx.TransportError):
            await _get(url + "/whoami", pki.client_context(cert))
        # the same server serves a good certificate: the refusal was about the certificate
        good = await _get(url + "/whoami", pki.client_context(pki.client("ahu-1")))
        assert good.status_code == 200
    assert app.extensions["seen"] == [("CN=ahu-1", "ahu-1")]
    # the server log says why (OpenSSL's words), for whoever installs the device
    failures = [r.getMessage() for r in caplog.records if "handshake" in r.getMessage()]
    assert len(failures) == 1, failures
    assert reason in failures[0]


async def test_verified_but_not_allowed_cn_gets_403(pki: SitePki) -> None:
    # ahu-2 was retired: its certificate still verifies, its CN is off the list.
    app = _cert_app({"ahu-1": Role.OPERATOR})
    async with _serving(app, _tls(pki)) as url:
        r = await _get(url + "/api/about", pki.client_context(pki.client("ahu-2")))
        assert r.status_code == 403
        error = ZINC.decode(r.content)
        assert error.is_error
        assert "certificate" in str(error.meta["dis"])
        ok = await _get(url + "/api/about", pki.client_context(pki.client("ahu-1")))
        assert ok.status_code == 200
        assert ZINC.decode(ok.content)[0]["whoami"] == "ahu-1"


async def test_allowed_cn_is_the_caller_and_who_of_a_point_write(
    pki: SitePki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.web.security")
    app = _cert_app({"ahu-1": Role.OPERATOR})
    context = pki.client_context(pki.client("ahu-1"))
    async with _serving(app, _tls(pki)) as url, httpx.AsyncClient(verify=context) as http:
        r = await http.get(url + "/whoami")
        assert (r.status_code, r.text) == (200, "CN=ahu-1")
        write = Grid.from_rows(
            [{"id": Ref("setpoint"), "level": Number(8), "val": Number(72, "°F")}]
        )
        r = await http.post(
            url + "/api/pointWrite", content=ZINC.encode(write), headers=ZINC_HEADERS
        )
        assert r.status_code == 200
        assert not ZINC.decode(r.content).is_error, r.text
        r = await _post(http, url + "/api/pointWrite", Grid.from_rows([{"id": Ref("setpoint")}]))
        levels = {row["level"]: row for row in ZINC.decode(r.content)}
        assert levels[Number(8)]["who"] == "ahu-1"
        assert levels[Number(8)]["val"] == Number(72, "°F")
    # the log says who wrote, with the certificate's subject; the array read is not a write
    writes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pointWrite")]
    assert writes == ["pointWrite (write) by ahu-1 (role operator) from 127.0.0.1 [CN=ahu-1]"]


async def test_viewer_device_may_not_write(pki: SitePki) -> None:
    app = _cert_app({"meter-1": Role.VIEWER})
    context = pki.client_context(pki.client("meter-1"))
    async with _serving(app, _tls(pki)) as url, httpx.AsyncClient(verify=context) as http:
        write = Grid.from_rows([{"id": Ref("setpoint"), "level": Number(8), "val": Number(70)}])
        r = await http.post(
            url + "/api/pointWrite", content=ZINC.encode(write), headers=ZINC_HEADERS
        )
        assert r.status_code == 403
        assert ZINC.decode(r.content).is_error


async def test_each_connection_sees_its_own_certificate(pki: SitePki) -> None:
    # Hypercorn shares one state dict between a listener's connections; ours must not.
    app = _cert_app({"ahu-1": Role.VIEWER, "ahu-2": Role.VIEWER})
    one = pki.client_context(pki.client("ahu-1"))
    two = pki.client_context(pki.client("ahu-2"))
    async with (
        _serving(app, _tls(pki)) as url,
        httpx.AsyncClient(verify=one) as first,
        httpx.AsyncClient(verify=two) as second,
    ):
        results: list[tuple[str, str]] = []

        async def ask(http: httpx.AsyncClient, expected: str) -> None:
            for _ in range(5):
                r = await http.get(url + "/whoami")
                results.append((expected, r.text))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, first, "CN=ahu-1")
            nursery.start_soon(ask, second, "CN=ahu-2")
    assert len(results) == 10
    assert all(expected == got for expected, got in results), results


async def test_http2_connections_carry_the_certificate(pki: SitePki) -> None:
    app = _cert_app({"ahu-1": Role.VIEWER})
    context = pki.client_context(pki.client("ahu-1"))
    async with (
        _serving(app, _tls(pki)) as url,
        httpx.AsyncClient(verify=context, http2=True) as http,
    ):
        r = await http.get(url + "/whoami")
        assert r.http_version == "HTTP/2"
        assert r.text == "CN=ahu-1"


async def test_tls13_minimum_refuses_tls12_clients(pki: SitePki) -> None:
    app = _cert_app({"ahu-1": Role.VIEWER})
    cert = pki.client("ahu-1")
    async with _serving(app, _tls(pki, min_version=ssl.TLSVersion.TLSv1_3)) as url:
        old = pki.client_context(cert)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.TransportError):
            await _get(url + "/whoami", old)
        r = await _get(url + "/whoami", pki.client_context(cert))
        assert r.text == "CN=ahu-1"


async def test_optional_client_certificates(pki: SitePki) -> None:
    # Without require_client_cert a client may come without a certificate (and must then log
    # in), or with one, which is verified and identifies it.
    app = _cert_app({"ahu-1": Role.VIEWER})
    async with _serving(app, _tls(pki, require_client_cert=False)) as url:
        anonymous = await _get(url + "/api/about", pki.client_context())
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("SCRAM")
        device = await _get(url + "/api/about", pki.client_context(pki.client("ahu-1")))
        assert device.status_code == 200
        rogue = write_certified(pki.root, "rogue2", issue_client_certificate(create_ca(), "ahu-1"))
        with pytest.raises(httpx.TransportError):
            await _get(url + "/api/about", pki.client_context(rogue))
