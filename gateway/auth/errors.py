"""Errors of the authentication and user layer, each with the HTTP status it maps to.

::

    AuthError                       status  meaning
    ├── MalformedAuthError            400   an Authorization header or message that cannot be read
    │   ├── AuthHeaderError           400     header syntax (scheme, ``name=value`` list, length)
    │   ├── Base64Error               400     a value that is not base64 in either alphabet
    │   └── ScramMessageError         400     a SCRAM message that is not RFC 5802
    ├── UnsupportedSchemeError        401   no Authorization header, or a scheme not offered here
    ├── InvalidTokenError             401   a bearer token that is unknown, expired or revoked
    ├── HandshakeError                403   unknown, expired or replayed handshake token; a step
    │                                       out of order; a nonce or channel binding mismatch
    ├── AuthenticationFailed          403   bad proof, bad password, unknown or disabled user
    ├── ThrottledError                429   too many failed logins (``retry_after`` seconds)
    ├── HandshakeLimitError           503   the table of handshakes in progress is full
    └── TokenLimitError               503   the token cap is reached and the policy refuses

    UserError (ValueError)                  the users API maps these to 400 / 404 / 409
    ├── InvalidUsernameError                a name outside the allowed characters or length
    ├── InvalidPasswordError                an empty or over-long password
    ├── UnknownUserError                    no such user
    ├── UserExistsError                     the name is taken
    └── LastAdminError                      the change would leave no enabled admin

``status`` is a hint for the HTTP layer in the manner of h11's ``error_status_hint``; the messages
never contain a password, a key, a proof or a token. ``AuthenticationFailed`` has one message for
every cause so that a client cannot tell a bad password from an unknown user.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthError",
    "AuthHeaderError",
    "AuthenticationFailed",
    "Base64Error",
    "HandshakeError",
    "HandshakeLimitError",
    "InvalidPasswordError",
    "InvalidTokenError",
    "InvalidUsernameError",
    "LastAdminError",
    "MalformedAuthError",
    "ScramMessageError",
    "ThrottledError",
    "TokenLimitError",
    "UnknownUserError",
    "UnsupportedSchemeError",
    "UserError",
    "UserExistsError",
]


class AuthError(Exception):
    """Base of every authentication failure; ``status`` is the HTTP status to answer with."""

    status: ClassVar[int] = 401

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class MalformedAuthError(AuthError):
    """The request's authentication data cannot be read at all."""

    status = 400


class AuthHeaderError(MalformedAuthError):
    """An Authorization header that is not ``SCHEME name=value, ...``."""


class Base64Error(MalformedAuthError):
    """A value that is not base64 (standard or URL alphabet, padded or not)."""


class ScramMessageError(MalformedAuthError):
    """A client-first or client-final message that does not follow RFC 5802."""


class UnsupportedSchemeError(AuthError):
    """No credentials, or credentials in a scheme this server does not accept."""

    status = 401


class InvalidTokenError(AuthError):
    """A bearer token that is unknown, expired or revoked (the spec's 401, not Haxall's 403)."""

    status = 401


class HandshakeError(AuthError):
    """A handshake that cannot continue: the client must start again with HELLO."""

    status = 403


class AuthenticationFailed(AuthError):
    """The proof or password did not verify; the same for unknown and disabled users."""

    status = 403

    def __init__(self, username: str) -> None:
        super().__init__("authentication failed")
        self.username = username


class ThrottledError(AuthError):
    """Too many failed logins for this user or client address; retry after ``retry_after`` s."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed logins; try again later")
        self.retry_after = retry_after


class HandshakeLimitError(AuthError):
    """Every handshake slot is taken; the oldest frees up within ``retry_after`` s."""

    status = 503

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many logins in progress; try again later")
        self.retry_after = retry_after


class TokenLimitError(AuthError):
    """The token cap is reached and the policy refuses new logins rather than evicting."""

    status = 503

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many sessions; try again later")
        self.retry_after = retry_after


class UserError(ValueError):
    """Base of the errors about user records."""


class InvalidUsernameError(UserError):
    """A user name outside the allowed characters or length."""


class InvalidPasswordError(UserError):
    """A password that is empty or too long."""


class UnknownUserError(UserError):
    """No user of that name."""


class UserExistsError(UserError):
    """A user of that name exists already."""


class LastAdminError(UserError):
    """Deleting, demoting or disabling this user would leave no enabled admin."""
