"""The Haystack auth exchange over real HTTP, every error path, with a hand-written client.

The client (``tests/unit/auth/scram_client.py`` and ``tests.web_harness.scram_login``) computes
SCRAM from RFC 5802 itself and reads the headers with its own parser. Every refusal must be a
4xx with a body, never a 500; the clock is ours, so handshakes and tokens expire on demand.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from gateway.auth.authenticators import StorageAuthenticator
from gateway.auth.roles import Role
from gateway.auth.scram import MIN_ITERATIONS
from gateway.auth.users import create_user
from gateway.haystack.codecs import ZINC
from gateway.storage.memory import InMemoryAdapter
from gateway.web.app import create_app
from gateway.web.security import AuthGate
from gateway.web.tls import TLSConfig, serve
from tests.unit.auth.scram_client import HandClient
from tests.web_harness import (
    SitePki,
    auth_params,
    b64_text,
    make_site_pki,
    parse_challenge,
    point_records,
    scram_login,
    serve_app,
)

PASSWORD = "correct horse battery staple"


class Clock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    url: str
    http: httpx.AsyncClient
    clock: Clock
    storage: InMemoryAdapter

    @property
    def about(self) -> str:
        return self.url + "/api/about"

    async def get(self, authorization: str | None, path: str = "/api/about") -> httpx.Response:
        headers = {"Accept": "text/zinc"}
        if authorization is not None:
            headers["Authorization"] = authorization
        return await self.http.get(self.url + path, headers=headers)


@asynccontextmanager
async def running(
    tls: TLSConfig | None = None, verify: Any = True, **gate_options: Any
) -> AsyncIterator[Server]:
    storage = InMemoryAdapter(point_records())
    await storage.create_user(
        create_user("alice", PASSWORD, Role.OPERATOR, iterations=MIN_ITERATIONS)
    )
    clock = Clock()
    gate = AuthGate.build(
        StorageAuthenticator(storage),
        user_store=storage,
        storage=storage,
        iterations=MIN_ITERATIONS,
        clock=clock,
        **gate_options,
    )
    app = create_app(storage=storage, auth=gate)
    serve_fn = partial(serve, tls=tls) if tls is not None else None
    async with serve_app(app, serve=serve_fn) as url, httpx.AsyncClient(verify=verify) as http:
        yield Server(url, http, clock, storage)


def _assert_refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    grid = ZINC.decode(r.content)
    assert grid.is_error
    assert grid.meta["dis"]


async def _hello(server: Server, username: str) -> tuple[HandClient, str]:
    client = HandClient(username, PASSWORD)
    r = await server.get(client.hello())
    assert r.status_code == 401
    scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "SCRAM"
    assert list(params) == ["handshakeToken", "hash"]  # alphabetical, as clients need
    return client, params["handshakeToken"]


async def _first(server: Server, client: HandClient, token: str) -> tuple[str, str]:
    r = await server.get(client.first(token))
    assert r.status_code == 401, r.text
    _, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert list(params) == ["data", "handshakeToken", "hash"]
    return b64_text(params["data"]), params["handshakeToken"]


# -- logins that work ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quirks",
    [
        {},
        {"gs2": False},  # pyhaystack: no gs2 header
        {"url": False, "padded": True},  # standard alphabet with padding
        {"url": False, "padded": False},  # phable: standard alphabet, no padding
        {"proof_newline": True},  # pyhaystack's trailing newline
        {"lower_case": True},  # scram handshaketoken=...
    ],
    ids=["plain", "no-gs2", "std-padded", "std-unpadded", "newline", "lower-case"],
)
async def test_client_quirks_log_in(quirks: dict[str, Any]) -> None:
    async with running() as server:
        token = await scram_login(server.http, server.about, "alice", PASSWORD, **quirks)
        r = await server.get(f"BEARER authToken={token}")
        assert r.status_code == 200
        assert ZINC.decode(r.content)[0]["whoami"] == "alice"


async def test_login_on_any_path() -> None:
    async with running() as server:
        for path in ("/api/ui", "/api/demo/about", "/api/nosuchop"):
            token = await scram_login(server.http, server.url + path, "alice", PASSWORD)
            assert (await server.get(f"Bearer {token}")).status_code == 200


@pytest.mark.parametrize(
    "form",
    ["BEARER authToken={t}", "Bearer authToken={t}", "Bearer {t}", "bearer authtoken={t}"],
)
async def test_bearer_forms(form: str) -> None:
    async with running() as server:
        token = await scram_login(server.http, server.about, "alice", PASSWORD)
        r = await server.get(form.format(t=token))
        assert r.status_code == 200, r.text
        assert ZINC.decode(r.content)[0]["whoami"] == "alice"


# -- refusals ---------------------------------------------------------------------------------


async def test_missing_header_and_foreign_schemes_get_a_challenge() -> None:
    async with running(allow_plaintext=True) as server:
        cases = [
            None,
            "",
            "Basic YWxpY2U6cGFzc3dvcmQ=",
            "Digest username=alice",
            "Negotiate abc",
            # PLAINTEXT is enabled but this is not TLS: refused like an unknown scheme
            "PLAINTEXT username=YWxpY2U, password=cGFzc3dvcmQ",
        ]
        for authorization in cases:
            r = await server.get(authorization)
            _assert_refused(r, 401)
            assert r.headers["WWW-Authenticate"] == "SCRAM hash=SHA-256", authorization


async def test_malformed_headers_get_400() -> None:
    async with running() as server:
        _, token = await _hello(server, "alice")
        cases = [
            "HELLO",  # no username
            "HELLO username=",  # empty value
            "HELLO username=!!!",  # not base64
            "HELLO username=YQ, username=Yg",  # duplicate parameter
            "HELLO username YQ",  # not name=value
            "HELLO " + "A" * 5000,  # over the header limit
            "SCRAM data=YWJj",  # no handshakeToken
            f"SCRAM handshakeToken={token}",  # no data
            "BEARER",  # no token
            "BEARER foo=bar",  # no authToken parameter
            "\x01HELLO username=YQ",  # control character
        ]
        for authorization in cases:
            _assert_refused(await server.get(authorization), 400)


async def test_client_first_that_is_not_rfc5802_gets_400() -> None:
    async with running() as server:
        client, token = await _hello(server, "alice")
        r = await server.get(f"SCRAM data={client.enc('hello there')}, handshakeToken={token}")
        _assert_refused(r, 400)
        # the handshake is gone after any error
        _assert_refused(await server.get(client.first(token)), 403)


async def test_client_first_for_another_user_is_refused() -> None:
    async with running() as server:
        _, token = await _hello(server, "alice")
        mallory = HandClient("mallory", PASSWORD)
        _assert_refused(await server.get(mallory.first(token)), 403)


async def test_bad_proof_gets_403_and_kills_the_handshake() -> None:
    async with running() as server:
        client, token = await _hello(server, "alice")
        client.password = "wrong"
        server_first, token = await _first(server, client, token)
        final = client.final(server_first, token)
        _assert_refused(await server.get(final), 403)
        _assert_refused(await server.get(final), 403)  # replayed: the handshake is gone


async def test_replayed_client_final_gets_403() -> None:
    async with running() as server:
        client, token = await _hello(server, "alice")
        server_first, token = await _first(server, client, token)
        final = client.final(server_first, token)
        r = await server.get(final)
        assert r.status_code == 200
        issued = auth_params(r.headers["Authentication-Info"])["authToken"]
        _assert_refused(await server.get(final), 403)
        assert (await server.get(f"BEARER authToken={issued}")).status_code == 200


async def test_expired_handshakes_get_403() -> None:
    async with running(handshake_ttl=60.0) as server:
        client, token = await _hello(server, "alice")
        server.clock.now += 61
        _assert_refused(await server.get(client.first(token)), 403)

        client, token = await _hello(server, "alice")
        server_first, token = await _first(server, client, token)
        server.clock.now += 61
        _assert_refused(await server.get(client.final(server_first, token)), 403)


async def test_unknown_user_is_indistinguishable_until_the_proof() -> None:
    async with running() as server:
        known = []
        for username in ("alice", "mallory", "mallory"):
            client, token = await _hello(server, username)
            server_first, token = await _first(server, client, token)
            attrs = dict(a.split("=", 1) for a in server_first.split(","))
            known.append(attrs)
            r = await server.get(client.final(server_first, token))
            if username == "alice":
                assert r.status_code == 200
            else:
                _assert_refused(r, 403)
                assert ZINC.decode(r.content).meta["dis"] == "authentication failed"
        alice, mallory, mallory_again = known
        assert alice["i"] == mallory["i"] == str(MIN_ITERATIONS)
        assert len(b64_text_bytes(alice["s"])) == len(b64_text_bytes(mallory["s"]))
        assert mallory["s"] == mallory_again["s"]  # a stable fake salt, as a real user has


def b64_text_bytes(value: str) -> bytes:
    import base64

    return base64.b64decode(value)


async def test_bad_password_and_unknown_user_answer_alike() -> None:
    async with running() as server:
        bodies = []
        for username, password in (("alice", "wrong"), ("nobody", PASSWORD)):
            client, token = await _hello(server, username)
            client.password = password
            server_first, token = await _first(server, client, token)
            r = await server.get(client.final(server_first, token))
            _assert_refused(r, 403)
            bodies.append(r.content)
        assert bodies[0] == bodies[1]


async def test_invalid_expired_and_closed_tokens_get_401() -> None:
    async with running() as server:
        _assert_refused(await server.get("BEARER authToken=" + "x" * 43), 401)
        _assert_refused(await server.get("BEARER authToken=short"), 401)

        token = await scram_login(server.http, server.about, "alice", PASSWORD)
        server.clock.now += 3601  # the default lifetime, idle
        r = await server.get(f"BEARER authToken={token}")
        _assert_refused(r, 401)
        assert r.headers["WWW-Authenticate"] == "SCRAM hash=SHA-256"

        token = await scram_login(server.http, server.about, "alice", PASSWORD)
        r = await server.http.post(
            server.url + "/api/close",
            headers={"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"},
        )
        assert r.status_code == 200
        assert not ZINC.decode(r.content).is_error
        _assert_refused(await server.get(f"BEARER authToken={token}"), 401)


async def test_sliding_expiry_keeps_a_used_token() -> None:
    async with running() as server:
        token = await scram_login(server.http, server.about, "alice", PASSWORD)
        for _ in range(3):
            server.clock.now += 3000
            assert (await server.get(f"BEARER authToken={token}")).status_code == 200


async def _fail_login(server: Server, username: str) -> httpx.Response:
    client = HandClient(username, "wrong")
    r = await server.get(client.hello())
    if r.status_code != 401:
        return r
    _, params = parse_challenge(r.headers["WWW-Authenticate"])
    server_first, token = await _first(server, client, params["handshakeToken"])
    return await server.get(client.final(server_first, token))


async def test_repeated_failures_are_throttled_with_429() -> None:
    async with running() as server:
        for _ in range(5):  # the free failures of a user name
            _assert_refused(await _fail_login(server, "alice"), 403)
        _assert_refused(await _fail_login(server, "alice"), 403)  # the first one that locks
        r = await _fail_login(server, "alice")
        _assert_refused(r, 429)
        assert int(r.headers["Retry-After"]) >= 1
        server.clock.now += 2  # the first lock is 1 s
        token = await scram_login(server.http, server.about, "alice", PASSWORD)
        assert (await server.get(f"BEARER authToken={token}")).status_code == 200


async def test_full_handshake_table_gets_503() -> None:
    async with running(max_handshakes=2) as server:
        await _hello(server, "alice")
        await _hello(server, "bob")
        r = await server.get(HandClient("carol", PASSWORD).hello())
        _assert_refused(r, 503)
        assert int(r.headers["Retry-After"]) >= 1
        server.clock.now += 61  # the open handshakes expire and free their slots
        await _hello(server, "carol")


# -- PLAINTEXT ---------------------------------------------------------------------------------


def _plaintext(username: str, password: str) -> str:
    client = HandClient(username, password)
    return f"PLAINTEXT username={client.enc(username)}, password={client.enc(password)}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    return make_site_pki(tmp_path_factory.mktemp("plaintext"))


async def test_plaintext_over_tls_when_enabled(pki: SitePki) -> None:
    tls = TLSConfig(pki.server_pem, pki.server_key, pki.ca_pem, require_client_cert=False)
    async with running(tls=tls, verify=pki.client_context(), allow_plaintext=True) as server:
        r = await server.get(_plaintext("alice", PASSWORD))
        assert r.status_code == 200
        token = auth_params(r.headers["Authentication-Info"])["authToken"]
        assert (await server.get(f"BEARER authToken={token}")).status_code == 200
        _assert_refused(await server.get(_plaintext("alice", "wrong")), 403)
        _assert_refused(await server.get(_plaintext("nobody", PASSWORD)), 403)
    async with running(tls=tls, verify=pki.client_context()) as server:  # PLAINTEXT off
        _assert_refused(await server.get(_plaintext("alice", PASSWORD)), 401)


# -- nothing makes it fail --------------------------------------------------------------------

_FRAGMENTS = [
    "HELLO", "SCRAM", "BEARER", "Bearer", "PLAINTEXT", "Basic", "x-plaintext", " ", ",", "=",
    "username=", "data=", "handshakeToken=", "authToken=", "hash=SHA-256", "YWxpY2U", "bi",
    "biws", "n,,n=alice,r=abc", "%%", "==", "\t", "p=", "r=", "c=", "a" * 40, "é", "-_", "+/",
]  # fmt: skip


async def test_random_headers_never_cause_a_server_error() -> None:
    rng = random.Random(4)
    async with running() as server:
        _, token = await _hello(server, "alice")
        statuses = set()
        for _ in range(300):
            parts = rng.choices([*_FRAGMENTS, token], k=rng.randint(1, 8))
            # as bytes, so non-ASCII reaches the server; h11 refuses edge whitespace itself
            header = "".join(parts).encode("utf-8").decode("latin-1").strip(" \t")
            r = await server.http.get(
                server.about, headers={"Authorization": header.encode("latin-1")}
            )
            statuses.add(r.status_code)
            assert r.status_code in (400, 401, 403), (header, r.status_code, r.text)
        assert {400, 401} <= statuses
