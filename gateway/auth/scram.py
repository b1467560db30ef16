"""SCRAM-SHA-256 logins, server side, in Haystack's framing; sans-IO (time comes in as ``now``).

The exchange (haystack.md §3.2; the HTTP layer only moves the headers)::

    HELLO username=<b64url(user)>             -> 401 SCRAM handshakeToken=<t>, hash=SHA-256
    SCRAM data=<client-first>, handshakeToken  -> 401 SCRAM data=<server-first>, handshakeToken,
                                                      hash=SHA-256
    SCRAM data=<client-final>, handshakeToken  -> 200 Authentication-Info: authToken=<tok>,
                                                      data=<server-final>, hash=SHA-256

Layers:

- :class:`ScramCredentials`: what is stored per user — salt, iteration count, StoredKey and
  ServerKey (RFC 5802; PBKDF2-HMAC-SHA256). The password is never kept. Passwords are UTF-8
  without SASLprep, because the Haystack clients (phable, pyhaystack, Haxall) do not apply it
  either; for ASCII passwords this is the same thing.
- :class:`ScramExchange`: one RFC 5802 conversation on ``scramp``'s ``ScramServer``, which does
  the message parsing and the proof arithmetic. It adapts what Haystack clients send to what
  scramp reads: a client-first without the ``n,,`` gs2 header (pyhaystack) gets one prepended,
  so the client-first-bare scramp keeps is the client's text verbatim; the proof of the
  client-final is re-encoded from lenient base64 (pyhaystack's ends in ``\\n``); a trailing
  newline on a message is dropped. scramp's errors become this package's errors.
- :class:`ScramServer`: the handshake table — at most ``max_handshakes`` (1,000) in progress,
  each for ``handshake_ttl`` (60 s) from its HELLO, tokens and nonces of ``[A-Za-z0-9]`` — and
  the fake challenges that keep user names from being probed.

Status choices (haystack.md §3.2 "401 vs 403"):

- HELLO and the client-first step answer 401 with a challenge; success answers 200.
- A bad proof answers 403 (:class:`AuthenticationFailed`). An unknown or disabled user gets a
  normal challenge — salt ``HMAC(secret, name)`` truncated to the real salt length, the
  configured iteration count, random keys — and fails at the proof with the same 403.
- An unknown, expired or already used handshake token, a step out of order, a user name in the
  client-first other than the HELLO's, or a nonce or channel-binding mismatch answers 403
  (:class:`HandshakeError`), not 401 with a new challenge: the client is mid-exchange and cannot
  use a fresh HELLO challenge at this step; 403 tells it to start over (phable maps a handshake
  403 to its ``AuthError``). The handshake is dropped on any error, so nothing can be retried
  against it.
- Messages that cannot be read at all answer 400 (:class:`MalformedAuthError`).
- A full handshake table answers 503 with Retry-After (:class:`HandshakeLimitError`).

Handshakes live in this process's memory: one gateway process serves the API (DESIGN.md), so a
handshake never needs to cross processes; tokens, which must, live in the token store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

import scramp
from scramp.utils import ScramException, ServerError

from gateway.auth.errors import (
    AuthenticationFailed,
    AuthError,
    HandshakeError,
    HandshakeLimitError,
    ScramMessageError,
)
from gateway.auth.headers import (
    SCRAM,
    b64decode_lenient,
    b64decode_text,
    b64url_encode,
    format_auth_header,
    format_auth_params,
)
from gateway.auth.reply import WWW_AUTHENTICATE, AuthReply
from gateway.auth.tokens import new_token

__all__ = [
    "DEFAULT_ITERATIONS",
    "HASH_NAME",
    "MIN_ITERATIONS",
    "SALT_BYTES",
    "ScramCredentials",
    "ScramExchange",
    "ScramServer",
    "ScramVerified",
    "new_secret",
]

HASH_NAME: Final = "SHA-256"
MECHANISM: Final = "SCRAM-SHA-256"
#: PBKDF2 iterations for new passwords (Haxall uses 10,000; OWASP advises far more for PBKDF2).
DEFAULT_ITERATIONS: Final = 100_000
#: RFC 7677's floor, and scramp's.
MIN_ITERATIONS: Final = 4096
MAX_ITERATIONS: Final = 10_000_000
SALT_BYTES: Final = 32
_MIN_SALT_BYTES: Final = 16
_KEY_BYTES: Final = 32
_NONCE_CHARS: Final = 32
_TEXT_PREFIX: Final = MECHANISM + "$"


def _salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """A user's SCRAM-SHA-256 verifier (RFC 5802 §3): enough to check a proof, not a password."""

    salt: bytes
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.salt) < _MIN_SALT_BYTES:
            raise ValueError(f"SCRAM salt must have at least {_MIN_SALT_BYTES} bytes")
        if not MIN_ITERATIONS <= self.iterations <= MAX_ITERATIONS:
            raise ValueError(f"SCRAM iterations must be {MIN_ITERATIONS}..{MAX_ITERATIONS}")
        if len(self.stored_key) != _KEY_BYTES or len(self.server_key) != _KEY_BYTES:
            raise ValueError("SCRAM-SHA-256 keys have 32 bytes")

    @classmethod
    def derive(
        cls, password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
    ) -> ScramCredentials:
        """Derive the verifier of ``password`` with a fresh 32-byte salt (or ``salt``)."""
        salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise ValueError(f"SCRAM iterations must be {MIN_ITERATIONS}..{MAX_ITERATIONS}")
        salted = _salted_password(password, salt, iterations)
        stored_key = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
        return cls(salt, iterations, stored_key, _hmac(salted, b"Server Key"))

    def verify_password(self, password: str) -> bool:
        """Whether ``password`` derives this verifier (PLAINTEXT logins); costs one PBKDF2."""
        salted = _salted_password(password, self.salt, self.iterations)
        stored_key = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
        return hmac.compare_digest(stored_key, self.stored_key)

    def to_text(self) -> str:
        """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (PostgreSQL's form)."""
        b64 = base64.b64encode
        return (
            f"{_TEXT_PREFIX}{self.iterations}:{b64(self.salt).decode()}"
            f"${b64(self.stored_key).decode()}:{b64(self.server_key).decode()}"
        )

    @classmethod
    def from_text(cls, text: str) -> ScramCredentials:
        """Read :meth:`to_text`; ValueError if it is not that form."""
        try:
            mech, params, keys = text.split("$")
            iterations, salt = params.split(":")
            stored_key, server_key = keys.split(":")
            if mech != MECHANISM or not iterations.isdigit():
                raise ValueError
            b64 = base64.b64decode
            return cls(
                b64(salt, validate=True),
                int(iterations),
                b64(stored_key, validate=True),
                b64(server_key, validate=True),
            )
        except ValueError as exc:
            raise ValueError("not a SCRAM-SHA-256 verifier") from exc


def new_secret() -> bytes:
    """A server secret for :class:`ScramServer` (persist it: see ``ScramServer``)."""
    return secrets.token_bytes(32)


def _nonce() -> str:
    return new_token(_NONCE_CHARS)


_HANDSHAKE_ERRORS: Final = frozenset(
    {
        ServerError.CHANNEL_BINDINGS_DONT_MATCH,
        ServerError.SERVER_DOES_SUPPORT_CHANNEL_BINDING,
        ServerError.CHANNEL_BINDING_NOT_SUPPORTED,
        ServerError.UNSUPPORTED_CHANNEL_BINDING_TYPE,
    }
)


@contextmanager
def _scramp_errors(username: str) -> Iterator[None]:
    """Map scramp's exceptions onto this package's tree (by scramp's error code, not text)."""
    try:
        yield
    except ScramException as exc:
        if exc.server_error is ServerError.INVALID_PROOF:
            raise AuthenticationFailed(username) from exc
        if exc.server_error in _HANDSHAKE_ERRORS:
            raise HandshakeError("SCRAM channel binding does not match") from exc
        if exc.server_error is None:  # scramp's stage checks: a step out of order
            raise HandshakeError("SCRAM step out of order") from exc
        raise ScramMessageError("malformed SCRAM message") from exc
    except (ValueError, TypeError) as exc:  # a guard: anything else scramp lets through
        raise ScramMessageError("malformed SCRAM message") from exc


class ScramExchange:
    """One SCRAM-SHA-256 conversation, server side, for one user's credentials."""

    def __init__(self, username: str, credentials: ScramCredentials, server_nonce: str) -> None:
        self.username = username
        self._credentials = credentials
        self._client_username: str | None = None
        self._nonce: str | None = None
        self._server = scramp.ScramMechanism(MECHANISM).make_server(
            self._auth_info, s_nonce=server_nonce
        )

    def _auth_info(self, username: str) -> tuple[bytes, bytes, bytes, int]:
        # Called by scramp with the client-first's (unescaped) user name.
        self._client_username = username
        c = self._credentials
        return c.salt, c.stored_key, c.server_key, c.iterations

    def receive_client_first(self, message: str) -> str:
        """Take the client-first message (gs2 header optional); return server-first."""
        message = message.rstrip("\r\n")
        if message.startswith("n="):  # pyhaystack omits the gs2 header
            message = "n,," + message
        with _scramp_errors(self.username):
            self._server.set_client_first(message)
            if self._client_username != self.username:
                raise HandshakeError("SCRAM user name differs from the HELLO user name")
            server_first: str = self._server.get_server_first()
        self._nonce = server_first.split(",", 1)[0][2:]
        return server_first

    def receive_client_final(self, message: str) -> str:
        """Take the client-final message; return server-final, or raise if the proof is bad."""
        if self._nonce is None:
            raise HandshakeError("SCRAM client-final before client-first")
        head, sep, proof = message.rstrip("\r\n").rpartition(",p=")
        if not sep:
            raise ScramMessageError("SCRAM client-final has no proof")
        attrs = head.split(",")
        if len(attrs) < 2 or not attrs[1].startswith("r="):
            raise ScramMessageError("SCRAM client-final is not c=...,r=...")
        if not hmac.compare_digest(
            attrs[1][2:].encode("utf-8", "surrogatepass"), self._nonce.encode()
        ):
            raise HandshakeError("SCRAM nonce does not match")
        # scramp reads the proof as strict standard base64; clients send either alphabet.
        canonical = f"{head},p={base64.b64encode(b64decode_lenient(proof)).decode()}"
        with _scramp_errors(self.username):
            self._server.set_client_final(canonical)
            server_final: str = self._server.get_server_final()
        return server_final


@dataclass(frozen=True, slots=True)
class ScramVerified:
    """A proof that verified: the caller issues a token and answers 200 with
    ``Authentication-Info: <authentication_info(token)>``."""

    username: str
    server_final: str

    def authentication_info(self, auth_token: str) -> str:
        """``authToken=<t>, data=<b64url(server-final)>, hash=SHA-256``."""
        return format_auth_params(
            {"authToken": auth_token, "data": b64url_encode(self.server_final), "hash": HASH_NAME}
        )


@dataclass(slots=True)
class _Handshake:
    exchange: ScramExchange
    expires: float
    awaiting_final: bool = False


class ScramServer:
    """The table of SCRAM handshakes in progress, and the Haystack framing of each step.

    ``secret`` keys the fake salts of unknown users; keep it across restarts (a salt that changes
    when the server restarts would give an unknown name away). ``fake_iterations`` should be
    the iteration count the users are created with.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        max_handshakes: int = 1000,
        handshake_ttl: float = 60.0,
        fake_iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the SCRAM server secret needs at least 16 bytes")
        if max_handshakes < 1 or not handshake_ttl > 0:
            raise ValueError("max_handshakes and handshake_ttl must be positive")
        self._secret = secret
        self.max_handshakes = max_handshakes
        self.handshake_ttl = handshake_ttl
        self.fake_iterations = fake_iterations
        # Insertion order is HELLO order, so expired handshakes are found at the front.
        self._handshakes: dict[str, _Handshake] = {}

    def in_progress(self, now: float) -> int:
        """How many handshakes are open at ``now`` (expired ones are dropped first)."""
        self.purge(now)
        return len(self._handshakes)

    def purge(self, now: float) -> int:
        """Drop the handshakes expired at ``now``; how many."""
        dropped = 0
        for token, handshake in list(self._handshakes.items()):
            if handshake.expires > now:
                break
            del self._handshakes[token]
            dropped += 1
        return dropped

    def fake_credentials(self, username: str) -> ScramCredentials:
        """Credentials for a user that does not exist: stable salt per name, unusable keys."""
        name = username.encode("utf-8", "surrogatepass")
        salt = hmac.new(self._secret, b"hs-gateway fake salt\0" + name, hashlib.sha256).digest()
        return ScramCredentials(
            salt[:SALT_BYTES],
            self.fake_iterations,
            secrets.token_bytes(_KEY_BYTES),
            secrets.token_bytes(_KEY_BYTES),
        )

    def hello(
        self, username: str, credentials: ScramCredentials | None, *, now: float
    ) -> AuthReply:
        """Open a handshake for ``username`` (None credentials: unknown or disabled user)."""
        self.purge(now)
        if len(self._handshakes) >= self.max_handshakes:
            oldest = next(iter(self._handshakes.values()))
            raise HandshakeLimitError(retry_after=max(1.0, oldest.expires - now))
        creds = credentials if credentials is not None else self.fake_credentials(username)
        token = new_token(_NONCE_CHARS)
        exchange = ScramExchange(username, creds, _nonce())
        self._handshakes[token] = _Handshake(exchange, now + self.handshake_ttl)
        return self._challenge({"handshakeToken": token, "hash": HASH_NAME})

    def handshake_user(self, handshake_token: str) -> str | None:
        """The user of an open handshake (to check throttling before the proof), or None."""
        handshake = self._handshakes.get(handshake_token)
        return handshake.exchange.username if handshake is not None else None

    def discard(self, handshake_token: str) -> None:
        """Drop a handshake (the caller refused its next step, e.g. while throttled)."""
        self._handshakes.pop(handshake_token, None)

    def receive(self, handshake_token: str, data: str, *, now: float) -> AuthReply | ScramVerified:
        """Take a ``SCRAM data=..., handshakeToken=...`` step: a challenge, or a verified login."""
        handshake = self._handshakes.get(handshake_token)
        if handshake is None or handshake.expires <= now:
            self._handshakes.pop(handshake_token, None)
            raise HandshakeError("unknown or expired handshake token; start again with HELLO")
        exchange = handshake.exchange
        try:
            message = b64decode_text(data)
            if not handshake.awaiting_final:
                server_first = exchange.receive_client_first(message)
                handshake.awaiting_final = True
                return self._challenge(
                    {
                        "data": b64url_encode(server_first),
                        "handshakeToken": handshake_token,
                        "hash": HASH_NAME,
                    }
                )
            del self._handshakes[handshake_token]  # single use, whatever the outcome
            return ScramVerified(exchange.username, exchange.receive_client_final(message))
        except AuthError:
            self._handshakes.pop(handshake_token, None)
            raise

    @staticmethod
    def _challenge(params: dict[str, str]) -> AuthReply:
        return AuthReply(401, ((WWW_AUTHENTICATE, format_auth_header(SCRAM, params)),))

    def check_password(
        self, username: str, credentials: ScramCredentials | None, password: str
    ) -> bool:
        """PLAINTEXT: whether ``password`` is right; an unknown user costs the same PBKDF2."""
        creds = credentials if credentials is not None else self.fake_credentials(username)
        ok = creds.verify_password(password)
        return ok and credentials is not None
