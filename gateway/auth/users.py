"""Users: records, name and password rules, the UserStore protocol, and roles.

A :class:`User` holds SCRAM credentials, never a password; :func:`create_user` and
:func:`change_password` run PBKDF2 (about 0.1 s at the default 100,000 iterations, so call them
off the event loop in a server). User names are case-sensitive, 1-64 characters of
``[A-Za-z0-9._@-]`` starting with a letter or digit: they appear in URLs of the users API, in
logs and in pointWrite's ``who``.

The role matrix lives in :mod:`gateway.auth.roles` and is re-exported here. The users REST API
(admin only) stays thin: it validates with these functions, calls the store, revokes the user's
tokens after a change (``BearerTokens.revoke_user``) and calls :func:`ensure_admin_remains`
before a delete, demotion or disable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final, Protocol

from gateway.auth.errors import (
    InvalidPasswordError,
    InvalidUsernameError,
    LastAdminError,
    UnknownUserError,
    UserExistsError,
)
from gateway.auth.roles import DEFAULT_MATRIX, USERS_OP, Role, RoleMatrix, is_allowed
from gateway.auth.scram import DEFAULT_ITERATIONS, ScramCredentials

__all__ = [
    "DEFAULT_MATRIX",
    "MAX_PASSWORD_LENGTH",
    "USERS_OP",
    "MemoryUserStore",
    "Role",
    "RoleMatrix",
    "User",
    "UserStore",
    "change_password",
    "create_user",
    "ensure_admin_remains",
    "is_allowed",
    "validate_password",
    "validate_username",
]

_USERNAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_PASSWORD_LENGTH: Final = 1024


@dataclass(frozen=True, slots=True)
class User:
    """A user record; ``created`` and ``updated`` are epoch seconds when known."""

    username: str
    role: Role
    enabled: bool
    credentials: ScramCredentials
    created: float | None = None
    updated: float | None = None


def validate_username(username: str) -> str:
    """Return ``username`` if it is allowed, else raise :class:`InvalidUsernameError`."""
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise InvalidUsernameError(
            "a user name has 1-64 characters of A-Z a-z 0-9 . _ @ -, starting with a letter "
            "or digit"
        )
    return username


def validate_password(password: str) -> str:
    """Return ``password`` if it is allowed, else raise :class:`InvalidPasswordError`."""
    if not isinstance(password, str) or not password:
        raise InvalidPasswordError("the password is empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidPasswordError(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPasswordError("the password is not valid Unicode text") from exc
    return password


def create_user(
    username: str,
    password: str,
    role: Role = Role.VIEWER,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    enabled: bool = True,
    now: float | None = None,
) -> User:
    """A new user with SCRAM credentials derived from ``password`` (which is not kept)."""
    credentials = ScramCredentials.derive(validate_password(password), iterations=iterations)
    return User(validate_username(username), Role(role), enabled, credentials, now, now)


def change_password(
    user: User, password: str, *, iterations: int = DEFAULT_ITERATIONS, now: float | None = None
) -> User:
    """The same user with new credentials (new salt) for ``password``."""
    credentials = ScramCredentials.derive(validate_password(password), iterations=iterations)
    return replace(user, credentials=credentials, updated=now if now is not None else user.updated)


class UserStore(Protocol):
    """Where users live; both storage adapters implement it."""

    async def get_user(self, username: str) -> User | None:
        """The user, or None."""

    async def list_users(self) -> list[User]:
        """Every user, sorted by name."""

    async def create_user(self, user: User) -> None:
        """Add a user; :class:`UserExistsError` if the name is taken."""

    async def update_user(self, user: User) -> None:
        """Replace a user's record; :class:`UnknownUserError` if there is none."""

    async def delete_user(self, username: str) -> bool:
        """Remove a user; whether there was one."""

    async def count_admins(self) -> int:
        """How many enabled admins exist."""


async def ensure_admin_remains(store: UserStore, before: User, after: User | None) -> None:
    """Raise :class:`LastAdminError` if replacing ``before`` by ``after`` (None: delete)
    would leave no enabled admin."""
    was_admin = before.enabled and before.role is Role.ADMIN
    stays_admin = after is not None and after.enabled and after.role is Role.ADMIN
    if was_admin and not stays_admin and await store.count_admins() <= 1:
        raise LastAdminError(f"{before.username} is the last enabled admin")


class MemoryUserStore:
    """A :class:`UserStore` in a dict, for tests and the in-memory storage adapter."""

    def __init__(self, users: list[User] | None = None) -> None:
        self._users: dict[str, User] = {u.username: u for u in users or []}

    async def get_user(self, username: str) -> User | None:
        return self._users.get(username)

    async def list_users(self) -> list[User]:
        return [self._users[name] for name in sorted(self._users)]

    async def create_user(self, user: User) -> None:
        if user.username in self._users:
            raise UserExistsError(f"user {user.username} exists")
        self._users[user.username] = user

    async def update_user(self, user: User) -> None:
        if user.username not in self._users:
            raise UnknownUserError(f"no user {user.username}")
        self._users[user.username] = user

    async def delete_user(self, username: str) -> bool:
        return self._users.pop(username, None) is not None

    async def count_admins(self) -> int:
        return sum(1 for u in self._users.values() if u.enabled and u.role is Role.ADMIN)
