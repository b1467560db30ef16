"""TLS for the web edge: server certificates, client certificates (mTLS), and who the peer is.

``TLSConfig`` names the PEM files of the gateway's certificate, its key and the site CA, and
turns them into an ``ssl.SSLContext``; :meth:`TLSConfig.configure` puts the same files into a
Hypercorn ``Config``. Every file is checked before serving: a missing, unreadable or wrong file
is a :class:`TLSConfigError` that names it.

With ``require_client_cert`` (the default) the TLS handshake itself refuses a client without a
certificate, or with one that does not chain to ``ca_certificates_path``, or an expired one: no
HTTP request is ever read from it. A verified certificate whose CN is not allowed is refused
later, with 403, by ``gateway.auth.service.AuthService``.

The client certificate reaches the application here. Hypercorn 0.18 does not put it into the
ASGI scope (no ``tls`` extension; hypercorn issues #62 and #324), so :func:`serve` — a drop-in
for ``hypercorn.trio.serve`` — runs every connection through :class:`CertificateTCPServer`, a
small subclass of Hypercorn's trio ``TCPServer`` that finishes the handshake, reads the verified
peer certificate off the ``trio.SSLStream`` and stores a :class:`PeerCertificate` in the
connection's own copy of the ASGI ``state``. Hypercorn copies that state into every request's
``scope["state"]``, where :func:`peer_certificate`, :func:`client_common_name` and
:func:`client_subject` read it. The same subclass sends responses with fewer scheduler
checkpoints (:meth:`CertificateTCPServer.protocol_send`). This relies on internals of
Hypercorn 0.17/0.18 (the ``TCPServer`` constructor, ``run`` and ``protocol_send``, the
per-request ``state`` copy); ``pyproject.toml`` pins that range and
``tests/unit/web/test_tls_hypercorn_pin.py`` fails loudly when they change.

Not supported by :func:`serve`: HTTP/3 (``quic_bind``), which the gateway does not offer.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState, LifespanState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

from gateway.web.memory import release_large_buffers

if TYPE_CHECKING:
    from cryptography import x509

# ``cryptography`` (and gateway.auth.pki, which uses it) is imported where a certificate is
# read, not here: a gateway serving plain HTTP never loads its ~8 MiB.

__all__ = [
    "PEER_CERTIFICATE_STATE",
    "CertificateTCPServer",
    "PeerCertificate",
    "TLSConfig",
    "TLSConfigError",
    "client_common_name",
    "client_subject",
    "peer_certificate",
    "serve",
]

log = logging.getLogger(__name__)

#: The key of the :class:`PeerCertificate` in the connection state and ``scope["state"]``.
PEER_CERTIFICATE_STATE: Final = "hs_gateway.peer_certificate"
#: Hypercorn's TLS 1.2 cipher list (TLS 1.3 suites are not affected by it).
_CIPHERS: Final = "ECDHE+AESGCM"
_ALPN: Final = ("h2", "http/1.1")
_VERSIONS: Final = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)


class TLSConfigError(ValueError):
    """A TLS file that is missing, unreadable or not what it should be; ``path`` names it."""

    def __init__(self, path: str | Path | None, message: str) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """The gateway's TLS files and client certificate policy.

    ``key_password`` decrypts an encrypted private key. ``require_client_cert`` makes every
    client present a certificate issued by ``ca_certificates_path`` (mTLS); without it, a
    certificate is still verified when a client offers one and ``ca_certificates_path`` is set.
    ``min_version`` is TLS 1.2 or TLS 1.3.
    """

    certificate_path: str | Path
    private_key_path: str | Path
    ca_certificates_path: str | Path | None = None
    key_password: str | bytes | None = field(default=None, repr=False)
    require_client_cert: bool = True
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2

    def __post_init__(self) -> None:
        if self.min_version not in _VERSIONS:
            raise TLSConfigError(None, "min_version must be TLSVersion.TLSv1_2 or TLSv1_3")
        if self.require_client_cert and self.ca_certificates_path is None:
            raise TLSConfigError(
                None, "require_client_cert needs ca_certificates_path (the CA of the clients)"
            )

    def _password(self) -> bytes | None:
        if isinstance(self.key_password, str):
            return self.key_password.encode("utf-8")
        return self.key_password

    def check_files(self) -> None:
        """Read and parse every file; :class:`TLSConfigError` naming the first bad one."""
        certs = _pem_certificates(self.certificate_path, "certificate")
        key = _private_key(self.private_key_path, self._password())
        if certs[0].public_key() != key.public_key():
            raise TLSConfigError(
                self.private_key_path, f"is not the private key of {self.certificate_path}"
            )
        if self.ca_certificates_path is not None:
            _pem_certificates(self.ca_certificates_path, "CA certificate")

    def ssl_context(self) -> ssl.SSLContext:
        """A server context: these files, ``min_version``, ALPN h2 + http/1.1, no compression."""
        self.check_files()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        context.options |= ssl.OP_NO_COMPRESSION  # RFC 7540 §9.2.1, and CRIME
        context.set_ciphers(_CIPHERS)
        context.set_alpn_protocols(list(_ALPN))
        try:
            context.load_cert_chain(
                str(self.certificate_path), str(self.private_key_path), self._password()
            )
        except (OSError, ssl.SSLError) as exc:  # the files changed since check_files
            raise TLSConfigError(self.certificate_path, f"cannot be loaded: {exc}") from exc
        if self.ca_certificates_path is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_certificates_path))
            except (OSError, ssl.SSLError) as exc:
                raise TLSConfigError(self.ca_certificates_path, f"cannot be loaded: {exc}") from exc
        context.verify_mode = self._verify_mode()
        return context

    def configure(self, config: Config) -> None:
        """Put these files into a Hypercorn ``Config`` (after checking them).

        Hypercorn's own ``serve`` then speaks TLS with the same files and client certificate
        policy (at least TLS 1.2), but only :func:`serve` here lets the app see the client
        certificate and applies ``min_version``.
        """
        self.check_files()
        config.certfile = str(self.certificate_path)
        config.keyfile = str(self.private_key_path)
        password = self._password()
        config.keyfile_password = password.decode("utf-8") if password is not None else None
        config.ca_certs = (
            str(self.ca_certificates_path) if self.ca_certificates_path is not None else None
        )
        config.verify_mode = self._verify_mode()

    def _verify_mode(self) -> ssl.VerifyMode:
        if self.ca_certificates_path is None:
            return ssl.CERT_NONE
        return ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TLSConfigError(path, f"TLS {what} file does not exist") from None
    except IsADirectoryError:
        raise TLSConfigError(path, f"TLS {what} file is a directory") from None
    except PermissionError:
        raise TLSConfigError(
            path, f"TLS {what} file cannot be read by this user (uid {os.getuid()})"
        ) from None
    except OSError as exc:
        raise TLSConfigError(path, f"TLS {what} file cannot be read: {exc.strerror}") from None


def _pem_certificates(path: str | Path, what: str) -> list[x509.Certificate]:
    from cryptography import x509

    data = _read(path, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSConfigError(path, f"is not a PEM {what} file") from None
    return list(certs)


def _private_key(path: str | Path, password: bytes | None) -> Any:
    from cryptography.hazmat.primitives import serialization

    data = _read(path, "private key")
    try:
        return serialization.load_pem_private_key(data, password=password)
    except TypeError:
        # Either the key is encrypted and no password was given, or the reverse.
        if password is None:
            raise TLSConfigError(path, "private key is encrypted: set key_password") from None
        return _private_key(path, None)  # an unencrypted key ignores the password, as ssl does
    except ValueError:
        if password is not None:
            raise TLSConfigError(
                path, "is not a PEM private key, or key_password does not decrypt it"
            ) from None
        raise TLSConfigError(path, "is not a PEM private key") from None


# -- the peer certificate ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The verified certificate a client presented on this connection."""

    subject: str  # RFC 4514, e.g. "CN=ahu-1,O=Site"
    common_name: str | None
    issuer: str
    serial_number: int
    not_valid_after: dt.datetime
    der: bytes = field(repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> PeerCertificate:
        """Read the DER certificate that ``ssl`` gives for the peer."""
        from cryptography import x509

        from gateway.auth.pki import common_name

        cert = x509.load_der_x509_certificate(der)
        return cls(
            cert.subject.rfc4514_string(),
            common_name(cert),
            cert.issuer.rfc4514_string(),
            cert.serial_number,
            cert.not_valid_after_utc,
            der,
        )


def peer_certificate(scope: Mapping[str, Any]) -> PeerCertificate | None:
    """The verified client certificate of the request's connection, or None."""
    state = scope.get("state")
    if not isinstance(state, Mapping):
        return None
    cert = state.get(PEER_CERTIFICATE_STATE)
    return cert if isinstance(cert, PeerCertificate) else None


def client_common_name(scope: Mapping[str, Any]) -> str | None:
    """The CN of the verified client certificate (what ``CertAuthenticator`` matches)."""
    cert = peer_certificate(scope)
    return cert.common_name if cert is not None else None


def client_subject(scope: Mapping[str, Any]) -> str | None:
    """The full subject of the verified client certificate, for logs (``CN=ahu-1,O=Site``)."""
    cert = peer_certificate(scope)
    return cert.subject if cert is not None else None


class CertificateTCPServer(TCPServer):
    """Hypercorn's trio connection handler, plus the peer certificate in the connection state
    and a quicker ``protocol_send``."""

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        state: LifespanState,
        stream: trio.SSLStream[trio.SocketStream],
    ) -> None:
        # Every connection of a listener gets the same state dict: copy it, so that one
        # connection's certificate never appears in another connection's requests.
        super().__init__(app, config, context, ConnectionState(dict(state)), stream)

    async def run(self) -> None:
        stream: Any = self.stream
        if isinstance(stream, trio.SSLStream):
            try:
                with trio.fail_after(self.config.ssl_handshake_timeout):
                    await stream.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError) as exc:
                # A client without a valid certificate ends here; say why for the field log.
                log.info("TLS handshake with %s failed: %s", _peer(stream), exc.__cause__ or exc)
                return  # the listener closes the stream, as for Hypercorn's own handshake
            der = stream.getpeercert(binary_form=True)
            if der is not None:
                self.state[PEER_CERTIFICATE_STATE] = PeerCertificate.from_der(der)
        # Hypercorn's run() does the handshake again, which returns at once once it is done.
        await super().run()

    async def protocol_send(self, event: Event) -> None:
        """Hypercorn's, with fewer trips through the trio scheduler for each response.

        Hypercorn sends every piece of a response (the head, the body, the empty end of a
        Content-Length body) under its send lock, and taking a free trio lock, like sending
        nothing, is a checkpoint. Here a free lock is taken without one and an empty piece is
        not sent: a read of one id went from 15 rounds of the scheduler to 11 and used about
        5% less CPU (measured with cProfile and the server's CPU time).
        """
        if not isinstance(event, RawData):
            await super().protocol_send(event)
            return
        if not event.data:
            return  # the end of a Content-Length body: no bytes to send
        lock = self.send_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            with trio.CancelScope(shield=True):
                await self.stream.send_all(event.data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self.protocol.handle(Closed())
        finally:
            lock.release()


def _peer(stream: trio.SSLStream[Any]) -> str:
    try:
        sock = stream.transport_stream.socket
        return repr_socket_addr(sock.family, sock.getpeername())
    except (AttributeError, OSError):
        return "unknown peer"


async def serve(
    app: Any,
    config: Config,
    *,
    tls: TLSConfig | None = None,
    shutdown_trigger: Callable[..., Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app like ``hypercorn.trio.serve``, with client certificates in the scope.

    ``tls`` configures TLS (it writes its files into ``config``); without it the TLS settings
    of ``config``, if any, apply. The binds (``https://127.0.0.1:8443``) go to ``task_status``;
    ``shutdown_trigger`` returning starts a graceful shutdown bounded by
    ``config.graceful_timeout``. Unlike Hypercorn, ``max_requests`` gets no random jitter (one
    worker process: nothing to stagger). Large transient buffers (a big hisRead document) are
    given back to the operating system once freed (:mod:`gateway.web.memory`).
    """
    if config.quic_bind:
        raise ValueError("gateway.web.tls.serve does not serve HTTP/3 (quic_bind)")
    release_large_buffers()
    if tls is not None:
        tls.configure(config)
    ssl_context = tls.ssl_context() if tls is not None else config.create_ssl_context()
    config.set_statsd_logger_class(StatsdLogger)
    asgi = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(asgi, config, lifespan_state)
    context = WorkerContext(config.max_requests)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            listeners, binds = await _listeners(config, ssl_context)
            task_status.started(binds)
            handler = partial(CertificateTCPServer, asgi, config, context, lifespan_state)
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    if shutdown_trigger is not None:
                        nursery.start_soon(raise_shutdown, shutdown_trigger)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    nursery.start_soon(
                        partial(
                            trio.serve_listeners, handler, listeners, handler_nursery=connections
                        )
                    )
                    await trio.sleep_forever()
            except BaseExceptionGroup as group:
                _, others = group.split((ShutdownError, KeyboardInterrupt))
                if others is not None:
                    raise others from None
            finally:
                await context.terminated.set()
                # Open connections get the graceful timeout to finish, then are cancelled.
                connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


async def _listeners(
    config: Config, ssl_context: ssl.SSLContext | None
) -> tuple[list[trio.abc.Listener[Any]], list[str]]:
    sockets = config.create_sockets()
    if sockets.secure_sockets and ssl_context is None:
        raise ValueError("TLS sockets without a TLS context")
    listeners: list[trio.abc.Listener[Any]] = []
    binds: list[str] = []
    for scheme, socks in (("https", sockets.secure_sockets), ("http", sockets.insecure_sockets)):
        for sock in socks:
            sock.listen(config.backlog)
            listener: trio.abc.Listener[Any] = trio.SocketListener(
                trio.socket.from_stdlib_socket(sock)
            )
            if scheme == "https":
                assert ssl_context is not None
                listener = trio.SSLListener(listener, ssl_context, https_compatible=True)
            listeners.append(listener)
            bind = f"{scheme}://{repr_socket_addr(sock.family, sock.getsockname())}"
            binds.append(bind)
            await config.log.info(f"Running on {bind} (CTRL + C to quit)")
    return listeners, binds
