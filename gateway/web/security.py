"""The auth edge of the web app: authenticate each request, then authorize its op by role.

``AuthGate`` is the thin HTTP side of ``gateway.auth.service.AuthService``:

- ``check_scope(scope, authorization)`` runs the Haystack auth exchange (HELLO / SCRAM /
  BEARER / PLAINTEXT, and a verified client certificate's CN when the TLS layer passes one,
  see ``gateway.web.tls``). A handshake step answers 401 with ``WWW-Authenticate``; a
  finished login answers 200 with ``Authentication-Info`` (on any path, as clients log in on
  ``/about``, ``/ui``...); a refused one 401/403 (400, 429, 503 where ``AuthService`` says
  so) with an error grid. Otherwise the request goes on as the identity. ``identify`` is the
  same without the rendering, for routes that answer in another format (the users API
  answers JSON).
- ``refusal(ctx, op, grid, scope)`` applies the role matrix (``gateway.auth.roles``): the op
  handler answers a refused op with 403 and an error grid. pointWrite with a ``level`` counts
  as a write. Every allowed op that needs more than the viewer role (writes, actions, custom
  ops) is logged with the user, the client address and the client certificate's subject, so
  the log says who wrote what.

Roles: with a user store, a user's role is the one stored. Without one (``SimpleAuthenticator``
or a custom authenticator), the authenticator's ``role_of`` decides, and when it has no answer
``default_role`` (configuration; ``viewer`` unless set) applies.

Settings that must agree or persist (``AuthGate.build``):

- ``secret`` (or ``secret_file``, read by :func:`load_or_create_secret`) keys the fake salts
  that unknown user names get. It must survive restarts, or a salt that changes at a restart
  gives an unknown name away; without either, a random per-process secret is used (tests).
- ``iterations`` is the PBKDF2 count of new passwords (users API, :func:`ensure_superuser`) and
  of the fake credentials, so unknown names look like real ones.
- ``allow_plaintext``: PLAINTEXT logins, accepted only over TLS, off by default.

First start: :func:`ensure_superuser` creates an admin from ``HS_SUPERUSER_USERNAME`` and
``HS_SUPERUSER_PASSWORD``; there is no built-in default password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import trio
from quart import Request

from gateway.auth.authenticators import Authenticator, CertAuthenticator
from gateway.auth.errors import UserExistsError
from gateway.auth.reply import AuthReply, Identity
from gateway.auth.roles import DEFAULT_MATRIX, Role, RoleMatrix
from gateway.auth.scram import DEFAULT_ITERATIONS, ScramServer
from gateway.auth.service import AuthService
from gateway.auth.throttle import LoginThrottle, ThrottlePolicy
from gateway.auth.tokens import BearerTokens, MemoryTokenStore, TokenPolicy, TokenStore
from gateway.auth.users import User, UserStore, create_user
from gateway.haystack.codecs import ZINC
from gateway.haystack.grid import Grid
from gateway.ops import OpInfo, RequestContext
from gateway.web.tls import client_common_name, client_subject

__all__ = [
    "SUPERUSER_PASSWORD_ENV",
    "SUPERUSER_USERNAME_ENV",
    "AuthGate",
    "RawReply",
    "ensure_superuser",
    "load_or_create_secret",
    "reply_parts",
]

log = logging.getLogger(__name__)

SUPERUSER_USERNAME_ENV: Final = "HS_SUPERUSER_USERNAME"
SUPERUSER_PASSWORD_ENV: Final = "HS_SUPERUSER_PASSWORD"
_NO_CACHE: Final = "no-cache, no-store"
_ZINC_TYPE: Final = "text/zinc; charset=utf-8"
_SECRET_BYTES: Final = 32
_MIN_SECRET_BYTES: Final = 16
_TOKEN_STORE_METHODS: Final = (
    "save_token",
    "get_token",
    "renew_token",
    "revoke_token",
    "revoke_user_tokens",
    "count_tokens",
    "purge_expired_tokens",
    "evict_soonest_tokens",
)


async def _off_thread(fn: Callable[[], bool]) -> bool:
    # PBKDF2 for PLAINTEXT logins takes tens of milliseconds: keep it off the event loop.
    return await trio.to_thread.run_sync(fn)


class AuthGate:
    """Authentication and authorization for the op routes (and the users API)."""

    def __init__(
        self,
        service: AuthService,
        *,
        user_store: UserStore | None = None,
        matrix: RoleMatrix = DEFAULT_MATRIX,
        default_role: Role = Role.VIEWER,
        iterations: int = DEFAULT_ITERATIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.user_store = user_store
        self.matrix = matrix
        self.default_role = default_role
        self.iterations = iterations
        self.clock = clock

    @classmethod
    def build(
        cls,
        authenticator: Authenticator,
        *,
        user_store: UserStore | None = None,
        storage: object = None,
        secret: bytes | None = None,
        secret_file: str | Path | None = None,
        token_policy: TokenPolicy | None = None,
        allow_plaintext: bool = False,
        certificates: CertAuthenticator | None = None,
        matrix: RoleMatrix = DEFAULT_MATRIX,
        default_role: Role = Role.VIEWER,
        iterations: int = DEFAULT_ITERATIONS,
        max_handshakes: int = 1000,
        handshake_ttl: float = 60.0,
        throttle: ThrottlePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> AuthGate:
        """A gate over an authenticator; tokens live in ``storage`` when it keeps them.

        ``clock`` gives wall-clock epoch seconds (token expiries are stored); tests pass their
        own to expire handshakes and tokens.
        """
        if secret is not None and secret_file is not None:
            raise TypeError("give secret or secret_file, not both")
        if secret_file is not None:
            secret = load_or_create_secret(secret_file)
        token_store: TokenStore
        if all(callable(getattr(storage, m, None)) for m in _TOKEN_STORE_METHODS):
            token_store = storage  # type: ignore[assignment]
        else:
            if storage is not None:
                log.warning(
                    "%s keeps no bearer tokens: tokens live in memory and end at a restart",
                    type(storage).__name__,
                )
            token_store = MemoryTokenStore()
        scram = ScramServer(
            secret if secret is not None else secrets.token_bytes(_SECRET_BYTES),
            max_handshakes=max_handshakes,
            handshake_ttl=handshake_ttl,
            fake_iterations=iterations,
        )
        service = AuthService(
            authenticator,
            scram=scram,
            tokens=BearerTokens(token_store, token_policy),
            throttle=LoginThrottle(throttle),
            certificates=certificates
            if certificates is not None
            else (authenticator if isinstance(authenticator, CertAuthenticator) else None),
            allow_plaintext=allow_plaintext,
            run_sync=_off_thread,
        )
        return cls(
            service,
            user_store=user_store,
            matrix=matrix,
            default_role=default_role,
            iterations=iterations,
            clock=clock,
        )

    async def identify(self, req: Request) -> tuple[AuthReply, RequestContext]:
        """The auth reply for a request and the caller (anonymous unless ``reply.proceed``)."""
        return await self.identify_scope(req.scope, req.headers.get("Authorization"))

    async def identify_scope(
        self, scope: Mapping[str, Any], authorization: str | None
    ) -> tuple[AuthReply, RequestContext]:
        """:meth:`identify` from the ASGI scope and the ``Authorization`` header (for the op
        routes, which are served below Quart: see ``gateway.web.fastpath``)."""
        client = _client_host(scope)
        reply = await self.service.authenticate(
            authorization,
            now=self.clock(),
            client=client,
            tls=scope.get("scheme") == "https",
            peer_cn=client_common_name(scope),
        )
        if not reply.proceed or reply.identity is None:
            return reply, RequestContext(client=client)
        identity = reply.identity
        return reply, RequestContext(
            user=identity.username,
            role=str(identity.role),
            token_hash=identity.token_hash,
            client=client,
        )

    async def check_scope(
        self, scope: Mapping[str, Any], authorization: str | None
    ) -> tuple[RawReply | None, RequestContext]:
        """Authenticate a request from its ASGI scope and ``Authorization`` header: the
        response to send now as (status, headers, body), or None, and the caller."""
        reply, ctx = await self.identify_scope(scope, authorization)
        if not reply.proceed:
            return reply_parts(reply), ctx
        return None, ctx

    def role_of(self, ctx: RequestContext) -> Role:
        """The caller's role (``default_role`` when the authenticator gave none)."""
        return Role(ctx.role) if ctx.role else self.default_role

    def allows(self, ctx: RequestContext, op: str, *, writes: bool = False) -> bool:
        """Whether the caller's role may call ``op`` (the users API checks ``"users"``)."""
        return self.matrix.allows(self.role_of(ctx), op, writes=writes)

    def refusal(
        self, ctx: RequestContext, info: OpInfo, grid: Grid, scope: Mapping[str, Any]
    ) -> str | None:
        """None when the caller's role may run this op, else why not (the 403's message).

        Allowed ops above the viewer role are logged with the client certificate's subject,
        read from ``scope`` (the request's ASGI scope).
        """
        role = self.role_of(ctx)
        writes = info.name == "pointWrite" and any(r.get("level") is not None for r in grid)
        what = f"{info.name} (write)" if writes else info.name
        if self.matrix.allows(role, info.name, writes=writes):
            if self.matrix.required(info.name, writes=writes) is not Role.VIEWER:
                _audit(ctx, role, what, scope)
            return None
        log.info("refused %s to %s (role %s) from %s", what, ctx.user, role, ctx.client)
        return f"role {role} may not call {what}"

    async def logout(self, ctx: RequestContext) -> None:
        """The ``close`` op: revoke the caller's token."""
        if ctx.user and ctx.token_hash:
            identity = Identity(ctx.user, self.role_of(ctx), "bearer", ctx.token_hash)
            await self.service.logout(identity)

    async def revoke_user(self, username: str) -> int:
        """End every session of a user (after a change to the user); how many."""
        return await self.service.tokens.revoke_user(username)


def _audit(ctx: RequestContext, role: Role, op: str, scope: Mapping[str, Any]) -> None:
    subject = client_subject(scope)
    if subject is not None:
        log.info("%s by %s (role %s) from %s [%s]", op, ctx.user, role, ctx.client, subject)
    else:
        log.info("%s by %s (role %s) from %s", op, ctx.user, role, ctx.client)


def _client_host(scope: Mapping[str, Any]) -> str | None:
    peer = scope.get("client")
    return str(peer[0]) if peer else None


#: A response as parts: status, headers, body.
RawReply = tuple[int, dict[str, str], bytes]


def reply_parts(reply: AuthReply) -> RawReply:
    """The HTTP response of an auth reply that does not proceed, as (status, headers, body)."""
    headers = {"Cache-Control": _NO_CACHE}
    headers.update(dict(reply.headers))
    if reply.status >= 400:
        body = ZINC.encode(Grid.make_error(reply.message or "not authorized"))
        headers["Content-Type"] = _ZINC_TYPE
        return reply.status, headers, body
    # 401 handshake steps and the 200 that finishes a login carry no grid
    return reply.status, headers, b""


# -- first start --------------------------------------------------------------------------


def load_or_create_secret(path: str | Path) -> bytes:
    """The server secret kept in ``path`` (hex text, mode 0600), created on first use.

    Two processes starting at once agree on one secret: the file appears atomically (a hard
    link of a complete temporary file) and the loser reads the winner's.
    """
    path = Path(path)
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(_SECRET_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its secret
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by other users: chmod 600 it", path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: the server secret is not hex text") from None
    if len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"{path}: the server secret has fewer than {_MIN_SECRET_BYTES} bytes")
    return secret


async def ensure_superuser(
    user_store: UserStore,
    env: Mapping[str, str],
    *,
    iterations: int = DEFAULT_ITERATIONS,
) -> User | None:
    """Create the admin named by ``HS_SUPERUSER_USERNAME`` / ``HS_SUPERUSER_PASSWORD``.

    Returns the new user, or None when the variables are unset or the user exists (an
    existing user is never changed: the variables seed a first start, they do not reset a
    password). One variable without the other is a ``ValueError``; a bad name or password
    raises the ``gateway.auth.errors.UserError`` that says why.
    """
    username = env.get(SUPERUSER_USERNAME_ENV) or None
    password = env.get(SUPERUSER_PASSWORD_ENV) or None
    if username is None and password is None:
        if await user_store.count_admins() == 0:
            log.warning(
                "no enabled admin user: set %s and %s to create one",
                SUPERUSER_USERNAME_ENV,
                SUPERUSER_PASSWORD_ENV,
            )
        return None
    if username is None or password is None:
        missing = SUPERUSER_PASSWORD_ENV if username is not None else SUPERUSER_USERNAME_ENV
        raise ValueError(f"{missing} is not set: the superuser needs a name and a password")
    if await user_store.get_user(username) is not None:
        log.info("superuser %s exists; %s is ignored", username, SUPERUSER_PASSWORD_ENV)
        return None
    now = time.time()
    user = await trio.to_thread.run_sync(
        lambda: create_user(username, password, Role.ADMIN, iterations=iterations, now=now)
    )
    try:
        await user_store.create_user(user)
    except UserExistsError:  # created meanwhile by another process
        return None
    log.info("created the admin user %s from %s", username, SUPERUSER_USERNAME_ENV)
    return user
