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
an error grid when the op failed. The app is a normal Quart app: add routes to it freely.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

import trio
from quart import Response, request
from quart_trio import QuartTrio

from gateway.haystack.codecs import UnsupportedFormatError, format_for
from gateway.haystack.errors import ParseError
from gateway.haystack.grid import Grid
from gateway.ops import HaystackOps, OpInfo, RequestContext, request_context
from gateway.storage.base import StorageAdapter
from gateway.web.negotiate import grid_from_query, response_format
from gateway.web.security import AuthGate, ensure_superuser

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

log = logging.getLogger(__name__)

#: Default request body limit: 16 MiB (a large hisWrite batch fits).
DEFAULT_MAX_BODY: Final = 16 * 1024 * 1024
_ALL_METHODS: Final = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_NO_CACHE: Final = "no-cache, no-store"
_PLAIN: Final = "text/plain; charset=utf-8"


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

    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.extensions["haystack_ops"] = ops
    app.extensions["haystack_auth"] = auth
    handler = _OpHandler(ops, auth, max_body)

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
        return await handler.handle(op_path)

    app.add_url_rule(f"{prefix}/<path:op_path>", "haystack_op", serve_op, methods=_ALL_METHODS)
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


class _OpHandler:
    """One HTTP request -> one op, with every HTTP rule of the spec."""

    def __init__(self, ops: HaystackOps, auth: AuthGate | None, max_body: int) -> None:
        self.ops = ops
        self.auth = auth
        self.max_body = max_body

    async def handle(self, op_path: str) -> Response:
        method = request.method
        if method not in ("GET", "POST"):
            return _plain(501, f"method {method} is not supported; use GET or POST")
        name = op_path.rstrip("/").rsplit("/", 1)[-1]
        ctx = RequestContext(client=_client(request.scope))
        if self.auth is not None:
            denied, ctx = await self.auth.check(request, name)
            if denied is not None:
                return denied
        info = self.ops.find_op(name)
        if info is None:
            return _plain(404, f"no op {name!r}")
        negotiated = response_format(request.headers.get("Accept"))
        if negotiated is None:
            return _plain(406, f"cannot answer in {request.headers.get('Accept')!r}")
        fmt, content_type = negotiated
        if method == "GET":
            if info.side_effects:
                return _error(405, f"{name} changes state: use POST", fmt, content_type)
            grid = grid_from_query(request.args.items(multi=True))
        else:
            grid_or_response = await self._read_body(fmt, content_type)
            if isinstance(grid_or_response, Response):
                return grid_or_response
            grid = grid_or_response
        if self.auth is not None:
            denied = self.auth.authorize(ctx, info, grid, fmt, content_type)
            if denied is not None:
                return denied
        with request_context(ctx):
            result = await self.ops.dispatch(info, grid)
        if self.auth is not None and name == "close" and not result.is_error:
            await self.auth.logout(ctx)
        return _grid_response(result, fmt, content_type)

    async def _read_body(self, fmt: Any, content_type: str) -> Grid | Response:
        length = request.content_length
        if length is not None and length > self.max_body:
            return _error(413, f"request body over {self.max_body} bytes", fmt, content_type)
        try:
            body = await request.get_data(cache=False)
        except Exception as exc:  # werkzeug's RequestEntityTooLarge and friends
            if getattr(exc, "code", None) == 413:
                return _error(413, f"request body over {self.max_body} bytes", fmt, content_type)
            raise
        assert isinstance(body, bytes)
        if not body.strip():
            return Grid.empty()
        mime = request.headers.get("Content-Type")
        if not mime:
            return _error(400, "a request body needs a Content-Type", fmt, content_type)
        body_format = format_for(mime)
        if body_format is None or not body_format.can_read:
            return _error(415, f"cannot read {mime!r}", fmt, content_type)
        try:
            return body_format.decode(body)
        except (ParseError, UnsupportedFormatError) as exc:
            return _error(400, f"cannot read the request grid: {exc}", fmt, content_type)


def _client(scope: Mapping[str, Any]) -> str | None:
    peer = scope.get("client")
    return f"{peer[0]}:{peer[1]}" if peer else None


def _grid_response(grid: Grid, fmt: Any, content_type: str, status: int = 200) -> Response:
    body = fmt.encode(grid)
    return Response(
        body,
        status=status,
        headers={"Content-Type": content_type, "Cache-Control": _NO_CACHE},
    )


def _error(status: int, message: str, fmt: Any, content_type: str) -> Response:
    """An HTTP error whose body is an error grid in the negotiated format."""
    return _grid_response(Grid.make_error(message), fmt, content_type, status)


def _plain(status: int, message: str) -> Response:
    return Response(
        message + "\n", status=status, headers={"Content-Type": _PLAIN, "Cache-Control": _NO_CACHE}
    )


def op_info(ops: HaystackOps, name: str) -> OpInfo | None:
    """The op ``name`` as ``ops`` serves it (for extensions that route ops themselves)."""
    return ops.find_op(name)
