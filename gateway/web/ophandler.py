"""One HTTP request for a Haystack op -> one op, with every HTTP rule of the spec.

The rules (haystack.md §1), in the order they apply:

1. a method other than GET or POST -> 501;
2. authentication (``AuthGate``): a handshake step, a finished login or a refusal is answered
   at once;
3. an unknown op -> 404;
4. an Accept nothing writes -> 406 (negotiation: :mod:`gateway.web.negotiate`);
5. GET for an op with side effects -> 405; else the query parameters are the request grid;
6. POST: a body over ``max_body`` -> 413, a body without Content-Type -> 400, a Content-Type
   no codec reads -> 415, a body that does not decode -> 400; an empty body is an empty grid;
7. authorization by role -> 403;
8. the op runs (``HaystackOps.dispatch``) under the caller's ``RequestContext``: HTTP 200
   with the result grid, an error grid when the op failed; ``close`` revokes the session.

Every answer carries ``Cache-Control: no-cache, no-store``. :class:`OpHandler` applies these
rules to an :class:`OpRequest` and returns an :class:`OpReply`; it knows neither Quart nor
ASGI. Two adapters feed it: the raw ASGI path of :mod:`gateway.web.fastpath` (every op
request the server receives) and a Quart route (``create_app``), for requests that reach Quart
some other way (Quart's test client, a middleware that calls the route).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, Protocol

from gateway.haystack.codecs import Format, UnsupportedFormatError, format_for
from gateway.haystack.errors import ParseError
from gateway.haystack.grid import Grid
from gateway.ops import HaystackOps, RequestContext, request_context
from gateway.web.negotiate import grid_from_query, response_format
from gateway.web.security import AuthGate

__all__ = [
    "NO_CACHE",
    "BodyTooLargeError",
    "OpHandler",
    "OpReply",
    "OpRequest",
    "client_of",
    "plain_reply",
]

NO_CACHE: Final = "no-cache, no-store"
_PLAIN: Final = "text/plain; charset=utf-8"


class BodyTooLargeError(Exception):
    """The request body is over the limit (-> 413)."""


class OpRequest(Protocol):
    """What the handler needs of an HTTP request."""

    @property
    def method(self) -> str: ...

    @property
    def scope(self) -> Mapping[str, Any]:
        """The ASGI scope (client address, TLS state, the client certificate)."""

    def header(self, name: str) -> str | None:
        """A request header (``name`` in lower case), or None."""

    def query_items(self) -> Iterable[tuple[str, str]]:
        """The query parameters, in order, repeated names included."""

    async def read_body(self, limit: int) -> bytes:
        """The whole body; ``BodyTooLargeError`` past ``limit`` bytes."""


@dataclass(slots=True)
class OpReply:
    """An HTTP response: status, headers, and the body as bytes or as chunks to stream."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunks: Iterator[bytes] | None = field(default=None)


def client_of(scope: Mapping[str, Any]) -> str | None:
    """``host:port`` of the peer (the ``RequestContext.client`` of an anonymous request)."""
    peer = scope.get("client")
    return f"{peer[0]}:{peer[1]}" if peer else None


@lru_cache(maxsize=64)
def _body_format(mime: str) -> Format | None:
    # Clients send the same one or two Content-Types on every request.
    return format_for(mime)


class OpHandler:
    """The HTTP rules around ``HaystackOps`` (see the module docstring)."""

    def __init__(self, ops: HaystackOps, auth: AuthGate | None, max_body: int) -> None:
        self.ops = ops
        self.auth = auth
        self.max_body = max_body

    async def handle(self, req: OpRequest, op_path: str) -> OpReply:
        """Answer ``req`` for ``op_path`` (what follows the prefix: ``read``, ``demo/read/``)."""
        method = req.method
        if method not in ("POST", "GET"):
            return plain_reply(501, f"method {method} is not supported; use GET or POST")
        name = op_path.rstrip("/").rsplit("/", 1)[-1]
        auth = self.auth
        if auth is not None:
            denied, ctx = await auth.check_scope(req.scope, req.header("authorization"))
            if denied is not None:
                status, headers, body = denied
                return OpReply(status, headers, body)
        else:
            ctx = RequestContext(client=client_of(req.scope))
        info = self.ops.find_op(name)
        if info is None:
            return plain_reply(404, f"no op {name!r}")
        accept = req.header("accept")
        negotiated = response_format(accept)
        if negotiated is None:
            return plain_reply(406, f"cannot answer in {accept!r}")
        fmt, content_type = negotiated
        if method == "GET":
            if info.side_effects:
                return _error(405, f"{name} changes state: use POST", fmt, content_type)
            grid = grid_from_query(req.query_items())
        else:
            read = await self._read_grid(req, fmt, content_type, name)
            if isinstance(read, OpReply):
                return read
            grid = read
        if auth is not None:
            refusal = auth.refusal(ctx, info, grid, req.scope)
            if refusal is not None:
                return _error(403, refusal, fmt, content_type)
        with request_context(ctx):
            result = await self.ops.dispatch(info, grid)
        if auth is not None and name == "close" and not result.is_error:
            await auth.logout(ctx)
        return OpReply(
            200,
            {"Content-Type": content_type, "Cache-Control": NO_CACHE},
            chunks=fmt.encode_iter(result),
        )

    async def _read_grid(
        self, req: OpRequest, fmt: Format, content_type: str, op: str
    ) -> Grid | OpReply:
        length = req.header("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return _error(413, f"request body over {self.max_body} bytes", fmt, content_type)
        try:
            body = await req.read_body(self.max_body)
        except BodyTooLargeError:
            return _error(413, f"request body over {self.max_body} bytes", fmt, content_type)
        if not body or body.isspace():  # (strip() would copy a large body)
            return Grid.empty()
        mime = req.header("content-type")
        if not mime:
            return _error(400, "a request body needs a Content-Type", fmt, content_type)
        body_format = _body_format(mime)
        if body_format is None or not body_format.can_read:
            return _error(415, f"cannot read {mime!r}", fmt, content_type)
        # An op may read the usual form of its request itself (hisWrite: into columns).
        reader = self.ops.request_reader(op, body_format.name)
        grid = None if reader is None else reader(body)
        if grid is not None:
            return grid
        try:
            return body_format.decode(body)
        except (ParseError, UnsupportedFormatError) as exc:
            return _error(400, f"cannot read the request grid: {exc}", fmt, content_type)


def _error(status: int, message: str, fmt: Format, content_type: str) -> OpReply:
    """An HTTP error whose body is an error grid in the negotiated format."""
    body = fmt.encode(Grid.make_error(message))
    return OpReply(status, {"Content-Type": content_type, "Cache-Control": NO_CACHE}, body)


def plain_reply(status: int, message: str) -> OpReply:
    """An HTTP error as one line of text (for what no grid can answer: no op, no format...)."""
    headers = {"Content-Type": _PLAIN, "Cache-Control": NO_CACHE}
    return OpReply(status, headers, (message + "\n").encode("utf-8"))
