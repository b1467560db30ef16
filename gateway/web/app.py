"""The app factory: ``create_app()`` returns a Quart-Trio app serving the Haystack HTTP API.

::

    storage = SQLiteAdapter("/var/lib/hs-gateway/gateway.db")
    app = create_app(storage=storage, authenticator=StorageAuthenticator(storage),
                     user_store=storage)
    await hypercorn.trio.serve(app, config)

Ops are served at ``{prefix}/{op}`` and, for clients that add a project segment (pyhaystack,
haystack-nclient), at ``{prefix}/{project}/{op}``; a trailing ``/`` is tolerated. HTTP rules
(haystack.md §1): GET only for ops without side effects (query parameters read as Zinc, else
Str) -> 405 otherwise; unknown op -> 404; a method other than GET/POST -> 501; unsupported Accept
-> 406; unsupported Content-Type -> 415; a body that cannot be read -> 400; a body over
``max_body`` bytes -> 413. Everything after the request grid was read is HTTP 200 with a grid,
an error grid when the op failed (the rules: :mod:`gateway.web.ophandler`). The app is a normal
Quart app: add routes to it freely. Op requests are answered below Quart, in raw ASGI, for
speed (:mod:`gateway.web.fastpath`): Quart's request hooks do not run for them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import trio
from quart import Response, request
from quart_trio import QuartTrio

from gateway.ops import HaystackOps
from gateway.storage.base import StorageAdapter
from gateway.web.fastpath import OP_ENDPOINT, HaystackApp
from gateway.web.ophandler import BodyTooLargeError, OpHandler, OpReply
from gateway.web.security import AuthGate, ensure_superuser

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

log = logging.getLogger(__name__)

#: Default request body limit: 16 MiB (a large hisWrite batch fits).
DEFAULT_MAX_BODY: Final = 16 * 1024 * 1024
_ALL_METHODS: Final = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def create_app(
    ops: HaystackOps | None = None,
    *,
    storage: StorageAdapter | None = None,
    authenticator: Any = None,
    user_store: Any = None,
    prefix: str = "/api",
    max_body: int = DEFAULT_MAX_BODY,
    auth: AuthGate | None = None,
    auth_options: Mapping[str, Any] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    **ops_options: Any,
) -> QuartTrio:
    """A Quart-Trio app serving ``ops`` (or a HaystackOps made over ``storage``).

    ``authenticator`` (and ``user_store`` for the users API and stored roles) switch on
    authentication; see :mod:`gateway.web.security` (``auth_options`` go to ``AuthGate.build``:
    secret_file, token_policy, iterations, allow_plaintext, certificates...). With a user
    store, the first start creates the admin of ``HS_SUPERUSER_USERNAME`` /
    ``HS_SUPERUSER_PASSWORD`` (``ensure_superuser``). Without one, every request is served
    (for tests and trusted embedding). ``ops_options`` go to ``HaystackOps`` (tz,
    server_name, max_lease) when ``storage`` is given.
    """
    if ops is None:
        if storage is None:
            raise TypeError("create_app needs ops or storage")
        if clock is not None:
            ops_options["clock"] = clock
        ops = HaystackOps(storage, **ops_options)
    elif ops_options:
        raise TypeError(f"options {sorted(ops_options)} apply only with storage=")
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    if auth is None and authenticator is not None:
        auth = AuthGate.build(
            authenticator, user_store=user_store, storage=ops.storage, **(auth_options or {})
        )
    elif auth_options:
        raise TypeError("auth_options apply only with authenticator=")

    app = HaystackApp(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.extensions["haystack_ops"] = ops
    app.extensions["haystack_auth"] = auth
    handler = OpHandler(ops, auth, max_body)

    opened_here = False

    @app.before_serving
    async def _start() -> None:
        # The app opens (and later closes) the store unless its owner already opened it.
        nonlocal opened_here
        if not ops.storage.is_open:
            await ops.storage.open()
            opened_here = True
        if auth is not None and auth.user_store is not None:
            await ensure_superuser(auth.user_store, os.environ, iterations=auth.iterations)
        await ops.start()
        app.nursery.start_soon(_expire_timed_overrides, ops)

    @app.after_serving
    async def _stop() -> None:
        if opened_here:
            await ops.storage.aclose()

    async def serve_op(op_path: str) -> Response:
        # Reached only when a request comes through Quart (its test client, say): the server
        # answers op requests below Quart with the same handler (gateway.web.fastpath).
        return _response(await handler.handle(_QuartOpRequest(), op_path))

    app.add_url_rule(f"{prefix}/<path:op_path>", OP_ENDPOINT, serve_op, methods=_ALL_METHODS)
    app.serve_ops(prefix, handler)
    if auth is not None and auth.user_store is not None:
        from gateway.web.users import register_users_api

        register_users_api(app, prefix, auth)
    return app


async def _expire_timed_overrides(ops: HaystackOps) -> None:
    """Release timed overrides when they run out, even when no runtime is attached."""
    while True:
        next_expiry = await ops.writes.expire_due()
        delay = 60.0
        if next_expiry is not None:
            delay = max(0.01, (next_expiry - ops.clock()).total_seconds())
        with trio.move_on_after(min(delay, 60.0)):
            await ops.writes.wait_changed()


class _QuartOpRequest:
    """The current Quart request as an ``OpRequest`` (the op route inside Quart)."""

    __slots__ = ()

    @property
    def method(self) -> str:
        return request.method

    @property
    def scope(self) -> Mapping[str, Any]:
        return request.scope

    def header(self, name: str) -> str | None:
        return request.headers.get(name)

    def query_items(self) -> Iterable[tuple[str, str]]:
        return request.args.items(multi=True)

    async def read_body(self, limit: int) -> bytes:
        try:
            body = await request.get_data(cache=False)
        except Exception as exc:  # werkzeug's RequestEntityTooLarge (MAX_CONTENT_LENGTH)
            if getattr(exc, "code", None) == 413:
                raise BodyTooLargeError from None
            raise
        assert isinstance(body, bytes)
        if len(body) > limit:
            raise BodyTooLargeError
        return body


def _response(reply: OpReply) -> Response:
    body = reply.body if reply.chunks is None else b"".join(reply.chunks)
    return Response(body, status=reply.status, headers=reply.headers)
