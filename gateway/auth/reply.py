"""What the authentication layer tells the HTTP layer: status, headers, and who is calling.

The auth middleware does no thinking of its own: for every request it gets an
:class:`AuthReply` and either answers with ``status`` and ``headers`` at once (``proceed`` is
False: a challenge, a refusal or a finished login) or runs the op as ``identity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from gateway.auth.errors import (
    AuthError,
    HandshakeLimitError,
    ThrottledError,
    TokenLimitError,
)
from gateway.auth.headers import SCRAM, format_auth_header
from gateway.auth.roles import Role

__all__ = [
    "AUTHENTICATION_INFO",
    "WWW_AUTHENTICATE",
    "AuthReply",
    "Identity",
    "generic_challenge",
    "reply_for_error",
]

WWW_AUTHENTICATE: Final = "WWW-Authenticate"
AUTHENTICATION_INFO: Final = "Authentication-Info"
RETRY_AFTER: Final = "Retry-After"

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    ``username`` is the user name or, for a client certificate, its CN; it is what a pointWrite
    records as ``who``. ``scheme`` says how the caller proved it (``scram``, ``plaintext``,
    ``bearer``, ``cert``). ``token_hash`` identifies the bearer token, so that ``close`` can
    revoke it without the token itself being kept anywhere.
    """

    username: str
    role: Role
    scheme: str
    token_hash: str | None = None


@dataclass(frozen=True, slots=True)
class AuthReply:
    """The answer for one request.

    ``proceed`` True: authenticated, run the op as ``identity``. Otherwise answer now with
    ``status`` and ``headers`` (a 200 here is a finished login carrying ``Authentication-Info``
    and the new ``identity``); ``message`` is safe to show in an error grid.
    """

    status: int
    headers: Headers = ()
    message: str = ""
    identity: Identity | None = None
    proceed: bool = False

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        key = name.lower()
        return next((v for n, v in self.headers if n.lower() == key), None)


def generic_challenge() -> str:
    """``SCRAM hash=SHA-256``: the challenge of a 401 that is not part of a handshake."""
    return format_auth_header(SCRAM, {"hash": "SHA-256"})


def reply_for_error(error: AuthError) -> AuthReply:
    """The reply for a refused request: 401 carries a challenge, 429 and 503 a Retry-After."""
    headers: Headers = ()
    if error.status == 401:
        headers = ((WWW_AUTHENTICATE, generic_challenge()),)
    elif isinstance(error, ThrottledError | HandshakeLimitError | TokenLimitError):
        headers = ((RETRY_AFTER, str(max(1, math.ceil(error.retry_after)))),)
    return AuthReply(error.status, headers, error.msg)
