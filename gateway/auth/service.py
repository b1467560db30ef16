"""The whole authentication decision for one request, so that the HTTP middleware stays thin.

:class:`AuthService` reads the ``Authorization`` header (and the client certificate's CN, when
the TLS layer verified one) and returns an :class:`~gateway.auth.reply.AuthReply`. The
middleware's whole job::

    reply = await auth.authenticate(request.headers.get("Authorization"), now=time.time(),
                                    client=remote_addr, tls=is_https, peer_cn=cn)
    if not reply.proceed:
        return response(reply.status, reply.headers, error_grid(reply.message) if >= 400)
    run the op as reply.identity (403 with an error grid if is_allowed(...) says no)

and ``close`` calls :meth:`AuthService.logout`. No HTTP, no trio: the service only awaits the
:class:`~gateway.auth.authenticators.Authenticator` and the token store. ``now`` is wall-clock
epoch seconds, because token expiries are stored.

Schemes: ``HELLO`` and ``SCRAM`` run the SCRAM exchange; ``BEARER authToken=<t>`` and
``Bearer <t>`` check a token; ``PLAINTEXT`` (and Haxall's ``x-plaintext``) is accepted only with
``allow_plaintext`` *and* ``tls`` — otherwise, like any unknown scheme or a missing header, it
gets 401 with ``WWW-Authenticate: SCRAM hash=SHA-256``. HELLO always answers with SCRAM, the
mechanism every Haystack client speaks; PLAINTEXT clients send their credentials directly.

Client certificates: with a :class:`~gateway.auth.authenticators.CertAuthenticator`, a verified
certificate whose CN is not allowed is refused with 403 whatever else the request carries; an
allowed one authenticates a request that has no ``Authorization`` header (a request that has one
is authenticated by it, so a user can still log in over a device's connection).

Throttling (:mod:`gateway.auth.throttle`) is checked before HELLO, before each SCRAM step and
before a PLAINTEXT password is checked; bad proofs and passwords count as failures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.auth.authenticators import Authenticator, CertAuthenticator
from gateway.auth.errors import (
    AuthenticationFailed,
    AuthError,
    InvalidTokenError,
    UnsupportedSchemeError,
)
from gateway.auth.headers import (
    BEARER,
    HELLO,
    PLAINTEXT,
    SCRAM,
    X_PLAINTEXT,
    AuthHeader,
    format_auth_params,
    hello_username,
    parse_authorization,
    plaintext_credentials,
)
from gateway.auth.reply import AUTHENTICATION_INFO, AuthReply, Identity, reply_for_error
from gateway.auth.scram import ScramServer, ScramVerified
from gateway.auth.throttle import LoginThrottle
from gateway.auth.tokens import BearerTokens

__all__ = ["AuthService", "RunSync"]

#: Runs a CPU-heavy function off the event loop, e.g. ``trio.to_thread.run_sync``.
RunSync = Callable[[Callable[[], bool]], Awaitable[bool]]


async def _inline(fn: Callable[[], bool]) -> bool:
    return fn()


class AuthService:
    """Authenticates requests: SCRAM logins, bearer tokens, PLAINTEXT, client certificates."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        scram: ScramServer,
        tokens: BearerTokens,
        throttle: LoginThrottle | None = None,
        certificates: CertAuthenticator | None = None,
        allow_plaintext: bool = False,
        run_sync: RunSync | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.scram = scram
        self.tokens = tokens
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.certificates = certificates
        self.allow_plaintext = allow_plaintext
        self._run_sync = run_sync or _inline

    async def authenticate(
        self,
        authorization: str | None,
        *,
        now: float,
        client: str | None = None,
        tls: bool = False,
        peer_cn: str | None = None,
    ) -> AuthReply:
        """The reply for a request with this ``Authorization`` header (None: absent)."""
        try:
            if self.certificates is not None and peer_cn is not None:
                identity = await self.certificates.identify(peer_cn)
                if identity is None:
                    return AuthReply(403, message="client certificate not allowed")
                if not authorization:
                    return AuthReply(200, identity=identity, proceed=True)
            if not authorization or not authorization.strip():
                raise UnsupportedSchemeError("authentication required")
            header = parse_authorization(authorization)
            if header.scheme == BEARER:
                return await self._bearer(header, now)
            if header.scheme == HELLO:
                return await self._hello(header, now, client)
            if header.scheme == SCRAM:
                return await self._scram(header, now, client)
            if header.scheme in (PLAINTEXT, X_PLAINTEXT) and self.allow_plaintext and tls:
                return await self._plaintext(header, now, client)
            raise UnsupportedSchemeError("unsupported authentication scheme")
        except AuthError as error:
            return reply_for_error(error)

    async def logout(self, identity: Identity) -> bool:
        """The ``close`` op: revoke the caller's bearer token; whether there was one."""
        if identity.token_hash is None:
            return False
        return await self.tokens.revoke(identity.token_hash)

    async def _bearer(self, header: AuthHeader, now: float) -> AuthReply:
        record = await self.tokens.check(header.require("authToken"), now=now)
        if record is None:
            raise InvalidTokenError("invalid or expired auth token; log in again")
        identity = Identity(record.username, record.role, "bearer", record.token_hash)
        return AuthReply(200, identity=identity, proceed=True)

    async def _hello(self, header: AuthHeader, now: float, client: str | None) -> AuthReply:
        username = hello_username(header)
        self.throttle.check(username=username, address=client, now=now)
        credentials = await self.authenticator.scram_credentials(username)
        return self.scram.hello(username, credentials, now=now)

    async def _scram(self, header: AuthHeader, now: float, client: str | None) -> AuthReply:
        token = header.require("handshakeToken")
        data = header.require("data")
        username = self.scram.handshake_user(token)
        if username is not None:
            try:
                self.throttle.check(username=username, address=client, now=now)
            except AuthError:
                self.scram.discard(token)
                raise
        try:
            step = self.scram.receive(token, data, now=now)
        except AuthenticationFailed as failure:
            self.throttle.failed(username=failure.username, address=client, now=now)
            raise
        if isinstance(step, ScramVerified):
            return await self._login(step.username, "scram", now, step)
        return step

    async def _plaintext(self, header: AuthHeader, now: float, client: str | None) -> AuthReply:
        username, password = plaintext_credentials(header)
        self.throttle.check(username=username, address=client, now=now)
        credentials = await self.authenticator.scram_credentials(username)
        ok = await self._run_sync(
            lambda: self.scram.check_password(username, credentials, password)
        )
        if not ok:
            self.throttle.failed(username=username, address=client, now=now)
            raise AuthenticationFailed(username)
        return await self._login(username, "plaintext", now, None)

    async def _login(
        self, username: str, scheme: str, now: float, verified: ScramVerified | None
    ) -> AuthReply:
        role = await self.authenticator.role_of(username)
        if role is None:  # removed or disabled between the credentials and now
            raise AuthenticationFailed(username)
        token, record = await self.tokens.issue(username, role, now=now, scheme=scheme)
        self.throttle.succeeded(username=username, now=now)
        identity = Identity(username, role, scheme, record.token_hash)
        if verified is not None:
            info = verified.authentication_info(token)
        else:
            info = format_auth_params({"authToken": token})
        return AuthReply(200, ((AUTHENTICATION_INFO, info),), identity=identity)
