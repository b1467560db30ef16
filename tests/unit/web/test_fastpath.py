"""The raw ASGI path of the op routes (gateway.web.fastpath) and what stays with Quart.

Over real HTTP through Hypercorn where the behaviour is HTTP (streaming, chunked uploads,
routes added under the prefix); straight ASGI calls where a client cannot produce the case (a
disconnect in the middle of a body, a body that never ends, a handler that raises).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import trio
from quart import request

from gateway.haystack.codecs import ZINC, decode
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.ops import HaystackOps
from gateway.storage.memory import InMemoryAdapter
from gateway.web import fastpath
from gateway.web.app import create_app
from gateway.web.fastpath import HaystackApp, send_reply
from gateway.web.negotiate import response_format
from gateway.web.ophandler import OpReply
from tests.web_harness import serve_app

ZINC_TYPE = "text/zinc"


def records() -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = [{"id": Ref("site"), "site": MARKER, "dis": "Café Süd"}]
    for i in range(50):
        recs.append({"id": Ref(f"p{i}"), "point": MARKER, "dis": f"Point {i}", "n": Number(i)})
    return recs


def app_with_hooks() -> tuple[HaystackApp, list[str]]:
    """An app whose Quart hooks record what Quart itself served."""
    app = create_app(storage=InMemoryAdapter(records()))
    assert isinstance(app, HaystackApp)
    seen: list[str] = []

    @app.before_request
    async def note() -> None:
        seen.append(request.path)

    return app, seen


# -- which requests take the raw path ------------------------------------------------------


async def test_op_requests_skip_quart_and_other_routes_do_not() -> None:
    app, seen = app_with_hooks()

    @app.route("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.route("/status")
    async def status() -> str:
        return "up"

    async with serve_app(app) as url, httpx.AsyncClient() as client:
        r = await client.get(f"{url}/api/read", params={"filter": "site"})
        assert r.status_code == 200 and decode(r.content, ZINC_TYPE)[0]["dis"] == "Café Süd"
        assert (await client.get(f"{url}/api/health")).json() == {"status": "ok"}
        assert (await client.get(f"{url}/status")).text == "up"
        # POST is not a method of /api/health: Quart's routing gives it to the op route
        r = await client.post(f"{url}/api/health")
        assert r.status_code == 404 and "no op 'health'" in r.text
    assert seen == ["/api/health", "/status"]  # Quart saw exactly the non-op requests


async def test_a_route_added_later_takes_its_path_from_the_op_route() -> None:
    app, seen = app_with_hooks()
    async with serve_app(app) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/api/extra")).status_code == 404  # no such op
        app.add_url_rule("/api/extra", "extra", lambda: "extra route", methods=["GET"])
        r = await client.get(f"{url}/api/extra")
        assert r.status_code == 200 and r.text == "extra route"
    assert seen == ["/api/extra"]


async def test_root_path_goes_through_quart_with_the_same_rules() -> None:
    # With an ASGI root_path the raw path steps aside; Quart's op route answers alike.
    app, seen = app_with_hooks()

    def configure(config: Any) -> None:
        config.root_path = "/gw"

    async with serve_app(app, configure=configure) as url, httpx.AsyncClient() as client:
        r = await client.get(f"{url}/gw/api/read", params={"id": "@p3"})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-cache, no-store"
        assert decode(r.content, ZINC_TYPE)[0]["dis"] == "Point 3"
        assert (await client.put(f"{url}/gw/api/read")).status_code == 501
        assert (await client.get(f"{url}/gw/api/hisWrite")).status_code == 405
        body = b'ver:"3.0"\nfilter\n"' + b"x" * 100 + b'"\n'
        r = await client.post(
            f"{url}/gw/api/read", content=body, headers={"Content-Type": ZINC_TYPE}
        )
        assert r.status_code == 200
    assert seen == ["/api/read", "/api/read", "/api/hisWrite", "/api/read"]


async def test_quart_route_refuses_a_body_over_the_limit() -> None:
    app = create_app(storage=InMemoryAdapter(records()), max_body=100)

    def configure(config: Any) -> None:
        config.root_path = "/gw"

    async with serve_app(app, configure=configure) as url, httpx.AsyncClient() as client:
        body = b'ver:"3.0"\nfilter\n"' + b"x" * 200 + b'"\n'
        r = await client.post(
            f"{url}/gw/api/read", content=body, headers={"Content-Type": ZINC_TYPE}
        )
        assert r.status_code == 413


# -- request details -----------------------------------------------------------------------


async def test_query_parameters_percent_encoded_utf8_and_plus() -> None:
    app, _ = app_with_hooks()
    async with serve_app(app) as url, httpx.AsyncClient() as client:
        r = await client.get(f"{url}/api/read?filter=dis%3D%3D%22Caf%C3%A9+S%C3%BCd%22")
        assert r.status_code == 200
        assert [row["id"] for row in decode(r.content, ZINC_TYPE)] == [Ref("site")]
        r = await client.get(f"{url}/api/read?filter=point&limit=2&filter=site")
        # every parameter is read, in order: the last of a repeated name wins (as in Quart)
        assert [row["id"] for row in decode(r.content, ZINC_TYPE)] == [Ref("site")]
        r = await client.get(f"{url}/api/read?filter=point&limit=2&flag")
        assert len(decode(r.content, ZINC_TYPE)) == 2  # a blank parameter is kept (a Str)


async def test_chunked_upload_is_read_whole() -> None:
    app = create_app(storage=InMemoryAdapter(records()), max_body=2000)

    async def body(parts: int) -> AsyncIterator[bytes]:
        yield b'ver:"3.0"\nid\n'
        for i in range(parts):
            yield f"@p{i % 50}\n".encode()

    async with serve_app(app) as url, httpx.AsyncClient() as client:
        headers = {"Content-Type": ZINC_TYPE}
        r = await client.post(f"{url}/api/read", content=body(40), headers=headers)
        assert r.status_code == 200 and len(decode(r.content, ZINC_TYPE)) == 40


# -- responses -----------------------------------------------------------------------------


async def test_a_large_response_is_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    def in_pieces(fmt: Any, grid: Grid) -> Iterator[bytes]:
        text = fmt.encode(grid)
        for i in range(0, len(text), 100):
            yield text[i : i + 100]

    monkeypatch.setattr(type(ZINC), "encode_iter", in_pieces)
    monkeypatch.setattr(fastpath, "STREAM_FROM", 300)
    app, _ = app_with_hooks()
    async with serve_app(app) as url, httpx.AsyncClient() as client:
        r = await client.get(f"{url}/api/read", params={"filter": "point"})
        assert r.status_code == 200 and len(r.content) > 1000
        assert "content-length" not in r.headers
        assert r.headers["transfer-encoding"] == "chunked"
        grid = decode(r.content, ZINC_TYPE)
        assert sorted(row["n"].val for row in grid) == list(range(50))
        r = await client.get(f"{url}/api/read", params={"id": "@p1"})  # small: sent whole
        assert r.headers["content-length"] == str(len(r.content))
        assert decode(r.content, ZINC_TYPE)[0]["dis"] == "Point 1"


async def test_send_reply_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "STREAM_FROM", 4)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await send_reply(send, OpReply(201, {"X-A": "1"}, b"abcdefgh"))
    assert sent[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"x-a", b"1"), (b"content-length", b"8")],
    }
    assert sent[1] == {"type": "http.response.body", "body": b"abcdefgh", "more_body": False}
    sent.clear()
    await send_reply(send, OpReply(200, {}, chunks=iter([b"a", b"b", b"", b"c"])))  # < 4 bytes
    assert [m.get("body") for m in sent[1:]] == [b"abc"]
    assert (b"content-length", b"3") in sent[0]["headers"]
    sent.clear()
    pieces = [b"ab", b"cd", b"e", b"", b"fghij", b"k"]
    await send_reply(send, OpReply(200, {}, chunks=iter(pieces)))
    assert all(k != b"content-length" for k, _ in sent[0]["headers"])
    assert [m.get("body") for m in sent[1:]] == [b"abcd", b"efghij", b"k"]
    assert [m.get("more_body") for m in sent[1:]] == [True, True, False]
    sent.clear()
    await send_reply(send, OpReply(200, {}, chunks=iter([b"abcdef", b""])))  # one real piece
    assert sent[1] == {"type": "http.response.body", "body": b"abcdef", "more_body": False}
    assert (b"content-length", b"6") in sent[0]["headers"]
    sent.clear()
    await send_reply(send, OpReply(200, {}, chunks=iter([])))  # nothing at all: an empty body
    assert sent[1]["body"] == b"" and (b"content-length", b"0") in sent[0]["headers"]

    def broken() -> Iterator[bytes]:
        yield b"ab"
        raise ValueError("cannot encode")

    sent.clear()
    await send_reply(send, OpReply(200, {}, chunks=broken()))
    assert sent[0]["status"] == 500  # failed before anything was sent


# -- straight ASGI: what a client cannot easily do ----------------------------------------


def _scope(path: str = "/api/read", method: str = "POST") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"text/zinc"), (b"accept", b"text/zinc")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def _call(app: Any, messages: list[dict[str, Any]], scope: dict[str, Any]) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _body(sent: list[Any]) -> bytes:
    return b"".join(m["body"] for m in sent[1:])


async def test_body_in_several_messages() -> None:
    app = create_app(storage=InMemoryAdapter(records()))
    parts = [b'ver:"3.0"\nid\n', b"@p1\n", b"@p2\n"]
    messages = [{"type": "http.request", "body": p, "more_body": True} for p in parts]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent = await _call(app, messages, _scope())
    assert sent[0]["status"] == 200
    assert [r["id"] for r in ZINC.decode(_body(sent))] == [Ref("p1"), Ref("p2")]


async def test_body_without_length_is_limited_as_it_arrives() -> None:
    app = create_app(storage=InMemoryAdapter(records()), max_body=100)
    messages = [{"type": "http.request", "body": b"@p1\n" * 10, "more_body": True}] * 3
    sent = await _call(app, list(messages), _scope())  # the third message is one too many
    assert sent[0]["status"] == 413
    assert ZINC.decode(_body(sent)).is_error


async def test_client_gone_before_its_body_gets_no_answer() -> None:
    app = create_app(storage=InMemoryAdapter(records()))
    messages = [
        {"type": "http.request", "body": b'ver:"3.0"\n', "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert await _call(app, messages, _scope()) == []


async def test_a_body_that_never_ends_times_out() -> None:
    app = create_app(storage=InMemoryAdapter(records()))
    app.config["BODY_TIMEOUT"] = 0.05  # Quart's setting, for both paths
    messages = [{"type": "http.request", "body": b'ver:"3.0"\n', "more_body": True}]
    sent = await _call(app, messages, _scope())
    assert sent[0]["status"] == 408


async def test_a_body_that_never_starts_times_out() -> None:
    # Headers with a Content-Length, then nothing: the first receive is timed too.
    app = create_app(storage=InMemoryAdapter(records()))
    app.config["BODY_TIMEOUT"] = 0.05
    with trio.fail_after(5):
        sent = await _call(app, [], _scope())
    assert sent[0]["status"] == 408


async def test_a_failing_handler_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(HaystackOps):
        def find_op(self, name: str) -> Any:
            raise RuntimeError("boom")

    app = create_app(Broken(InMemoryAdapter(records())))
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = await _call(app, messages, _scope("/api/about", "GET"))
    assert sent[0]["status"] == 500
    assert "boom" in caplog.text


def test_accept_negotiation_is_cached_and_still_right() -> None:
    first = response_format("application/json")
    assert first is not None and first[0].name == "json4"
    assert response_format("application/json") is first
    assert response_format("image/png") is None
    assert response_format(None) == response_format("*/*")
