"""Haystack auth headers: parsing, writing, lenient base64; fuzzed for stray exceptions."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.errors import AuthError, AuthHeaderError, Base64Error, MalformedAuthError
from gateway.auth.headers import (
    MAX_HEADER_LENGTH,
    AuthHeader,
    b64decode_lenient,
    b64decode_text,
    b64url_encode,
    format_auth_header,
    format_auth_params,
    hello_username,
    parse_authorization,
    plaintext_credentials,
)

PARSED = [
    ("HELLO username=dXNlcg", "HELLO", {"username": "dXNlcg"}),
    ("hello username=dXNlcg", "HELLO", {"username": "dXNlcg"}),
    (
        "SCRAM data=bj11c2VyLHI9YWJj, handshakeToken=abc123",
        "SCRAM",
        {"data": "bj11c2VyLHI9YWJj", "handshaketoken": "abc123"},
    ),
    # pyhaystack: lower case, no space after the comma
    (
        "scram handshaketoken=abc,data=YQ==",
        "SCRAM",
        {"handshaketoken": "abc", "data": "YQ=="},
    ),
    ("BEARER authToken=t0k3n", "BEARER", {"authtoken": "t0k3n"}),
    ("bearer authToken=t0k3n", "BEARER", {"authtoken": "t0k3n"}),
    ("Bearer t0k3n", "BEARER", {"authtoken": "t0k3n"}),
    ("Bearer abc/+de==", "BEARER", {"authtoken": "abc/+de=="}),
    # phable: standard alphabet with '/' and '+'
    ("SCRAM data=a/b+c=, handshakeToken=x", "SCRAM", {"data": "a/b+c=", "handshaketoken": "x"}),
    ("  PLAINTEXT  username=YQ , password=Yg  ", "PLAINTEXT", {"username": "YQ", "password": "Yg"}),
    ("x-plaintext username=YQ,password=Yg", "X-PLAINTEXT", {"username": "YQ", "password": "Yg"}),
    ("SCRAM\thash=SHA-256", "SCRAM", {"hash": "SHA-256"}),
    ("SCRAM hash=SHA-256,", "SCRAM", {"hash": "SHA-256"}),  # empty list element
    ("PLAINTEXT", "PLAINTEXT", {}),
    ("Basic YWRtaW46czNjcmV0", "BASIC", {}),
    ("HELLO YWRtaW4=", "HELLO", {}),
]


@pytest.mark.parametrize(("text", "scheme", "params"), PARSED)
def test_parse(text: str, scheme: str, params: dict[str, str]) -> None:
    header = parse_authorization(text)
    assert header.scheme == scheme
    assert dict(header.params) == params


def test_token68_of_other_schemes() -> None:
    assert parse_authorization("Basic YWRtaW46czNjcmV0").token68 == "YWRtaW46czNjcmV0"
    assert parse_authorization("Bearer abc").token68 is None
    header = parse_authorization("SCRAM data=")  # token68 with padding, not a parameter
    assert header.token68 == "data=" and header.param("data") is None
    with pytest.raises(AuthHeaderError):
        header.require("data")


def test_param_lookup_ignores_case() -> None:
    header = parse_authorization("scram handshaketoken=abc,data=YQ")
    assert header.param("handshakeToken") == "abc"
    assert header.require("HANDSHAKETOKEN") == "abc"
    assert header.param("hash") is None
    with pytest.raises(AuthHeaderError, match="no hash parameter"):
        header.require("hash")


MALFORMED = [
    "",
    "   ",
    "=abc",
    "SCRAM =abc",
    "SCRAM data=a b",
    "SCRAM data=a, data=b",
    "SCRAM data=a, DATA=b",
    'SCRAM data="quoted, string"',
    "SCRAM ,",
    "SC(RAM data=a",
    "SCRAM da ta=a",
    "HELLO username=é",
    "HELLO username=a\r\nX-Injected: 1",
    "HELLO username=a\x00",
    "BEARER authToken=a=b=c d",
    "SCRAM data=" + "a" * MAX_HEADER_LENGTH,
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_headers_raise_the_header_error(text: str) -> None:
    with pytest.raises(AuthHeaderError) as info:
        parse_authorization(text)
    assert info.value.status == 400


def test_format_sorts_params_alphabetically_with_comma_space() -> None:
    # haystack.md §3.3 rule 1: the orders pyhaystack and phable depend on.
    assert (
        format_auth_header("SCRAM", {"hash": "SHA-256", "handshakeToken": "t"})
        == "SCRAM handshakeToken=t, hash=SHA-256"
    )
    assert (
        format_auth_header("SCRAM", {"hash": "SHA-256", "handshakeToken": "t", "data": "d"})
        == "SCRAM data=d, handshakeToken=t, hash=SHA-256"
    )
    assert (
        format_auth_params({"hash": "SHA-256", "data": "d", "authToken": "a"})
        == "authToken=a, data=d, hash=SHA-256"
    )
    assert format_auth_header("PLAINTEXT") == "PLAINTEXT"


@pytest.mark.parametrize(
    ("scheme", "params"),
    [
        ("SC RAM", {}),
        ("SCRAM", {"da ta": "x"}),
        ("SCRAM", {"data": "a,b"}),
        ("SCRAM", {"a": ""}),
        ("SCRAM", {"a": "=="}),
    ],
)
def test_format_refuses_what_it_could_not_read_back(scheme: str, params: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="not a"):
        format_auth_header(scheme, params)


_param_names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}", fullmatch=True)
_param_values = st.from_regex(r"[A-Za-z0-9+/=_.-]{1,30}", fullmatch=True).filter(
    lambda v: v.strip("=")
)


@given(
    st.sampled_from(["HELLO", "SCRAM", "BEARER", "PLAINTEXT"]),
    st.dictionaries(_param_names, _param_values, min_size=1, max_size=5),
)
def test_format_then_parse_round_trips(scheme: str, params: dict[str, str]) -> None:
    lowered = {k.lower(): v for k, v in params.items()}
    if len(lowered) != len(params):
        return  # two names differing only by case: not a valid header
    header = parse_authorization(format_auth_header(scheme, params))
    assert header == AuthHeader(scheme, lowered)


B64_CASES = [
    ("YWI+Pz8/", b"ab>???"),  # standard alphabet
    ("YWI-Pz8_", b"ab>???"),  # URL alphabet
    ("YQ==", b"a"),
    ("YQ", b"a"),  # unpadded
    ("YWI=", b"ab"),
    ("YWI", b"ab"),
    ("YW\nI=\n", b"ab"),  # whitespace and pyhaystack's trailing newline
    (" YWJj ", b"abc"),
    ("", b""),
]


@pytest.mark.parametrize(("text", "raw"), B64_CASES)
def test_lenient_base64(text: str, raw: bytes) -> None:
    assert b64decode_lenient(text) == raw


@pytest.mark.parametrize("text", ["Y", "YQ===", "Y=Q=", "YQ!=", "YQé", "Y\x00Q", "a" * 5000])
def test_bad_base64(text: str) -> None:
    with pytest.raises(Base64Error):
        b64decode_lenient(text)


def test_b64url_encode_is_unpadded_url_alphabet() -> None:
    assert b64url_encode(b"ab>???") == "YWI-Pz8_"
    assert b64url_encode("a") == "YQ"
    assert b64url_encode("ü") == "w7w"


@given(st.binary(max_size=200), st.booleans(), st.booleans())
def test_lenient_decoder_reads_every_encoding(raw: bytes, url: bool, padded: bool) -> None:
    text = (base64.urlsafe_b64encode if url else base64.b64encode)(raw).decode()
    assert b64decode_lenient(text if padded else text.rstrip("=")) == raw


def test_text_values() -> None:
    assert hello_username(parse_authorization("HELLO username=" + b64url_encode("jürgen"))) == (
        "jürgen"
    )
    header = parse_authorization(
        f"PLAINTEXT username={b64url_encode('bob')}, password={b64url_encode('p w,d=')}"
    )
    assert plaintext_credentials(header) == ("bob", "p w,d=")
    with pytest.raises(Base64Error, match="UTF-8"):
        b64decode_text(base64.b64encode(b"\xff\xfe").decode())
    with pytest.raises(AuthHeaderError, match="empty username"):
        hello_username(AuthHeader("HELLO", {"username": "="}))
    with pytest.raises(AuthHeaderError, match="no username"):
        hello_username(parse_authorization("HELLO"))
    with pytest.raises(AuthHeaderError, match="over 1024"):
        hello_username(AuthHeader("HELLO", {"username": b64url_encode("a" * 1025)}))


@given(st.text(max_size=300))
def test_parser_raises_only_its_own_errors(text: str) -> None:
    try:
        header = parse_authorization(text)
    except MalformedAuthError:
        return
    assert header.scheme == header.scheme.upper()
    for name in ("username", "password"):
        with contextlib.suppress(MalformedAuthError):
            b64decode_text(header.params.get(name, ""))


_header_like = st.builds(
    lambda scheme, parts, sep: scheme + " " + sep.join(parts),
    st.sampled_from(["HELLO", "scram", "Bearer", "PLAINTEXT", "x"]),
    st.lists(
        st.builds(
            lambda n, v: f"{n}={v}",
            st.sampled_from(["username", "data", "handshakeToken", "authToken", "", "a b"]),
            st.text(st.characters(codec="ascii"), max_size=20),
        ),
        max_size=4,
    ),
    st.sampled_from([", ", ",", " , ", ",,"]),
)


@given(_header_like)
def test_header_like_inputs_raise_only_auth_errors(text: str) -> None:
    try:
        header = parse_authorization(text)
        hello_username(header)
        plaintext_credentials(header)
    except AuthError as exc:
        assert isinstance(exc, MalformedAuthError)
