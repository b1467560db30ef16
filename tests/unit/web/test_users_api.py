"""The users REST API over real HTTP: every endpoint, every refusal, last-admin protection,
and the revocation of a user's sessions after a change."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio

from gateway.auth.authenticators import StorageAuthenticator
from gateway.auth.roles import Role
from gateway.auth.scram import MIN_ITERATIONS
from gateway.auth.users import create_user
from gateway.haystack.codecs import ZINC
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import Number, Ref
from gateway.storage.memory import InMemoryAdapter
from gateway.web.app import create_app
from gateway.web.security import AuthGate
from tests.unit.auth.scram_client import HandClient
from tests.web_harness import b64_text, parse_challenge, point_records, scram_login, serve_app

PASSWORD = "admin-pa55"
ITERATIONS = MIN_ITERATIONS + 1  # not a default anywhere: shows which setting was used


@dataclass
class Api:
    url: str
    http: httpx.AsyncClient
    storage: InMemoryAdapter
    token: str = ""

    async def login(self, username: str, password: str) -> str:
        return await scram_login(self.http, self.url + "/api/about", username, password)

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"BEARER authToken={token or self.token}", **extra}

    async def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = self.headers(token)
        if body is not None:
            kw["content"] = json.dumps(body)
            headers["Content-Type"] = "application/json"
        headers.update(kw.pop("headers", {}))
        return await self.http.request(method, self.url + path, headers=headers, **kw)

    async def about(self, token: str) -> int:
        r = await self.http.get(self.url + "/api/about", headers=self.headers(token))
        return r.status_code


class SlowAdminCount(InMemoryAdapter):
    """Counting admins takes a while: a window for two changes to race in."""

    async def count_admins(self) -> int:
        await trio.sleep(0.05)
        return await super().count_admins()


@asynccontextmanager
async def running(
    *extra_admins: str, store: type[InMemoryAdapter] = InMemoryAdapter
) -> AsyncIterator[Api]:
    storage = store(point_records())
    for name in ("ada", *extra_admins):
        await storage.create_user(create_user(name, PASSWORD, Role.ADMIN, iterations=ITERATIONS))
    gate = AuthGate.build(
        StorageAuthenticator(storage), user_store=storage, storage=storage, iterations=ITERATIONS
    )
    app = create_app(storage=storage, auth=gate)
    async with serve_app(app) as url, httpx.AsyncClient() as http:
        api = Api(url, http, storage)
        api.token = await api.login("ada", PASSWORD)
        yield api


def _error(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["status"] == status
    for word in words:
        assert word in body["error"], body


async def test_list_get_create_and_no_password_material() -> None:
    async with running() as api:
        r = await api.request("POST", "/api/users", {"username": "bob", "password": "bob-pw-1"})
        assert r.status_code == 201
        assert r.headers["Location"] == "/api/users/bob"
        bob = r.json()
        assert set(bob) == {"username", "role", "enabled", "created", "updated"}
        assert (bob["username"], bob["role"], bob["enabled"]) == ("bob", "viewer", True)
        assert bob["created"].endswith("Z")

        r = await api.request(
            "POST",
            "/api/users",
            {"username": "olga", "password": "olga-pw-1", "role": "operator", "enabled": False},
        )
        assert r.status_code == 201
        assert (r.json()["role"], r.json()["enabled"]) == ("operator", False)

        listing = await api.request("GET", "/api/users")
        assert listing.status_code == 200
        users = listing.json()["users"]
        assert [u["username"] for u in users] == ["ada", "bob", "olga"]
        assert (await api.request("GET", "/api/users/bob")).json() == bob
        # nothing of the verifier leaks, in any encoding
        stored = await api.storage.get_user("bob")
        assert stored is not None
        secrets = [stored.credentials.stored_key, stored.credentials.server_key]
        secrets.append(stored.credentials.salt)
        for text in (listing.text, json.dumps(bob)):
            for secret in secrets:
                assert base64.b64encode(secret).decode() not in text
                assert secret.hex() not in text
            assert "pw-1" not in text


async def test_created_user_logs_in_with_the_configured_iterations() -> None:
    async with running() as api:
        r = await api.request("POST", "/api/users", {"username": "bob", "password": "bob-pw-1"})
        assert r.status_code == 201
        client = HandClient("bob", "bob-pw-1")
        hello = await api.http.get(
            api.url + "/api/about", headers={"Authorization": client.hello()}
        )
        _, params = parse_challenge(hello.headers["WWW-Authenticate"])
        first = await api.http.get(
            api.url + "/api/about",
            headers={"Authorization": client.first(params["handshakeToken"])},
        )
        _, params = parse_challenge(first.headers["WWW-Authenticate"])
        assert f",i={ITERATIONS}" in b64_text(params["data"])
        token = await api.login("bob", "bob-pw-1")
        assert await api.about(token) == 200


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"username": "ada", "password": "x"}, 409, ("exists",)),
        ({"username": "bad name", "password": "x"}, 400, ("user name",)),
        ({"username": "", "password": "x"}, 400, ("user name",)),
        ({"username": "bob", "password": ""}, 400, ("password",)),
        ({"username": "bob"}, 400, ("missing", "password")),
        ({"password": "x"}, 400, ("missing", "username")),
        ({"username": "bob", "password": "x", "rol": "admin"}, 400, ("unknown", "rol")),
        ({"username": "bob", "password": "x", "role": "root"}, 400, ("role must be",)),
        ({"username": "bob", "password": "x", "enabled": "yes"}, 400, ("enabled", "boolean")),
        ({"username": 7, "password": "x"}, 400, ("username", "string")),
        (["bob", "x"], 400, ("JSON object",)),
        ("bob", 400, ("JSON object",)),
    ],
)
async def test_create_refusals(body: Any, status: int, words: tuple[str, ...]) -> None:
    async with running() as api:
        _error(await api.request("POST", "/api/users", body), status, *words)
        assert [u.username for u in await api.storage.list_users()] == ["ada"]


async def test_bodies_that_are_not_json() -> None:
    async with running() as api:
        cases = [
            ({"Content-Type": "application/json"}, b"{not json", 400, "not JSON"),
            ({"Content-Type": "application/json"}, b"", 400, "not JSON"),
            ({"Content-Type": "application/json"}, b"[" * 100_000, 413, "65536"),
            ({"Content-Type": "text/plain"}, b'{"username": "bob"}', 415, "application/json"),
            ({}, b'{"username": "bob"}', 415, "application/json"),
        ]
        for headers, content, status, word in cases:
            r = await api.http.post(
                api.url + "/api/users", content=content, headers=api.headers(**headers)
            )
            _error(r, status, word)
        deep = b"[" * 30_000 + b"]" * 30_000  # under the size limit, over the parser's depth
        r = await api.http.post(
            api.url + "/api/users",
            content=deep,
            headers=api.headers(**{"Content-Type": "application/json"}),
        )
        _error(r, 400)


async def test_unknown_users_and_methods() -> None:
    async with running() as api:
        _error(await api.request("GET", "/api/users/nobody"), 404, "nobody")
        _error(await api.request("PATCH", "/api/users/nobody", {"role": "viewer"}), 404)
        _error(await api.request("DELETE", "/api/users/nobody"), 404)
        r = await api.request("PUT", "/api/users/ada", {"role": "viewer"})
        _error(r, 405)
        assert r.headers["Allow"] == "GET, PATCH, DELETE"
        _error(await api.request("DELETE", "/api/users"), 405)
        _error(await api.request("PATCH", "/api/users/ada", {}), 400, "nothing to change")
        _error(await api.request("PATCH", "/api/users/ada", {"username": "x"}), 400, "unknown")


async def test_not_authenticated() -> None:
    async with running() as api:
        r = await api.http.get(api.url + "/api/users")
        _error(r, 401)
        assert r.headers["WWW-Authenticate"] == "SCRAM hash=SHA-256"
        _error(await api.http.get(api.url + "/api/users", headers=api.headers("x" * 43)), 401)
        _error(await api.http.put(api.url + "/api/users/ada"), 401)  # not 405: who asks?
        # a login may run on this path too, as on any other
        token = await scram_login(api.http, api.url + "/api/users", "ada", PASSWORD)
        r = await api.http.get(api.url + "/api/users", headers=api.headers(token))
        assert r.status_code == 200


async def _write(api: Api, token: str) -> int:
    grid = Grid.from_dict({"id": Ref("setpoint"), "level": Number(16), "val": Number(70, "°F")})
    r = await api.http.post(
        api.url + "/api/pointWrite",
        content=ZINC.encode(grid),
        headers=api.headers(token, **{"Content-Type": "text/zinc"}),
    )
    return r.status_code


async def _refused_login(api: Api, username: str, password: str) -> None:
    with pytest.raises(AssertionError, match="403"):
        await api.login(username, password)


async def test_password_change_revokes_sessions() -> None:
    async with running() as api:
        await api.request("POST", "/api/users", {"username": "bob", "password": "old-pw-1"})
        sessions = [await api.login("bob", "old-pw-1") for _ in range(2)]
        r = await api.request("PATCH", "/api/users/bob", {"password": "new-pw-2"})
        assert r.status_code == 200
        assert r.json()["updated"] is not None
        for token in sessions:
            assert await api.about(token) == 401
        await _refused_login(api, "bob", "old-pw-1")
        assert await api.about(await api.login("bob", "new-pw-2")) == 200
        assert await api.about(api.token) == 200  # the admin's own session is untouched


async def test_role_change_revokes_sessions_and_takes_effect() -> None:
    async with running() as api:
        body = {"username": "bob", "password": "bob-pw-1", "role": "viewer"}
        await api.request("POST", "/api/users", body)
        token = await api.login("bob", "bob-pw-1")
        assert await _write(api, token) == 403
        r = await api.request("PATCH", "/api/users/bob", {"role": "operator"})
        assert r.json()["role"] == "operator"
        assert await api.about(token) == 401
        token = await api.login("bob", "bob-pw-1")
        assert await _write(api, token) == 200
        # a PATCH that changes nothing keeps the sessions
        r = await api.request("PATCH", "/api/users/bob", {"role": "operator", "enabled": True})
        assert r.status_code == 200
        assert await api.about(token) == 200


async def test_disable_and_enable() -> None:
    async with running() as api:
        await api.request("POST", "/api/users", {"username": "bob", "password": "bob-pw-1"})
        token = await api.login("bob", "bob-pw-1")
        r = await api.request("PATCH", "/api/users/bob", {"enabled": False})
        assert r.json()["enabled"] is False
        assert await api.about(token) == 401
        await _refused_login(api, "bob", "bob-pw-1")
        await api.request("PATCH", "/api/users/bob", {"enabled": True})
        assert await api.about(await api.login("bob", "bob-pw-1")) == 200


async def test_delete_revokes_sessions() -> None:
    async with running() as api:
        await api.request("POST", "/api/users", {"username": "bob", "password": "bob-pw-1"})
        token = await api.login("bob", "bob-pw-1")
        r = await api.request("DELETE", "/api/users/bob")
        assert (r.status_code, r.content) == (204, b"")
        assert await api.about(token) == 401
        _error(await api.request("GET", "/api/users/bob"), 404)
        _error(await api.request("DELETE", "/api/users/bob"), 404)
        await _refused_login(api, "bob", "bob-pw-1")


async def test_the_last_admin_stays() -> None:
    async with running() as api:
        for method, body in (
            ("PATCH", {"role": "operator"}),
            ("PATCH", {"enabled": False}),
            ("DELETE", None),
        ):
            _error(await api.request(method, "/api/users/ada", body), 409, "last enabled admin")
        ada = await api.storage.get_user("ada")
        assert ada is not None
        assert (ada.role, ada.enabled) == (Role.ADMIN, True)
        assert await api.about(api.token) == 200
        # a disabled admin does not count
        body = {"username": "eve", "password": "eve-pw-1", "role": "admin", "enabled": False}
        await api.request("POST", "/api/users", body)
        _error(await api.request("DELETE", "/api/users/ada"), 409)
        await api.request("PATCH", "/api/users/eve", {"enabled": True})
        r = await api.request("DELETE", "/api/users/ada")
        assert r.status_code == 204
        assert await api.about(api.token) == 401  # ada's own session ended with ada


async def test_two_admins_demoting_each_other_at_once_leave_one() -> None:
    async with running("bea", store=SlowAdminCount) as api:
        bea = await api.login("bea", PASSWORD)
        statuses: dict[str, int] = {}

        async def demote(target: str, token: str) -> None:
            r = await api.request("PATCH", f"/api/users/{target}", {"role": "viewer"}, token=token)
            statuses[target] = r.status_code

        async with trio.open_nursery() as nursery:
            nursery.start_soon(demote, "bea", api.token)
            nursery.start_soon(demote, "ada", bea)
        # Both got past authentication while the first one counted admins; the changes run
        # one at a time, so the second sees one admin left and is refused.
        assert sorted(statuses.values()) == [200, 409], statuses
        assert await api.storage.count_admins() == 1
