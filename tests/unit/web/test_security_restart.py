"""Across a restart on the same SQLite file and secret file: tokens keep working, a closed
session stays closed, and an unknown user's fake salt does not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth.authenticators import StorageAuthenticator
from gateway.auth.scram import MIN_ITERATIONS
from gateway.haystack.codecs import ZINC
from gateway.storage.sqlite import SQLiteAdapter
from gateway.web.app import create_app
from tests.unit.auth.scram_client import HandClient
from tests.web_harness import b64_text, parse_challenge, scram_login, serve_app

ADMIN, PASSWORD = "site-admin", "restart-pw-1"


def _app(tmp_path: Path) -> Any:
    storage = SQLiteAdapter(tmp_path / "gateway.db")
    return create_app(
        storage=storage,
        authenticator=StorageAuthenticator(storage),
        user_store=storage,
        auth_options={"iterations": MIN_ITERATIONS, "secret_file": tmp_path / "scram-secret"},
    )


async def _fake_salt(http: httpx.AsyncClient, url: str, username: str) -> str:
    client = HandClient(username, "whatever")
    r = await http.get(url, headers={"Authorization": client.hello()})
    _, params = parse_challenge(r.headers["WWW-Authenticate"])
    r = await http.get(url, headers={"Authorization": client.first(params["handshakeToken"])})
    _, params = parse_challenge(r.headers["WWW-Authenticate"])
    attrs = dict(a.split("=", 1) for a in b64_text(params["data"]).split(","))
    return attrs["s"]


async def test_sessions_and_fake_salts_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HS_SUPERUSER_USERNAME", ADMIN)
    monkeypatch.setenv("HS_SUPERUSER_PASSWORD", PASSWORD)
    async with serve_app(_app(tmp_path)) as url, httpx.AsyncClient() as http:
        about = url + "/api/about"
        kept = await scram_login(http, about, ADMIN, PASSWORD)
        closed = await scram_login(http, about, ADMIN, PASSWORD)
        r = await http.post(url + "/api/close", headers={"Authorization": f"Bearer {closed}"})
        assert r.status_code == 200
        salt_before = await _fake_salt(http, about, "mallory")

    # A new process: new app, new adapter, new gate, same files.
    monkeypatch.delenv("HS_SUPERUSER_PASSWORD")
    monkeypatch.delenv("HS_SUPERUSER_USERNAME")
    async with serve_app(_app(tmp_path)) as url, httpx.AsyncClient() as http:
        about = url + "/api/about"
        r = await http.get(about, headers={"Authorization": f"BEARER authToken={kept}"})
        assert r.status_code == 200
        assert ZINC.decode(r.content)[0]["whoami"] == ADMIN
        r = await http.get(about, headers={"Authorization": f"BEARER authToken={closed}"})
        assert r.status_code == 401
        assert await _fake_salt(http, about, "mallory") == salt_before
        assert await _fake_salt(http, about, "mallory2") != salt_before
