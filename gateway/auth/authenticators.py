"""Authenticators: where the login code finds a user's SCRAM credentials and role.

An :class:`Authenticator` answers two questions about a user name: its SCRAM credentials (None:
no such user, or not allowed to log in — the login then fails exactly as for a bad password)
and its role. Custom backends (LDAP, another database) implement the same two methods.

- :class:`SimpleAuthenticator` — a fixed ``{user: password}`` map from configuration; keys are
  derived once, on construction.
- :class:`StorageAuthenticator` — users from a :class:`~gateway.auth.users.UserStore`; disabled
  users are refused.
- :class:`CertAuthenticator` — TLS client certificates: the TLS layer has verified the chain
  against the site CA, and this maps the certificate's CN to an allowed device and its role.
  It has no passwords (:meth:`~CertAuthenticator.scram_credentials` is always None).

Without a user store, configuration decides the role of authenticated users: a
SimpleAuthenticator gives every user ``role`` (admin by default) or the role of a per-user map,
and a CertAuthenticator gives each CN the role of ``roles`` or ``default_role`` (viewer). With
a user store, the role is the user record's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from gateway.auth.reply import Identity
from gateway.auth.roles import Role
from gateway.auth.scram import DEFAULT_ITERATIONS, ScramCredentials
from gateway.auth.users import UserStore, validate_password

__all__ = [
    "Authenticator",
    "CertAuthenticator",
    "SimpleAuthenticator",
    "StorageAuthenticator",
]


class Authenticator(Protocol):
    """What the login code needs to know about a user name."""

    async def scram_credentials(self, username: str) -> ScramCredentials | None:
        """The user's SCRAM credentials, or None if the user may not log in."""

    async def role_of(self, username: str) -> Role | None:
        """The user's role, or None if the user may not log in."""


class SimpleAuthenticator:
    """Users and passwords from configuration; every key derived on construction."""

    def __init__(
        self,
        passwords: Mapping[str, str],
        *,
        role: Role | Mapping[str, Role] = Role.ADMIN,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        self._credentials = {
            user: ScramCredentials.derive(validate_password(pw), iterations=iterations)
            for user, pw in passwords.items()
        }
        if isinstance(role, Mapping):
            missing = sorted(set(passwords) - set(role))
            if missing:
                raise ValueError(f"no role configured for {', '.join(missing)}")
            self._roles = {user: Role(role[user]) for user in passwords}
        else:
            self._roles = dict.fromkeys(passwords, Role(role))

    async def scram_credentials(self, username: str) -> ScramCredentials | None:
        return self._credentials.get(username)

    async def role_of(self, username: str) -> Role | None:
        return self._roles.get(username)


class StorageAuthenticator:
    """Users from a :class:`UserStore`: credentials and role from the record; disabled: None."""

    def __init__(self, users: UserStore) -> None:
        self.users = users

    async def scram_credentials(self, username: str) -> ScramCredentials | None:
        user = await self.users.get_user(username)
        return user.credentials if user is not None and user.enabled else None

    async def role_of(self, username: str) -> Role | None:
        user = await self.users.get_user(username)
        return user.role if user is not None and user.enabled else None


class CertAuthenticator:
    """Client certificates: an allowed CN becomes a user of that name with its role.

    The allowed CNs are ``allowed_cns`` together with the keys of ``roles``; a CN outside them
    (for instance one taken off the list after its device was retired) is refused with 403
    even though its certificate verifies.
    """

    def __init__(
        self,
        allowed_cns: Iterable[str] = (),
        *,
        roles: Mapping[str, Role] | None = None,
        default_role: Role = Role.VIEWER,
    ) -> None:
        self._roles = {cn: Role(default_role) for cn in allowed_cns}
        self._roles.update({cn: Role(r) for cn, r in (roles or {}).items()})

    async def scram_credentials(self, username: str) -> ScramCredentials | None:
        return None  # certificates only; no password logins through this authenticator

    async def role_of(self, username: str) -> Role | None:
        return self._roles.get(username)

    async def identify(self, common_name: str | None) -> Identity | None:
        """The identity of a verified client certificate's CN, or None if it is not allowed."""
        if common_name is None:
            return None
        role = self._roles.get(common_name)
        return Identity(common_name, role, "cert") if role is not None else None
