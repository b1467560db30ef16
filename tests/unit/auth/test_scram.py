"""The SCRAM-SHA-256 server: RFC 7677's vector, full handshakes with two clients, every error."""

from __future__ import annotations

import base64
import contextlib
import itertools

import pytest
import scramp
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.errors import (
    AuthenticationFailed,
    AuthError,
    Base64Error,
    HandshakeError,
    HandshakeLimitError,
    ScramMessageError,
)
from gateway.auth.headers import b64decode_text, b64url_encode, parse_authorization
from gateway.auth.reply import AuthReply
from gateway.auth.scram import (
    DEFAULT_ITERATIONS,
    ScramCredentials,
    ScramExchange,
    ScramServer,
    ScramVerified,
)
from tests.unit.auth.scram_client import HandClient

ITER = 4096  # low for speed; the default stays at 100,000
SECRET = b"0123456789abcdef0123456789abcdef"

# RFC 7677 §3
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CNONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SNONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_CLIENT_FIRST = f"n,,n=user,r={RFC_CNONCE}"
RFC_SERVER_FIRST = f"r={RFC_CNONCE}{RFC_SNONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (
    f"c=biws,r={RFC_CNONCE}{RFC_SNONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


@pytest.fixture(scope="module")
def pencil() -> ScramCredentials:
    return ScramCredentials.derive("pencil", iterations=ITER)


def rfc_credentials() -> ScramCredentials:
    return ScramCredentials.derive("pencil", iterations=4096, salt=RFC_SALT)


def test_rfc7677_vector_on_the_exchange() -> None:
    exchange = ScramExchange("user", rfc_credentials(), RFC_SNONCE)
    assert exchange.receive_client_first(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert exchange.receive_client_final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL


def test_rfc7677_vector_from_the_hand_written_client() -> None:
    client = HandClient("user", "pencil", cnonce=RFC_CNONCE)
    assert client.client_first() == RFC_CLIENT_FIRST
    assert client.client_final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    assert client.verify_server_final(RFC_SERVER_FINAL)


def test_rfc7677_vector_wrong_password_fails() -> None:
    exchange = ScramExchange(
        "user", ScramCredentials.derive("pencils", salt=RFC_SALT, iterations=4096), RFC_SNONCE
    )
    exchange.receive_client_first(RFC_CLIENT_FIRST)
    with pytest.raises(AuthenticationFailed) as info:
        exchange.receive_client_final(RFC_CLIENT_FINAL)
    assert info.value.status == 403


# -- helpers driving the server the way the HTTP layer does -------------------------------------


def challenge(reply: AuthReply) -> dict[str, str]:
    assert reply.status == 401
    value = reply.header("WWW-Authenticate")
    assert value is not None
    header = parse_authorization(value)
    assert header.scheme == "SCRAM"
    return dict(header.params)


def hello(server: ScramServer, username: str, creds: ScramCredentials | None, now: float) -> str:
    params = challenge(server.hello(username, creds, now=now))
    assert params["hash"] == "SHA-256"
    assert set(params) == {"handshaketoken", "hash"}
    return params["handshaketoken"]


def server_first_of(reply: AuthReply | ScramVerified, token: str) -> str:
    assert isinstance(reply, AuthReply)
    params = challenge(reply)
    assert params["handshaketoken"] == token
    assert params["hash"] == "SHA-256"
    return b64decode_text(params["data"])


def data_of(header_value: str) -> str:
    return parse_authorization(header_value).require("data")


def new_server(**kw: float) -> ScramServer:
    return ScramServer(SECRET, fake_iterations=ITER, **kw)  # type: ignore[arg-type]


# -- full handshakes -----------------------------------------------------------------------------

VARIANTS = list(itertools.product([True, False], [True, False], [True, False], [True, False]))


@pytest.mark.parametrize(("gs2", "url", "padded", "newline"), VARIANTS)
def test_handshake_with_the_hand_written_client(
    pencil: ScramCredentials, gs2: bool, url: bool, padded: bool, newline: bool
) -> None:
    server = new_server()
    client = HandClient("user", "pencil", gs2=gs2, url=url, padded=padded, proof_newline=newline)
    token = hello(server, "user", pencil, now=0.0)
    server_first = server_first_of(
        server.receive(token, data_of(client.first(token)), now=1), token
    )
    assert server_first.startswith(f"r={client.cnonce}")
    verified = server.receive(token, data_of(client.final(server_first, token)), now=2)
    assert isinstance(verified, ScramVerified)
    assert verified.username == "user"
    assert client.verify_server_final(verified.server_final)
    assert server.in_progress(now=2) == 0


@pytest.mark.parametrize("gs2", [True, False])
def test_handshake_with_scramp_client(pencil: ScramCredentials, gs2: bool) -> None:
    server = new_server()
    client = scramp.ScramClient(["SCRAM-SHA-256"], "user", "pencil")
    token = hello(server, "user", pencil, now=0.0)
    client_first = client.get_client_first()
    if not gs2:
        client_first = client_first.removeprefix("n,,")
    reply = server.receive(token, b64url_encode(client_first), now=0.5)
    client.set_server_first(server_first_of(reply, token))
    verified = server.receive(token, b64url_encode(client.get_client_final()), now=1.0)
    assert isinstance(verified, ScramVerified)
    client.set_server_final(verified.server_final)  # raises if the server signature is wrong
    info = parse_authorization("X " + verified.authentication_info("T" * 43))
    assert info.params == {
        "authtoken": "T" * 43,
        "data": b64url_encode(verified.server_final),
        "hash": "SHA-256",
    }
    assert verified.authentication_info("tok").startswith("authToken=tok, data=")


def test_salt_is_standard_base64_and_tokens_and_nonces_alphanumeric(
    pencil: ScramCredentials,
) -> None:
    server = new_server()
    client = HandClient("user", "pencil")
    tokens = set()
    for i in range(20):
        token = hello(server, "user", pencil, now=i)
        assert token.isalnum() and token.isascii() and len(token) >= 32
        tokens.add(token)
        first = server_first_of(server.receive(token, data_of(client.first(token)), now=i), token)
        attrs = dict(a.split("=", 1) for a in first.split(","))
        snonce = attrs["r"].removeprefix(client.cnonce)
        assert snonce.isalnum() and snonce.isascii() and len(snonce) >= 32
        assert base64.b64decode(attrs["s"], validate=True) == pencil.salt
        assert attrs["i"] == str(ITER)
    assert len(tokens) == 20


# -- error paths ---------------------------------------------------------------------------------


def first_step(
    server: ScramServer, client: HandClient, creds: ScramCredentials | None, now: float = 0.0
) -> tuple[str, str]:
    token = hello(server, client.username, creds, now=now)
    first = server_first_of(server.receive(token, data_of(client.first(token)), now=now), token)
    return token, first


def test_bad_password_is_403_and_the_handshake_is_gone(pencil: ScramCredentials) -> None:
    server = new_server()
    client = HandClient("user", "wrong")
    token, first = first_step(server, client, pencil)
    with pytest.raises(AuthenticationFailed) as info:
        server.receive(token, data_of(client.final(first, token)), now=1)
    assert info.value.status == 403
    assert info.value.username == "user"
    assert str(info.value) == "authentication failed"
    assert server.handshake_user(token) is None


def test_replayed_handshake_token_is_403(pencil: ScramCredentials) -> None:
    server = new_server()
    client = HandClient("user", "pencil")
    token, first = first_step(server, client, pencil)
    final = data_of(client.final(first, token))
    assert isinstance(server.receive(token, final, now=1), ScramVerified)
    for data in (final, data_of(client.first(token))):
        with pytest.raises(HandshakeError) as info:
            server.receive(token, data, now=1)
        assert info.value.status == 403


def test_unknown_handshake_token_is_403() -> None:
    with pytest.raises(HandshakeError, match="start again with HELLO"):
        new_server().receive("NoSuchToken", b64url_encode("n,,n=user,r=abc"), now=0)


def test_expired_handshake_is_403(pencil: ScramCredentials) -> None:
    server = new_server(handshake_ttl=60.0)
    client = HandClient("user", "pencil")
    token, first = first_step(server, client, pencil, now=100.0)
    assert server.handshake_user(token) == "user"
    with pytest.raises(HandshakeError):
        server.receive(token, data_of(client.final(first, token)), now=160.0)
    assert server.handshake_user(token) is None
    # just inside the limit it works
    token, first = first_step(server, client, pencil, now=200.0)
    verified = server.receive(token, data_of(client.final(first, token)), now=259.9)
    assert isinstance(verified, ScramVerified)


def test_handshake_cap(pencil: ScramCredentials) -> None:
    server = new_server(max_handshakes=3, handshake_ttl=60.0)
    for t in (0.0, 10.0, 20.0):
        hello(server, "user", pencil, now=t)
    with pytest.raises(HandshakeLimitError) as info:
        server.hello("user", pencil, now=30.0)
    assert info.value.status == 503
    assert info.value.retry_after == pytest.approx(30.0)  # the first one expires at 60
    assert server.in_progress(now=59.0) == 3
    hello(server, "user", pencil, now=60.0)  # the first expired: a slot is free
    assert server.in_progress(now=60.0) == 3


def test_default_limits() -> None:
    server = ScramServer(SECRET)
    assert server.max_handshakes == 1000
    assert server.handshake_ttl == 60.0
    assert server.fake_iterations == DEFAULT_ITERATIONS >= 100_000


def _shape(server: ScramServer, username: str, creds: ScramCredentials | None) -> dict[str, str]:
    client = HandClient(username, "whatever")
    token, first = first_step(server, client, creds)
    attrs = dict(a.split("=", 1) for a in first.split(","))
    attrs["r"] = attrs["r"].removeprefix(client.cnonce)
    attrs["token"] = token
    return attrs


def test_unknown_user_challenge_looks_like_a_known_one(pencil: ScramCredentials) -> None:
    server = new_server()
    known = _shape(server, "user", pencil)
    ghost = _shape(server, "ghost", None)
    ghost_again = _shape(server, "ghost", None)
    other = _shape(server, "phantom", None)
    for shape in (ghost, ghost_again, other):
        assert len(shape["s"]) == len(known["s"])  # 32-byte salt, padded base64
        assert shape["i"] == known["i"]
        assert len(shape["r"]) == len(known["r"]) and shape["r"].isalnum()
        assert len(shape["token"]) == len(known["token"]) and shape["token"].isalnum()
    assert ghost["s"] == ghost_again["s"]  # stable per name
    assert ghost["s"] != other["s"]
    # ...and across a restart with the same secret, but not with another secret
    assert _shape(new_server(), "ghost", None)["s"] == ghost["s"]
    assert (
        _shape(ScramServer(b"another secret 16", fake_iterations=ITER), "ghost", None)["s"]
        != ghost["s"]
    )


def test_unknown_user_fails_at_the_proof_like_a_bad_password(pencil: ScramCredentials) -> None:
    server = new_server()
    errors = []
    for username, creds, password in (("ghost", None, "pencil"), ("user", pencil, "nope")):
        client = HandClient(username, password)
        token, first = first_step(server, client, creds)
        with pytest.raises(AuthenticationFailed) as info:
            server.receive(token, data_of(client.final(first, token)), now=1)
        errors.append((type(info.value), info.value.status, str(info.value)))
    assert errors[0] == errors[1]


def test_user_name_must_match_the_hello(pencil: ScramCredentials) -> None:
    server = new_server()
    token = hello(server, "user", pencil, now=0)
    with pytest.raises(HandshakeError, match="differs"):
        server.receive(token, data_of(HandClient("admin", "x").first(token)), now=0)
    assert server.handshake_user(token) is None


def test_nonce_mismatch_is_403(pencil: ScramCredentials) -> None:
    server = new_server()
    client = HandClient("user", "pencil")
    token, first = first_step(server, client, pencil)
    forged = first.replace(",s=", "X,s=", 1)  # the client signs a nonce the server never sent
    with pytest.raises(HandshakeError, match="nonce"):
        server.receive(token, data_of(client.final(forged, token)), now=1)


def test_channel_binding_is_refused(pencil: ScramCredentials) -> None:
    server = new_server()
    token = hello(server, "user", pencil, now=0)
    data = b64url_encode("p=tls-unique,,n=user,r=abc")
    with pytest.raises(HandshakeError, match="channel binding"):
        server.receive(token, data, now=0)


def test_wrong_channel_binding_data_in_client_final(pencil: ScramCredentials) -> None:
    server = new_server()
    client = HandClient("user", "pencil")
    token, first = first_step(server, client, pencil)
    final = client.client_final(first).replace("c=biws", "c=eSws", 1)  # "y,," instead of "n,,"
    with pytest.raises(HandshakeError):
        server.receive(token, b64url_encode(final), now=1)


MALFORMED_FIRST = [
    ("not base64 !", Base64Error),
    (b64url_encode(b"\xff\xfe"), Base64Error),
    (b64url_encode("hello"), ScramMessageError),
    (b64url_encode("n,,r=abc"), ScramMessageError),
    (b64url_encode("n,,n=user"), ScramMessageError),
    (b64url_encode("n,,n=user,r=a,b"), ScramMessageError),
    (b64url_encode("n,,n=user,r=ab\x00c"), ScramMessageError),
    (b64url_encode("n,a=admin,n=user,r=abc"), ScramMessageError),
    (b64url_encode("n,,m=ext,n=user,r=abc"), ScramMessageError),
    (b64url_encode("x,,n=user,r=abc"), ScramMessageError),
    (b64url_encode("n,,n=us=er,r=abc"), ScramMessageError),
]


@pytest.mark.parametrize(("data", "error"), MALFORMED_FIRST)
def test_malformed_client_first(
    pencil: ScramCredentials, data: str, error: type[AuthError]
) -> None:
    server = new_server()
    token = hello(server, "user", pencil, now=0)
    with pytest.raises(error) as info:
        server.receive(token, data, now=0)
    assert info.value.status == 400
    assert server.handshake_user(token) is None  # no second try on the same handshake


MALFORMED_FINAL = [
    "c=biws",
    "c=biws,p=AAAA",
    "r=xyz,c=biws,p=AAAA",
    "c=biws,r={nonce},p=@@@",
    "c=biws,r={nonce},p=AAAA",  # a proof of the wrong length
    "c=!!!!,r={nonce},p=AAAA",
]


@pytest.mark.parametrize("template", MALFORMED_FINAL)
def test_malformed_client_final(pencil: ScramCredentials, template: str) -> None:
    server = new_server()
    client = HandClient("user", "pencil")
    token, first = first_step(server, client, pencil)
    nonce = first.split(",")[0][2:]
    with pytest.raises(AuthError) as info:
        server.receive(token, b64url_encode(template.format(nonce=nonce)), now=1)
    assert info.value.status in (400, 403)
    assert server.handshake_user(token) is None


def test_check_password_for_plaintext(pencil: ScramCredentials) -> None:
    server = new_server()
    assert server.check_password("user", pencil, "pencil")
    assert not server.check_password("user", pencil, "Pencil")
    assert not server.check_password("ghost", None, "pencil")


def _fuzz_server() -> tuple[ScramServer, ScramCredentials]:
    creds = ScramCredentials(b"s" * 16, ITER, b"k" * 32, b"v" * 32)
    return ScramServer(SECRET, fake_iterations=ITER), creds


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120), st.booleans())
def test_any_client_first_raises_only_auth_errors(message: str, encode: bool) -> None:
    server, creds = _fuzz_server()
    token = hello(server, "user", creds, now=0)
    with contextlib.suppress(AuthError):
        server.receive(token, b64url_encode(message) if encode else message, now=0)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=120),
        st.builds("c=biws,r=abc{}{}".format, st.text(max_size=40), st.text(max_size=60)),
        st.from_regex(r"[A-Za-z0-9,=+/]{1,60}", fullmatch=True),
    ),
    st.booleans(),
)
def test_any_client_final_raises_only_auth_errors(message: str, encode: bool) -> None:
    server, creds = _fuzz_server()
    token = hello(server, "user", creds, now=0)
    server_first_of(server.receive(token, b64url_encode("n,,n=user,r=abc"), now=0), token)
    with contextlib.suppress(AuthError):
        server.receive(token, b64url_encode(message) if encode else message, now=0)
    assert server.handshake_user(token) is None


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.just("biws"), st.text(max_size=12)),
    st.one_of(st.just(""), st.text(max_size=30)),
    st.one_of(st.from_regex(r"[A-Za-z0-9+/=_-]{0,60}", fullmatch=True), st.text(max_size=60)),
)
def test_client_final_with_the_right_nonce_raises_only_auth_errors(
    binding: str, extra: str, proof: str
) -> None:
    # gets past the nonce check, so scramp's own parsing of the client-final is exercised
    server, creds = _fuzz_server()
    token = hello(server, "user", creds, now=0)
    first = server_first_of(server.receive(token, b64url_encode("n,,n=user,r=abc"), now=0), token)
    nonce = first.split(",")[0][2:]
    message = f"c={binding},r={nonce}{extra},p={proof}"
    with pytest.raises(AuthError):  # the keys are not the password's: never a success
        server.receive(token, b64url_encode(message), now=0)


# -- credentials ---------------------------------------------------------------------------------


def test_credentials_text_form_round_trips(pencil: ScramCredentials) -> None:
    text = pencil.to_text()
    assert text.startswith("SCRAM-SHA-256$4096:")
    assert ScramCredentials.from_text(text) == pencil
    for bad in (
        "",
        "SCRAM-SHA-1$4096:AA$AA:AA",
        text.replace("$", "#"),
        text[:-3] + "!!=",
        "SCRAM-SHA-256$x:AA$AA:AA",
    ):
        with pytest.raises(ValueError, match="not a SCRAM-SHA-256 verifier"):
            ScramCredentials.from_text(bad)


def test_credentials_never_show_keys_or_password(pencil: ScramCredentials) -> None:
    text = repr(pencil)
    assert "stored_key" not in text and "server_key" not in text
    assert "pencil" not in text
    assert pencil.verify_password("pencil")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"salt": b"short", "iterations": ITER, "stored_key": b"k" * 32, "server_key": b"k" * 32},
        {"salt": b"s" * 16, "iterations": 1000, "stored_key": b"k" * 32, "server_key": b"k" * 32},
        {"salt": b"s" * 16, "iterations": ITER, "stored_key": b"k" * 31, "server_key": b"k" * 32},
    ],
)
def test_credentials_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="SCRAM"):
        ScramCredentials(**kwargs)  # type: ignore[arg-type]


def test_derive_uses_fresh_salts_and_the_requested_iterations() -> None:
    a = ScramCredentials.derive("pw", iterations=ITER)
    b = ScramCredentials.derive("pw", iterations=ITER)
    assert a.salt != b.salt and len(a.salt) == 32
    assert a.iterations == ITER
    with pytest.raises(ValueError, match="iterations"):
        ScramCredentials.derive("pw", iterations=100)


def test_server_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="secret"):
        ScramServer(b"short")
    with pytest.raises(ValueError, match="positive"):
        ScramServer(SECRET, max_handshakes=0)
