"""Haystack authentication headers: ``SCHEME name=value, name=value`` and its base64 values.

The Haystack auth spec restricts ``Authorization``, ``WWW-Authenticate`` and
``Authentication-Info`` to a scheme followed by a comma-separated list of ``name=value`` pairs
(RFC 7230 tokens, no quoted strings). Real clients bend that in small ways, so the reader is
lenient where it is safe and strict where ambiguity could be dangerous:

- the scheme and the parameter names are case-insensitive (pyhaystack sends
  ``scram handshaketoken=...``; Haxall's client sends ``bearer authToken=...``);
- ``Bearer <token>`` (haystack-nclient) is read as ``BEARER authToken=<token>``; other schemes'
  ``SCHEME <token68>`` (``Basic``) is read too, so that it can be refused as a scheme (401)
  rather than as bad syntax (400);
- values are any visible ASCII except ``,`` (phable's standard-alphabet base64 has ``/``, ``+``
  and ``=``), a duplicate parameter name is an error, empty list elements are skipped;
- headers longer than :data:`MAX_HEADER_LENGTH` are refused before any other work.

The writer puts parameters in alphabetical order, separated by ``", "``, because pyhaystack
reads them by position and phable's ``authToken=[^,]+`` must not hit the last one.

Base64 values are read in either alphabet, padded or not, with whitespace (pyhaystack's trailing
``\\n``) removed, and written as base64url without padding, as the spec says.

Every malformed input raises an :class:`~gateway.auth.errors.MalformedAuthError` subclass and
nothing else.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.auth.errors import AuthHeaderError, Base64Error

__all__ = [
    "BEARER",
    "HELLO",
    "MAX_HEADER_LENGTH",
    "MAX_NAME_LENGTH",
    "PLAINTEXT",
    "SCRAM",
    "X_PLAINTEXT",
    "AuthHeader",
    "b64decode_lenient",
    "b64decode_text",
    "b64url_encode",
    "format_auth_header",
    "format_auth_params",
    "hello_username",
    "parse_authorization",
    "plaintext_credentials",
]

HELLO: Final = "HELLO"
SCRAM: Final = "SCRAM"
BEARER: Final = "BEARER"
PLAINTEXT: Final = "PLAINTEXT"
X_PLAINTEXT: Final = "X-PLAINTEXT"

#: Longest header accepted; a SCRAM client-final with a SHA-512 proof is well under 1 KiB.
MAX_HEADER_LENGTH: Final = 4096
#: Longest user name or PLAINTEXT password read from a header, in characters.
MAX_NAME_LENGTH: Final = 1024

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
# Visible ASCII except the list separator; '=' is allowed so that padded base64 survives.
_VALUE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_SPACE = " \t"

_B64_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
_URL_TO_STD: Final = str.maketrans("-_", "+/")


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """A parsed header: the scheme upper-cased and the parameters keyed by lower-cased name.

    ``token68`` holds the single value of other schemes' ``SCHEME <token68>`` form (``Basic``);
    Haystack schemes never use it, except ``Bearer <token>``, read as ``authToken``.
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (any case), or None."""
        return self.params.get(name.lower())

    def require(self, name: str) -> str:
        """The value of parameter ``name``; a missing one is an :class:`AuthHeaderError`."""
        value = self.params.get(name.lower())
        if value is None:
            raise AuthHeaderError(f"{self.scheme} header has no {name} parameter")
        return value


def parse_authorization(value: str) -> AuthHeader:
    """Parse an ``Authorization`` header value (also reads the server's headers, for tests)."""
    if len(value) > MAX_HEADER_LENGTH:
        raise AuthHeaderError(f"header longer than {MAX_HEADER_LENGTH} characters")
    text = value.strip(_SPACE)
    if not text.isascii() or not all(c == "\t" or " " <= c <= "~" for c in text):
        raise AuthHeaderError("header has characters other than visible ASCII and spaces")
    scheme, _, rest = text.replace("\t", " ").partition(" ")
    if not _TOKEN.fullmatch(scheme):
        raise AuthHeaderError("header does not start with a scheme")
    scheme = scheme.upper()
    rest = rest.strip(" ")
    if not rest:
        return AuthHeader(scheme, {})
    if _TOKEN68.fullmatch(rest):
        # A ``name=value`` never matches: token68 allows '=' only as trailing padding.
        if scheme == BEARER:  # ``Bearer <token>`` as haystack-nclient sends it
            return AuthHeader(scheme, {"authtoken": rest})
        return AuthHeader(scheme, {}, token68=rest)  # e.g. Basic: read, then refused with 401
    return AuthHeader(scheme, _parse_params(rest))


def _parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in text.split(","):
        item = part.strip(" ")
        if not item:
            continue  # RFC 7230 #rule: empty list elements are allowed
        name, eq, val = item.partition("=")
        name = name.rstrip(" ")
        val = val.lstrip(" ")
        if not eq or not _TOKEN.fullmatch(name):
            raise AuthHeaderError("header parameter is not name=value")
        if not _VALUE.fullmatch(val):
            raise AuthHeaderError(f"header parameter {name} has an empty or invalid value")
        key = name.lower()
        if key in params:
            raise AuthHeaderError(f"header parameter {name} appears twice")
        params[key] = val
    if not params:
        raise AuthHeaderError("header has a separator but no parameters")
    return params


def format_auth_header(scheme: str, params: Mapping[str, str] | None = None) -> str:
    """``SCHEME a=1, b=2``: parameters sorted by name, as Haxall writes them."""
    if not _TOKEN.fullmatch(scheme):
        raise ValueError(f"not a scheme token: {scheme!r}")
    return f"{scheme} {format_auth_params(params)}" if params else scheme


def format_auth_params(params: Mapping[str, str]) -> str:
    """``a=1, b=2`` sorted by name (``Authentication-Info`` has parameters but no scheme)."""
    items = []
    for name in sorted(params, key=str.lower):
        val = params[name]
        # A value of only '=' would read back as one token68 ("a==") instead of a parameter.
        if not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(val) or not val.strip("="):
            raise ValueError(f"not a header parameter: {name}={val!r}")
        items.append(f"{name}={val}")
    return ", ".join(items)


def hello_username(header: AuthHeader) -> str:
    """The user name of ``HELLO username=<base64url(utf8)>``."""
    return _decoded_text(header, "username")


def plaintext_credentials(header: AuthHeader) -> tuple[str, str]:
    """User name and password of ``PLAINTEXT username=<b64>, password=<b64>``."""
    return _decoded_text(header, "username"), _decoded_text(header, "password")


def _decoded_text(header: AuthHeader, name: str) -> str:
    text = b64decode_text(header.require(name))
    if not text:
        raise AuthHeaderError(f"{header.scheme} header has an empty {name}")
    if len(text) > MAX_NAME_LENGTH:
        raise AuthHeaderError(f"{header.scheme} header has a {name} over {MAX_NAME_LENGTH} chars")
    return text


def b64decode_lenient(text: str) -> bytes:
    """Decode base64 in either alphabet, padded or not, ignoring whitespace."""
    if len(text) > MAX_HEADER_LENGTH:
        raise Base64Error("base64 value too long")
    cleaned = "".join(text.split())
    data = cleaned.rstrip("=")
    if len(cleaned) - len(data) > 2:
        raise Base64Error("base64 value has too much padding")
    if not all(c in _B64_CHARS for c in data):
        raise Base64Error("base64 value has characters outside both alphabets")
    if len(data) % 4 == 1:
        raise Base64Error("base64 value has a truncated group")
    padded = data.translate(_URL_TO_STD) + "=" * (-len(data) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error as exc:  # unreachable after the checks above; kept as a guard
        raise Base64Error("base64 value cannot be decoded") from exc


def b64decode_text(text: str) -> str:
    """Decode a base64 value that carries UTF-8 text (a user name, a SCRAM message)."""
    raw = b64decode_lenient(text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Base64Error("base64 value is not UTF-8 text") from exc


def b64url_encode(data: bytes | str) -> str:
    """base64url without padding, the spec's encoding for header values."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
