"""The users REST API under ``{prefix}/users``: JSON in, JSON out, admins only.

::

    GET    {prefix}/users          200 {"users": [user, ...]}
    POST   {prefix}/users          {"username", "password", "role"?, "enabled"?} -> 201 user
    GET    {prefix}/users/{name}   200 user
    PATCH  {prefix}/users/{name}   any of {"password", "role", "enabled"} -> 200 user
    DELETE {prefix}/users/{name}   204

    user = {"username": "bob", "role": "viewer", "enabled": true,
            "created": "2025-01-02T03:04:05Z", "updated": "2025-01-02T03:04:05Z"}

Requests authenticate through the same :class:`~gateway.web.security.AuthGate` as the ops (a
bearer token, or a client certificate) and need the role that the matrix gives the op name
``users`` (admin). Nothing returned or logged carries password material.

Errors are JSON ``{"error": message, "status": code}``: 400 a body that is not a JSON object of
the known fields with the right types, a bad name or password; 401/403 not authenticated or not
an admin (401 carries the ``WWW-Authenticate`` challenge); 404 no such user; 405 another
method; 409 the name exists, or the change would leave no enabled admin
(:func:`gateway.auth.users.ensure_admin_remains`); 413 a body over 64 KiB; 415 a body that is
not ``application/json``.

After a password, role or enabled change, and after a delete, every bearer token of that user
is revoked: the user logs in again with the new password and gets the new role. Changes run one
at a time (a lock), so two admins demoting each other at once cannot both succeed. PBKDF2 runs
off the event loop, before the lock is taken.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, Final

import trio
from quart import Response, request
from quart_trio import QuartTrio

from gateway.auth.errors import (
    InvalidPasswordError,
    InvalidUsernameError,
    LastAdminError,
    UnknownUserError,
    UserError,
    UserExistsError,
)
from gateway.auth.reply import AuthReply
from gateway.auth.scram import ScramCredentials
from gateway.auth.users import (
    USERS_OP,
    Role,
    User,
    UserStore,
    create_user,
    ensure_admin_remains,
    validate_password,
)
from gateway.ops import RequestContext
from gateway.web.security import AuthGate

__all__ = ["MAX_USERS_BODY", "UsersApi", "register_users_api", "user_json"]

log = logging.getLogger(__name__)

#: Largest request body of the users API.
MAX_USERS_BODY: Final = 64 * 1024
_JSON: Final = "application/json"
_NO_CACHE: Final = "no-cache, no-store"
_COLLECTION_METHODS: Final = ("GET", "POST")
_ITEM_METHODS: Final = ("GET", "PATCH", "DELETE")
_ALL_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_CREATE_FIELDS: Final = {"username": str, "password": str, "role": str, "enabled": bool}
_UPDATE_FIELDS: Final = {"password": str, "role": str, "enabled": bool}
_STATUS: Final[tuple[tuple[type[UserError], int], ...]] = (
    (UnknownUserError, 404),
    (UserExistsError, 409),
    (LastAdminError, 409),
    (InvalidUsernameError, 400),
    (InvalidPasswordError, 400),
    (UserError, 400),
)


#: A route handler: the caller in, the response out.
Handler = Callable[[RequestContext], Awaitable[Response]]


class ApiError(Exception):
    """A request the API refuses with ``status`` and a message for the client."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def register_users_api(app: QuartTrio, prefix: str, auth: AuthGate) -> UsersApi:
    """Add the users routes under ``{prefix}/users`` to ``app``; ``auth`` needs a user store."""
    api = UsersApi(auth, prefix)
    app.add_url_rule(f"{prefix}/users", "users_collection", api.collection, methods=_ALL_METHODS)
    app.add_url_rule(f"{prefix}/users/<username>", "users_item", api.item, methods=_ALL_METHODS)
    return api


def user_json(user: User) -> dict[str, Any]:
    """The public form of a user: no credentials."""
    return {
        "username": user.username,
        "role": str(user.role),
        "enabled": user.enabled,
        "created": _iso(user.created),
        "updated": _iso(user.updated),
    }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


class UsersApi:
    """The handlers of the users routes."""

    def __init__(self, auth: AuthGate, prefix: str) -> None:
        if auth.user_store is None:
            raise ValueError("the users API needs an AuthGate with a user store")
        self.auth = auth
        self.store: UserStore = auth.user_store
        self.prefix = prefix
        self._changes = trio.Lock()

    async def collection(self) -> Response:
        """``{prefix}/users``: list (GET) or create (POST)."""
        return await self._run(_COLLECTION_METHODS, (self._list, self._create))

    async def item(self, username: str) -> Response:
        """``{prefix}/users/{name}``: get, update (PATCH) or delete."""
        return await self._run(
            _ITEM_METHODS,
            (
                partial(self._get, username=username),
                partial(self._update, username=username),
                partial(self._delete, username=username),
            ),
        )

    async def _run(self, methods: tuple[str, ...], handlers: tuple[Handler, ...]) -> Response:
        try:
            denied, ctx = await self._guard()  # first: nothing is answered to strangers
            if denied is not None:
                return denied
            if request.method not in methods:
                raise ApiError(405, f"use {', '.join(methods)} here", {"Allow": ", ".join(methods)})
            return await handlers[methods.index(request.method)](ctx)
        except ApiError as exc:
            return _json(exc.status, {"error": exc.message, "status": exc.status}, exc.headers)
        except UserError as exc:
            status = next(s for cls, s in _STATUS if isinstance(exc, cls))
            return _json(status, {"error": str(exc), "status": status})

    async def _guard(self) -> tuple[Response | None, RequestContext]:
        reply, ctx = await self.auth.identify(request)
        if not reply.proceed:
            return _auth_response(reply), ctx
        if not self.auth.allows(ctx, USERS_OP):
            role = self.auth.role_of(ctx)
            log.info("refused the users API to %s (role %s) from %s", ctx.user, role, ctx.client)
            raise ApiError(403, f"role {role} may not use the users API")
        return None, ctx

    # -- handlers -------------------------------------------------------------------------

    async def _list(self, ctx: RequestContext) -> Response:
        users = await self.store.list_users()
        return _json(200, {"users": [user_json(u) for u in users]})

    async def _get(self, ctx: RequestContext, username: str) -> Response:
        return _json(200, user_json(await self._existing(username)))

    async def _create(self, ctx: RequestContext) -> Response:
        body = await _json_body(_CREATE_FIELDS, required=("username", "password"))
        username = body["username"]
        role = _role(body.get("role", Role.VIEWER))
        if await self.store.get_user(username) is not None:
            raise UserExistsError(f"user {username} exists")
        now = time.time()
        user = await trio.to_thread.run_sync(
            lambda: create_user(
                username,
                body["password"],
                role,
                iterations=self.auth.iterations,
                enabled=body.get("enabled", True),
                now=now,
            )
        )
        await self.store.create_user(user)
        log.info("user %s (%s) created by %s", username, role, _who(ctx))
        location = f"{self.prefix}/users/{username}"
        return _json(201, user_json(user), {"Location": location})

    async def _update(self, ctx: RequestContext, username: str) -> Response:
        body = await _json_body(_UPDATE_FIELDS, required=())
        if not body:
            raise ApiError(400, "nothing to change: give password, role or enabled")
        role = _role(body["role"]) if "role" in body else None
        credentials: ScramCredentials | None = None
        if "password" in body:
            password = validate_password(body["password"])
            credentials = await trio.to_thread.run_sync(
                lambda: ScramCredentials.derive(password, iterations=self.auth.iterations)
            )
        async with self._changes:
            before = await self._existing(username)
            after = replace(
                before,
                role=role if role is not None else before.role,
                enabled=body.get("enabled", before.enabled),
                credentials=credentials if credentials is not None else before.credentials,
                updated=time.time(),
            )
            await ensure_admin_remains(self.store, before, after)
            await self.store.update_user(after)
            changed = [
                name
                for name, differs in (
                    ("password", credentials is not None),
                    ("role", after.role is not before.role),
                    ("enabled", after.enabled != before.enabled),
                )
                if differs
            ]
            revoked = await self.auth.revoke_user(username) if changed else 0
        log.info(
            "user %s: %s changed by %s; %d sessions revoked",
            username,
            ", ".join(changed) or "nothing",
            _who(ctx),
            revoked,
        )
        return _json(200, user_json(after))

    async def _delete(self, ctx: RequestContext, username: str) -> Response:
        async with self._changes:
            before = await self._existing(username)
            await ensure_admin_remains(self.store, before, None)
            if not await self.store.delete_user(username):
                raise UnknownUserError(f"no user {username}")
            revoked = await self.auth.revoke_user(username)
        log.info("user %s deleted by %s; %d sessions revoked", username, _who(ctx), revoked)
        return Response(b"", status=204, headers={"Cache-Control": _NO_CACHE})

    async def _existing(self, username: str) -> User:
        user = await self.store.get_user(username)
        if user is None:
            raise UnknownUserError(f"no user {username}")
        return user


def _who(ctx: RequestContext) -> str:
    return f"{ctx.user} from {ctx.client}"


def _role(value: Any) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ApiError(400, f"role must be one of {choices}, not {value!r}") from None


async def _json_body(fields: Mapping[str, type], *, required: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object, with only ``fields`` of the right types."""
    length = request.content_length
    if length is not None and length > MAX_USERS_BODY:
        raise ApiError(413, f"request body over {MAX_USERS_BODY} bytes")
    mimetype = request.mimetype
    if mimetype != _JSON and not mimetype.endswith("+json"):
        raise ApiError(415, f"the body must be {_JSON}, not {mimetype or 'untyped'}")
    try:
        raw = await request.get_data(cache=False)
    except Exception as exc:  # werkzeug's RequestEntityTooLarge for an unannounced big body
        if getattr(exc, "code", None) == 413:
            raise ApiError(413, f"request body over {MAX_USERS_BODY} bytes") from None
        raise
    assert isinstance(raw, bytes)
    if len(raw) > MAX_USERS_BODY:
        raise ApiError(413, f"request body over {MAX_USERS_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ApiError(400, f"unknown fields {', '.join(unknown)}; known: {', '.join(fields)}")
    missing = [name for name in required if name not in body]
    if missing:
        raise ApiError(400, f"missing fields {', '.join(missing)}")
    for name, kind in fields.items():
        if name in body and not isinstance(body[name], kind):
            raise ApiError(400, f"{name} must be a {_KIND_NAMES[kind]}")
    return body


_KIND_NAMES: Final = {str: "string", bool: "boolean"}


def _auth_response(reply: AuthReply) -> Response:
    headers = dict(reply.headers)
    if reply.status >= 400:
        message = reply.message or "not authorized"
        return _json(reply.status, {"error": message, "status": reply.status}, headers)
    # a handshake step (401) or a finished login (200): headers only, as on the op routes
    headers["Cache-Control"] = _NO_CACHE
    return Response(b"", status=reply.status, headers=headers)


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": _JSON, "Cache-Control": _NO_CACHE}
    all_headers.update(headers or {})
    return Response(json.dumps(payload), status=status, headers=all_headers)
