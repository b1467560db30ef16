"""hs-gateway user add|passwd|list|remove on a real SQLite file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import trio

from gateway.auth.roles import Role
from gateway.auth.scram import ScramCredentials
from gateway.runtime.cli import main
from gateway.storage.sqlite import SQLiteAdapter
from tests.unit.runtime.test_config import TOML, write_config


def user(db: Path, *args: str, password: str | None = None) -> int:
    """Run a user command, feeding ``password`` on stdin (as --password-stdin reads it)."""
    extra = ["--password-stdin"] if password is not None else []
    argv = ["user", args[0], "--db", str(db), *args[1:], *extra]
    stdin = io.StringIO(f"{password}\n" if password is not None else "")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", stdin)
        return main(argv)


def stored(db: Path, name: str) -> tuple[Role, ScramCredentials] | None:
    async def read() -> tuple[Role, ScramCredentials] | None:
        store = SQLiteAdapter(db)
        await store.open()
        try:
            found = await store.get_user(name)
            return (found.role, found.credentials) if found is not None else None
        finally:
            await store.aclose()

    return trio.run(read)


def test_add_list_passwd_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "gateway.db"
    assert user(db, "add", "admin", "--role", "admin", password="s3cret pass") == 0
    assert user(db, "add", "viewer1", password="another one") == 0
    assert "added admin (admin)" in capsys.readouterr().out
    role, creds = stored(db, "admin")  # type: ignore[misc]
    assert role is Role.ADMIN
    assert creds == ScramCredentials.derive(
        "s3cret pass", salt=creds.salt, iterations=creds.iterations
    )
    assert stored(db, "viewer1") is not None
    assert stored(db, "viewer1")[0] is Role.VIEWER  # type: ignore[index]

    assert user(db, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["USER", "ROLE", "ENABLED", "CREATED"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["admin", "admin", "yes"],
        ["viewer1", "viewer", "yes"],
    ]

    assert user(db, "passwd", "viewer1", password="changed it") == 0
    _, new = stored(db, "viewer1")  # type: ignore[misc]
    assert new == ScramCredentials.derive("changed it", salt=new.salt, iterations=new.iterations)
    assert "password of viewer1 changed" in capsys.readouterr().out

    assert user(db, "remove", "viewer1") == 0
    assert stored(db, "viewer1") is None


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "gateway.db"
    assert user(db, "add", "admin", "--role", "admin", password="pw") == 0
    capsys.readouterr()
    assert user(db, "add", "admin", password="pw") == 1
    assert "exists" in capsys.readouterr().err
    assert user(db, "remove", "admin") == 1
    assert "last enabled admin" in capsys.readouterr().err
    assert user(db, "passwd", "ghost", password="pw") == 1
    assert "no user ghost" in capsys.readouterr().err
    assert user(db, "add", "bad name!", password="pw") == 1
    assert "user name" in capsys.readouterr().err
    assert user(db, "add", "nopw", password="") == 1
    assert "no password" in capsys.readouterr().err


def test_without_a_terminal_the_password_must_come_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert user(tmp_path / "gateway.db", "add", "someone") == 1
    assert "use --password-stdin" in capsys.readouterr().err


def test_the_database_comes_from_gateway_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = write_config(tmp_path / "etc", TOML)
    (etc / "state").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO("pw\n"))
        code = main(
            [
                "user",
                "add",
                "op",
                "--role",
                "operator",
                "--config-dir",
                str(etc),
                "--password-stdin",
            ]
        )
    assert code == 0
    assert stored(etc / "state" / "gateway.db", "op") is not None


def test_a_running_gateway_holds_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "gateway.db"

    async def hold_and_try() -> int:
        store = SQLiteAdapter(db)  # exclusive, as the service opens it
        await store.open()
        try:
            return await trio.to_thread.run_sync(lambda: user(db, "list"))
        finally:
            await store.aclose()

    assert trio.run(hold_and_try) == 1
    assert "the service is running: stop it first" in capsys.readouterr().err


def test_a_missing_directory_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert user(tmp_path / "nope" / "gateway.db", "list") == 1
    assert "does not exist" in capsys.readouterr().err
