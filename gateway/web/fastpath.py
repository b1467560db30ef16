"""``HaystackApp``: a QuartTrio app that answers Haystack op requests below Quart, in raw ASGI.

A small request (a read of one id) spent more time in Quart's request machinery (request and
response objects, context variables, signals, routing, header datastructures) than in the op
itself. So the app looks at each HTTP request first: when Quart would route it to the op route
(``{prefix}/<op>``), it is answered here with the same :class:`~gateway.web.ophandler.OpHandler`
that the Quart route uses, straight over ASGI; everything else (lifespan, websockets, the
users API, any route added to the app, requests for which the routing is not plain) goes to
Quart as before.

Which endpoint Quart would pick is asked of Quart's own URL map (werkzeug's matcher) once per
``(method, path)`` and remembered; the answers are forgotten when a rule is added through
``add_url_rule`` (route decorators and blueprints use it; a rule put into ``url_map`` by
hand is not noticed). The raw path
is not taken when routing depends on more than method and path: host or subdomain matching, a
``SERVER_NAME``, or an ASGI ``root_path``.

What the raw path skips: Quart's ``before_request`` / ``after_request`` hooks and signals do
not run for op requests (the gateway registers none; wrap ``asgi_app`` for middleware, which
still sees every request). Large responses are streamed: the codec's chunks
(``Format.encode_iter``) go out as they are written, without a Content-Length, so the whole
document never has to exist at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl

import trio
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from gateway.web.ophandler import BodyTooLargeError, OpHandler, OpReply, plain_reply

__all__ = ["OP_ENDPOINT", "STREAM_FROM", "AsgiOpRequest", "HaystackApp", "send_reply"]

log = logging.getLogger(__name__)

#: The endpoint name of the op route (``{prefix}/<path:op_path>``).
OP_ENDPOINT: Final = "haystack_op"
#: A response body of this many bytes or more is streamed (see ``send_reply``).
STREAM_FROM: Final = 512 * 1024
# Distinct (method, path) routing answers kept; more are forgotten all at once.
_ROUTES_KEPT: Final = 1024

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Disconnected(Exception):
    """The client went away before its body arrived."""


class _BodyTimeoutError(Exception):
    """The client did not send its body within the app's ``BODY_TIMEOUT``."""


class AsgiOpRequest:
    """An :class:`~gateway.web.ophandler.OpRequest` over an ASGI scope and ``receive``."""

    __slots__ = ("_headers", "body_timeout", "method", "receive", "scope")

    def __init__(self, scope: Mapping[str, Any], receive: Receive, body_timeout: float) -> None:
        self.scope = scope
        self.receive = receive
        self.body_timeout = body_timeout  # seconds the whole body may take (BODY_TIMEOUT)
        self.method: str = scope["method"]
        self._headers: dict[str, str] | None = None

    def header(self, name: str) -> str | None:
        headers = self._headers
        if headers is None:
            # ASGI header names are lower case; the first of repeated headers wins, as in
            # werkzeug's Headers.get.
            headers = self._headers = {}
            for key, value in self.scope["headers"]:
                headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        return headers.get(name)

    def query_items(self) -> Iterable[tuple[str, str]]:
        query: bytes = self.scope.get("query_string", b"")
        if not query:
            return ()
        return parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True, errors="replace")

    async def read_body(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self.body_timeout) as timeout:
            message = await self.receive()  # a small body comes whole in the first message
            while True:
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                body: bytes = message.get("body", b"")
                if body:
                    size += len(body)
                    if size > limit:
                        raise BodyTooLargeError
                    chunks.append(body)
                if not message.get("more_body", False):
                    break
                message = await self.receive()
        if timeout.cancelled_caught:
            raise _BodyTimeoutError
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)


class HaystackApp(QuartTrio):
    """A QuartTrio app whose op requests take the raw ASGI path (see the module docstring)."""

    def __init__(self, import_name: str, *args: Any, **kwargs: Any) -> None:
        self._op_routes: dict[tuple[str, str], bool] = {}
        self._op_handler: OpHandler | None = None
        self._op_prefix = ""
        super().__init__(import_name, *args, **kwargs)

    def serve_ops(self, prefix: str, handler: OpHandler) -> None:
        """Answer requests that Quart would route to ``OP_ENDPOINT`` with ``handler``."""
        self._op_prefix = prefix
        self._op_handler = handler
        self._op_routes.clear()

    def add_url_rule(self, *args: Any, **kwargs: Any) -> None:
        """Quart's ``add_url_rule`` (route decorators and blueprints end here); a new rule
        may take paths from the op route, so the routing answers are asked again."""
        super().add_url_rule(*args, **kwargs)
        self._op_routes.clear()

    async def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        handler = self._op_handler
        if handler is not None and scope["type"] == "http":
            path: str = scope["path"]
            prefix = self._op_prefix
            if (
                path.startswith(prefix)
                and path[len(prefix) : len(prefix) + 1] == "/"
                and not scope.get("root_path")
                and self._routes_to_ops(scope["method"], path)
            ):
                request = AsgiOpRequest(scope, receive, self.config["BODY_TIMEOUT"])
                await _serve(handler, request, send, path[len(prefix) + 1 :])
                return
        await super().asgi_app(scope, receive, send)  # type: ignore[arg-type]

    def _routes_to_ops(self, method: str, path: str) -> bool:
        """Whether Quart would send ``method path`` to the op route (remembered)."""
        url_map = self.url_map
        key = (method, path)
        known = self._op_routes.get(key)
        if known is not None:
            return known
        plain = not (
            url_map.host_matching or self.subdomain_matching or self.config.get("SERVER_NAME")
        )
        answer = False
        if plain:
            try:
                rule, _ = url_map.bind("localhost").match(path, method, return_rule=True)
            except (HTTPException, RequestRedirect):
                answer = False  # Quart answers it (404, 405, a redirect...)
            else:
                answer = rule.endpoint == OP_ENDPOINT
        if len(self._op_routes) >= _ROUTES_KEPT:
            self._op_routes.clear()
        self._op_routes[key] = answer
        return answer


async def _serve(handler: OpHandler, request: AsgiOpRequest, send: Send, op: str) -> None:
    scope = request.scope
    try:
        reply = await handler.handle(request, op)
    except _Disconnected:
        return
    except _BodyTimeoutError:
        await send_reply(send, plain_reply(408, "the request body did not arrive in time"))
        return
    except Exception:
        log.exception("%s %s failed", scope.get("method"), scope.get("path"))
        await send_reply(send, plain_reply(500, "internal server error"))
        return
    await send_reply(send, reply)


async def send_reply(send: Send, reply: OpReply) -> None:
    """Send an :class:`OpReply`.

    A body that comes to less than ``STREAM_FROM`` bytes goes out whole, with a Content-Length
    (a codec may write even a small grid in several pieces). A larger one is streamed as it is
    written (chunked transfer encoding under HTTP/1.1), in sends of at least ``STREAM_FROM``
    bytes, so the whole document never has to exist at once.
    """
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    if reply.chunks is None:
        await _send_whole(send, reply.status, headers, reply.body)
        return
    chunks = filter(None, reply.chunks)  # empty pieces carry nothing
    pending: list[bytes] = []
    size = 0
    try:
        for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= STREAM_FROM:
                break
        # A document the codec wrote in one piece has nothing to stream: it goes whole.
        following = next(chunks, None) if size >= STREAM_FROM else None
    except Exception:
        log.exception("encoding a response failed")
        await send_reply(send, plain_reply(500, "internal server error"))
        return
    if following is None:
        body = pending[0] if len(pending) == 1 else b"".join(pending)
        await _send_whole(send, reply.status, headers, body)
        return
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    # From here an encoder error ends the connection: the status was sent.
    await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
    pending, size = [following], len(following)
    for chunk in chunks:
        if size >= STREAM_FROM:
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
            pending, size = [], 0
        pending.append(chunk)
        size += len(chunk)
    await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})


async def _send_whole(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
