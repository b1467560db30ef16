"""Authenticators: configuration users, stored users, client certificate CNs."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.auth.authenticators import (
    Authenticator,
    CertAuthenticator,
    SimpleAuthenticator,
    StorageAuthenticator,
)
from gateway.auth.reply import Identity
from gateway.auth.users import MemoryUserStore, Role, create_user

ITER = 4096


async def test_simple_authenticator_derives_keys_and_gives_the_configured_role() -> None:
    auth: Authenticator = SimpleAuthenticator({"admin": "s3cret", "ro": "x"}, iterations=ITER)
    creds = await auth.scram_credentials("admin")
    assert creds is not None and creds.iterations == ITER
    assert creds.verify_password("s3cret")
    assert await auth.scram_credentials("nobody") is None
    assert await auth.role_of("ro") is Role.ADMIN  # the documented default without a store
    assert await auth.role_of("nobody") is None


async def test_simple_authenticator_with_per_user_roles() -> None:
    auth = SimpleAuthenticator(
        {"admin": "a", "ro": "b"}, role={"admin": Role.ADMIN, "ro": Role.VIEWER}, iterations=ITER
    )
    assert await auth.role_of("ro") is Role.VIEWER
    assert await auth.role_of("admin") is Role.ADMIN
    with pytest.raises(ValueError, match="no role configured for ro"):
        SimpleAuthenticator({"admin": "a", "ro": "b"}, role={"admin": Role.ADMIN}, iterations=ITER)
    single = SimpleAuthenticator({"op": "c"}, role=Role.OPERATOR, iterations=ITER)
    assert await single.role_of("op") is Role.OPERATOR


async def test_storage_authenticator_refuses_disabled_users() -> None:
    bob = create_user("bob", "pw", Role.OPERATOR, iterations=ITER)
    store = MemoryUserStore([bob])
    auth: Authenticator = StorageAuthenticator(store)
    assert await auth.scram_credentials("bob") == bob.credentials
    assert await auth.role_of("bob") is Role.OPERATOR
    await store.update_user(dataclasses.replace(bob, enabled=False))
    assert await auth.scram_credentials("bob") is None
    assert await auth.role_of("bob") is None
    assert await auth.scram_credentials("ghost") is None


async def test_cert_authenticator_maps_cns_to_roles() -> None:
    auth = CertAuthenticator(
        allowed_cns={"device-01", "device-02"}, roles={"bms-frontend": Role.OPERATOR}
    )
    assert await auth.identify("device-01") == Identity("device-01", Role.VIEWER, "cert")
    assert await auth.identify("bms-frontend") == Identity("bms-frontend", Role.OPERATOR, "cert")
    assert await auth.identify("device-99") is None  # verified by the CA, but not allowed
    assert await auth.identify(None) is None
    assert await auth.scram_credentials("device-01") is None  # no password logins
    assert await auth.role_of("device-02") is Role.VIEWER
    custom = CertAuthenticator(["plc"], default_role=Role.OPERATOR)
    assert await custom.role_of("plc") is Role.OPERATOR
