"""Pin the Hypercorn internals that gateway.web.tls relies on to show client certificates.

Hypercorn does not give the ASGI app the client certificate (issues #62 and #324), so
``gateway.web.tls`` subclasses its trio ``TCPServer`` and puts the certificate into the
connection state, which Hypercorn copies into each request's ``scope["state"]``. When one of
these tests fails after a Hypercorn upgrade, re-read hypercorn/trio/tcp_server.py, run.py and
protocol/http_stream.py and adapt ``CertificateTCPServer`` and ``serve`` before widening the pin.
``CertificateTCPServer.protocol_send`` also repeats Hypercorn's send of raw data.
The end-to-end proof (a real handshake, the subject in the scope) is in test_tls_mtls.py.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import hypercorn.trio.run
from hypercorn.protocol import http_stream
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext

from gateway.web.tls import CertificateTCPServer


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2])


def test_hypercorn_version_is_the_one_tls_was_written_for() -> None:
    installed = _release(version("hypercorn"))
    assert (0, 17) <= installed < (0, 19), (
        f"Hypercorn {version('hypercorn')}: gateway.web.tls was written for 0.17-0.18"
    )


def test_pyproject_pins_the_same_range() -> None:
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    assert '"hypercorn>=0.17,<0.19"' in pyproject.read_text(encoding="utf-8")


def test_tcp_server_takes_the_state_and_stream_we_pass() -> None:
    params = list(inspect.signature(TCPServer.__init__).parameters)
    assert params == ["self", "app", "config", "context", "state", "stream"]
    assert issubclass(CertificateTCPServer, TCPServer)
    source = inspect.getsource(TCPServer)
    # run() hands self.state to the protocol as the connection state, after the handshake.
    assert "ConnectionState(self.state)" in source
    assert "do_handshake()" in source
    assert "self.state = state" in source


def test_every_request_gets_a_copy_of_the_connection_state() -> None:
    assert '"state": event.state.copy()' in inspect.getsource(http_stream)


def test_worker_serve_still_builds_what_our_serve_builds() -> None:
    # serve() mirrors worker_serve with our TCPServer; these are the parts it reuses.
    source = inspect.getsource(hypercorn.trio.run.worker_serve)
    for piece in ("TCPServer,", "Lifespan(app, config, lifespan_state)", "WorkerContext("):
        assert piece in source, piece
    assert list(inspect.signature(Lifespan.__init__).parameters) == [
        "self",
        "app",
        "config",
        "state",
    ]
    assert list(inspect.signature(WorkerContext.__init__).parameters) == [
        "self",
        "max_requests",
    ]


def test_protocol_send_still_does_what_ours_repeats() -> None:
    # CertificateTCPServer.protocol_send repeats Hypercorn's for RawData (minus the
    # checkpoints) and hands every other event to it.
    source = inspect.getsource(TCPServer.protocol_send)
    for piece in (
        "isinstance(event, RawData)",
        "async with self.send_lock:",
        "cancel_scope.shield = True",
        "await self.stream.send_all(event.data)",
        "except (trio.BrokenResourceError, trio.ClosedResourceError):",
        "await self.protocol.handle(Closed())",
    ):
        assert piece in source, piece
