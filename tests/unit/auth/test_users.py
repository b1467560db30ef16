"""Users: name and password rules, creation, password change, the store, the last admin."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.auth.errors import (
    InvalidPasswordError,
    InvalidUsernameError,
    LastAdminError,
    UnknownUserError,
    UserExistsError,
)
from gateway.auth.users import (
    MemoryUserStore,
    Role,
    User,
    change_password,
    create_user,
    ensure_admin_remains,
    validate_password,
    validate_username,
)

ITER = 4096


@pytest.mark.parametrize(
    "name", ["admin", "a", "Bob.Smith", "ops_1", "jo-ann", "me@site", "9lives", "x" * 64]
)
def test_valid_usernames(name: str) -> None:
    assert validate_username(name) == name


@pytest.mark.parametrize(
    "name", ["", ".hidden", "-x", "has space", "a/b", "a,b", "a=b", "é", "x" * 65, "a\n"]
)
def test_invalid_usernames(name: str) -> None:
    with pytest.raises(InvalidUsernameError):
        validate_username(name)


@pytest.mark.parametrize("password", ["", "x" * 1025, "bad\ud800surrogate"])
def test_invalid_passwords(password: str) -> None:
    with pytest.raises(InvalidPasswordError):
        validate_password(password)


def test_create_user_keeps_no_password() -> None:
    user = create_user("bob", "correct horse", iterations=ITER, now=5.0)
    assert user.role is Role.VIEWER
    assert user.enabled
    assert (user.created, user.updated) == (5.0, 5.0)
    assert user.credentials.iterations == ITER
    assert user.credentials.verify_password("correct horse")
    fields = [getattr(user, f.name) for f in dataclasses.fields(user)]
    assert "correct horse" not in fields
    assert "correct horse" not in repr(user)
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.role = Role.ADMIN  # type: ignore[misc]


def test_create_user_checks_its_arguments() -> None:
    with pytest.raises(InvalidUsernameError):
        create_user("no way", "pw", iterations=ITER)
    with pytest.raises(InvalidPasswordError):
        create_user("bob", "", iterations=ITER)
    assert create_user("op", "pw", Role.OPERATOR, iterations=ITER).role is Role.OPERATOR


def test_change_password_uses_a_new_salt() -> None:
    user = create_user("bob", "old", iterations=ITER, now=1.0)
    changed = change_password(user, "new", iterations=ITER, now=2.0)
    assert changed.credentials.salt != user.credentials.salt
    assert changed.credentials.verify_password("new")
    assert not changed.credentials.verify_password("old")
    assert (changed.created, changed.updated) == (1.0, 2.0)
    assert changed.username == "bob" and changed.role is user.role


async def test_memory_user_store() -> None:
    store = MemoryUserStore()
    bob = create_user("bob", "pw", iterations=ITER)
    await store.create_user(bob)
    with pytest.raises(UserExistsError):
        await store.create_user(bob)
    await store.create_user(create_user("amy", "pw", Role.ADMIN, iterations=ITER))
    assert [u.username for u in await store.list_users()] == ["amy", "bob"]
    assert await store.get_user("bob") == bob
    assert await store.get_user("nobody") is None
    await store.update_user(dataclasses.replace(bob, role=Role.ADMIN))
    assert await store.count_admins() == 2
    await store.update_user(dataclasses.replace(bob, role=Role.ADMIN, enabled=False))
    assert await store.count_admins() == 1  # disabled admins do not count
    with pytest.raises(UnknownUserError):
        await store.update_user(create_user("ghost", "pw", iterations=ITER))
    assert await store.delete_user("bob")
    assert not await store.delete_user("bob")


async def test_the_last_admin_stays() -> None:
    admin = create_user("root", "pw", Role.ADMIN, iterations=ITER)
    store = MemoryUserStore([admin])
    for after in (
        None,
        dataclasses.replace(admin, role=Role.OPERATOR),
        dataclasses.replace(admin, enabled=False),
    ):
        with pytest.raises(LastAdminError):
            await ensure_admin_remains(store, admin, after)
    await ensure_admin_remains(store, admin, change_password(admin, "new", iterations=ITER))
    viewer = create_user("v", "pw", iterations=ITER)
    await ensure_admin_remains(store, viewer, None)  # not an admin: always fine
    await store.create_user(create_user("root2", "pw", Role.ADMIN, iterations=ITER))
    await ensure_admin_remains(store, admin, None)  # another admin remains


def test_user_is_a_plain_record() -> None:
    user = create_user("bob", "pw", iterations=ITER)
    assert User("bob", Role.VIEWER, True, user.credentials) == dataclasses.replace(
        user, created=None, updated=None
    )
