"""Settings that must persist or agree: the server secret file, the iteration count, and the
first-start admin from HS_SUPERUSER_USERNAME / HS_SUPERUSER_PASSWORD."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import httpx
import pytest
import trio

from gateway.auth.authenticators import SimpleAuthenticator, StorageAuthenticator
from gateway.auth.errors import InvalidPasswordError, InvalidUsernameError
from gateway.auth.roles import Role
from gateway.auth.scram import MIN_ITERATIONS
from gateway.auth.tokens import MemoryTokenStore
from gateway.auth.users import MemoryUserStore, create_user
from gateway.storage.memory import InMemoryAdapter
from gateway.web.app import create_app
from gateway.web.security import AuthGate, ensure_superuser, load_or_create_secret
from tests.web_harness import point_records, scram_login, serve_app


def test_secret_file_is_created_private_and_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "scram-secret"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    other = load_or_create_secret(tmp_path / "other")
    assert other != first


def test_racing_creators_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    results: list[bytes] = []

    async def many() -> None:
        async def one() -> None:
            results.append(await trio.to_thread.run_sync(load_or_create_secret, path))

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(one)

    trio.run(many)
    assert len(results) == 8
    assert len(set(results)) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [("not hex at all\n", "not hex"), ("abcd\n", "fewer than 16 bytes")],
)
def test_a_bad_secret_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "secret"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ValueError, match=message) as info:
        load_or_create_secret(path)
    assert str(path) in str(info.value)


def test_a_readable_secret_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secret"
    load_or_create_secret(path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gateway.web.security"):
        load_or_create_secret(path)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


def _gate(**options: object) -> AuthGate:
    auth = SimpleAuthenticator({"a": "pw"}, iterations=MIN_ITERATIONS)
    return AuthGate.build(auth, **options)  # type: ignore[arg-type]


def test_fake_salts_survive_a_restart_with_the_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    before = _gate(secret_file=path).service.scram.fake_credentials("mallory")
    after = _gate(secret_file=path).service.scram.fake_credentials("mallory")
    assert before.salt == after.salt
    random = _gate().service.scram.fake_credentials("mallory")
    assert random.salt != before.salt  # without a secret, a restart would give the name away
    given = _gate(secret=load_or_create_secret(path)).service.scram.fake_credentials("mallory")
    assert given.salt == before.salt


def test_one_iteration_setting_for_users_and_fake_credentials() -> None:
    gate = _gate(iterations=MIN_ITERATIONS + 7)
    assert gate.iterations == MIN_ITERATIONS + 7
    assert gate.service.scram.fake_iterations == MIN_ITERATIONS + 7
    assert gate.service.scram.fake_credentials("x").iterations == MIN_ITERATIONS + 7


def test_secret_and_secret_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="secret_file"):
        _gate(secret=b"s" * 32, secret_file=tmp_path / "secret")


def test_tokens_live_in_the_storage_when_it_keeps_them(caplog: pytest.LogCaptureFixture) -> None:
    storage = InMemoryAdapter()
    assert _gate(storage=storage).service.tokens.store is storage
    with caplog.at_level(logging.WARNING, logger="gateway.web.security"):
        gate = _gate(storage=object())
    assert isinstance(gate.service.tokens.store, MemoryTokenStore)
    assert any("end at a restart" in r.getMessage() for r in caplog.records)


# -- the first-start admin ---------------------------------------------------------------------

ENV = {"HS_SUPERUSER_USERNAME": "root-admin", "HS_SUPERUSER_PASSWORD": "first-start-pw"}


async def test_superuser_is_created_once_from_the_environment() -> None:
    store = MemoryUserStore()
    created = await ensure_superuser(store, ENV, iterations=MIN_ITERATIONS)
    assert created is not None
    assert (created.username, created.role, created.enabled) == ("root-admin", Role.ADMIN, True)
    assert created.credentials.iterations == MIN_ITERATIONS
    assert created.credentials.verify_password("first-start-pw")
    # a later start never resets the password
    again = {**ENV, "HS_SUPERUSER_PASSWORD": "something else"}
    assert await ensure_superuser(store, again, iterations=MIN_ITERATIONS) is None
    stored = await store.get_user("root-admin")
    assert stored is not None
    assert stored.credentials.verify_password("first-start-pw")


async def test_no_variables_no_admin_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryUserStore()
    with caplog.at_level(logging.WARNING, logger="gateway.web.security"):
        assert await ensure_superuser(store, {}) is None
    assert await store.list_users() == []
    assert any("HS_SUPERUSER_USERNAME" in r.getMessage() for r in caplog.records)
    caplog.clear()
    admin = create_user("ada", "pw", Role.ADMIN, iterations=MIN_ITERATIONS)
    await store.create_user(admin)
    with caplog.at_level(logging.WARNING, logger="gateway.web.security"):
        assert await ensure_superuser(store, {}) is None
    assert not caplog.records  # an admin exists: nothing to say


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"HS_SUPERUSER_USERNAME": "root"}, "HS_SUPERUSER_PASSWORD is not set"),
        ({"HS_SUPERUSER_PASSWORD": "pw"}, "HS_SUPERUSER_USERNAME is not set"),
        ({"HS_SUPERUSER_USERNAME": "no spaces", "HS_SUPERUSER_PASSWORD": "pw"}, "user name"),
        ({"HS_SUPERUSER_USERNAME": "root", "HS_SUPERUSER_PASSWORD": "x" * 2000}, "longer"),
    ],
)
async def test_incomplete_or_bad_variables_are_errors(env: dict[str, str], error: str) -> None:
    store = MemoryUserStore()
    with pytest.raises((ValueError, InvalidUsernameError, InvalidPasswordError), match=error):
        await ensure_superuser(store, env, iterations=MIN_ITERATIONS)
    assert await store.list_users() == []


async def test_create_app_creates_the_superuser_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    storage = InMemoryAdapter(point_records())
    app = create_app(
        storage=storage,
        authenticator=StorageAuthenticator(storage),
        user_store=storage,
        auth_options={"iterations": MIN_ITERATIONS},
    )
    assert await storage.get_user("root-admin") is None
    async with serve_app(app) as url, httpx.AsyncClient() as http:
        token = await scram_login(http, url + "/api/about", "root-admin", "first-start-pw")
        r = await http.get(url + "/api/users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert [u["username"] for u in r.json()["users"]] == ["root-admin"]


def test_auth_options_need_an_authenticator() -> None:
    with pytest.raises(TypeError, match="auth_options"):
        create_app(storage=InMemoryAdapter(), auth_options={"iterations": MIN_ITERATIONS})
