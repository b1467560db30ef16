"""How the gateway's own Hypercorn connection handler sends responses (CertificateTCPServer).

Over real HTTP through ``gateway.web.tls.serve`` (plain TCP): answers whole and streamed,
empty bodies, many requests on one keep-alive connection, a client that leaves in the middle
of a stream. Directly, with trio's in-memory streams: the order of pieces sent while another
task holds the send lock, and a closed peer reported to the protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.worker_context import WorkerContext
from quart import Response

from gateway.haystack.codecs import ZINC, decode
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.storage.memory import InMemoryAdapter
from gateway.web import fastpath
from gateway.web.app import create_app
from gateway.web.fastpath import HaystackApp
from gateway.web.tls import CertificateTCPServer, serve
from tests.web_harness import serve_app

ZINC_TYPE = "text/zinc"


def app() -> HaystackApp:
    recs: list[dict[str, Any]] = [{"id": Ref("site"), "site": MARKER, "dis": "Site"}]
    recs += [{"id": Ref(f"p{i}"), "point": MARKER, "n": Number(i)} for i in range(200)]
    web = create_app(storage=InMemoryAdapter(recs))
    assert isinstance(web, HaystackApp)

    @web.route("/empty")
    async def empty() -> Response:
        return Response(b"", status=200)

    @web.route("/trickle")
    async def trickle() -> Response:
        async def pieces() -> AsyncIterator[bytes]:
            for i in range(1000):
                yield b"x" * 1024 + str(i).encode()
                await trio.sleep(0.001)

        return Response(pieces(), mimetype="text/plain")

    return web


def _in_pieces(fmt: Any, grid: Grid) -> Iterator[bytes]:
    text = fmt.encode(grid)
    for i in range(0, len(text), 500):
        yield text[i : i + 500]


async def test_whole_streamed_and_empty_answers_on_one_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A read of every point is streamed (chunked), a read of one id goes whole; an empty
    # body sends no bytes at all for its end. All on one keep-alive connection, in turns.
    monkeypatch.setattr(type(ZINC), "encode_iter", _in_pieces)
    monkeypatch.setattr(fastpath, "STREAM_FROM", 2000)
    limits = httpx.Limits(max_connections=1)
    async with serve_app(app(), serve=serve) as url, httpx.AsyncClient(limits=limits) as client:
        with trio.fail_after(30):  # (a send lock never released would hang the next answer)
            await _ninety_answers(url, client)


async def _ninety_answers(url: str, client: httpx.AsyncClient) -> None:
    for i in range(30):
        r = await client.get(f"{url}/api/read", params={"filter": "point"})
        assert r.status_code == 200 and r.headers["transfer-encoding"] == "chunked"
        assert sorted(row["n"].val for row in decode(r.content, ZINC_TYPE)) == list(range(200))
        r = await client.get(f"{url}/api/read", params={"id": f"@p{i}"})
        assert r.headers["content-length"] == str(len(r.content))
        assert decode(r.content, ZINC_TYPE)[0]["n"] == Number(i)
        r = await client.get(f"{url}/empty")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-length"] == "0"


async def test_a_client_that_leaves_mid_stream_leaves_the_server_serving() -> None:
    async with serve_app(app(), serve=serve) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        sock = await trio.open_tcp_stream(host, int(port))
        await sock.send_all(b"GET /trickle HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await sock.receive_some(4096)).startswith(b"HTTP/1.1 200")
        await sock.aclose()  # gone in the middle of the stream
        with trio.fail_after(5):
            async with httpx.AsyncClient() as client:
                for _ in range(3):
                    r = await client.get(f"{url}/api/read", params={"id": "@site"})
                    assert decode(r.content, ZINC_TYPE)[0]["dis"] == "Site"


class _Protocol:
    """Stands in for Hypercorn's protocol: records the events handed to it."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def handle(self, event: Event) -> None:
        self.events.append(event)


def _server(stream: Any) -> tuple[CertificateTCPServer, _Protocol]:
    server = CertificateTCPServer(app(), Config(), WorkerContext(None), {}, stream)
    protocol = _Protocol()
    server.protocol = protocol  # type: ignore[assignment]
    return server, protocol


async def test_pieces_keep_their_order_when_the_lock_is_held() -> None:
    stream = trio.testing.MemorySendStream()
    server, protocol = _server(stream)
    await server.protocol_send(RawData(b"head "))
    await server.protocol_send(RawData(b""))  # nothing to send
    async with trio.open_nursery() as nursery:
        await server.send_lock.acquire()  # another sender holds the lock
        nursery.start_soon(server.protocol_send, RawData(b"body"))
        await trio.testing.wait_all_tasks_blocked()
        assert stream.get_data_nowait() == b"head "  # the body waits for the lock
        server.send_lock.release()
    assert stream.get_data_nowait() == b"body"
    assert not server.send_lock.locked() and protocol.events == []


async def test_a_closed_peer_is_reported_to_the_protocol() -> None:
    stream = trio.testing.MemorySendStream()
    server, protocol = _server(stream)
    await stream.aclose()
    await server.protocol_send(RawData(b"too late"))
    assert [type(e) for e in protocol.events] == [Closed]
    assert not server.send_lock.locked()  # released after the error too
