"""AuthService: the whole decision per request, driven like the HTTP middleware will drive it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth.authenticators import CertAuthenticator, SimpleAuthenticator
from gateway.auth.headers import b64decode_text, b64url_encode, parse_authorization
from gateway.auth.reply import AuthReply
from gateway.auth.roles import Role
from gateway.auth.scram import ScramCredentials, ScramServer
from gateway.auth.service import AuthService
from gateway.auth.throttle import LoginThrottle, ThrottlePolicy
from gateway.auth.tokens import BearerTokens, MemoryTokenStore, TokenPolicy
from tests.unit.auth.scram_client import HandClient

ITER = 4096
SECRET = b"service-test-secret-0123456789ab"
USERS = {"admin": "s3cret", "viewer": "readonly"}
ROLES = {"admin": Role.ADMIN, "viewer": Role.VIEWER}
AUTH = SimpleAuthenticator(USERS, role=ROLES, iterations=ITER)


def make_service(**kw: object) -> AuthService:
    options: dict[str, object] = {
        "scram": ScramServer(SECRET, fake_iterations=ITER),
        "tokens": BearerTokens(MemoryTokenStore()),
    }
    options.update(kw)
    return AuthService(AUTH, **options)  # type: ignore[arg-type]


def params(reply: AuthReply, header: str) -> dict[str, str]:
    value = reply.header(header)
    assert value is not None, reply
    return dict(
        parse_authorization("X " + value if header == "Authentication-Info" else value).params
    )


async def login(
    service: AuthService, client: HandClient, *, now: float = 0.0, address: str = "10.0.0.1"
) -> AuthReply:
    """HELLO, client-first, client-final; returns the last reply."""
    hello = await service.authenticate(client.hello(), now=now, client=address)
    assert hello.status == 401 and not hello.proceed
    token = params(hello, "WWW-Authenticate")["handshaketoken"]
    first = await service.authenticate(client.first(token), now=now, client=address)
    assert first.status == 401, first
    challenge = params(first, "WWW-Authenticate")
    assert challenge["handshaketoken"] == token and challenge["hash"] == "SHA-256"
    server_first = b64decode_text(challenge["data"])
    return await service.authenticate(client.final(server_first, token), now=now, client=address)


async def test_full_login_then_bearer_then_close() -> None:
    service = make_service()
    client = HandClient("admin", "s3cret")
    reply = await login(service, client)
    assert reply.status == 200 and not reply.proceed
    assert reply.identity is not None and reply.identity.role is Role.ADMIN
    raw = reply.header("Authentication-Info")
    assert raw is not None and raw.startswith("authToken=")  # phable: authToken is not last
    info = params(reply, "Authentication-Info")
    assert info["hash"] == "SHA-256"
    assert client.verify_server_final(b64decode_text(info["data"]))
    token = info["authtoken"]
    for header in (f"BEARER authToken={token}", f"Bearer {token}", f"bearer authtoken={token}"):
        ok = await service.authenticate(header, now=1.0)
        assert ok.proceed and ok.status == 200
        assert ok.identity is not None
        assert (ok.identity.username, ok.identity.role, ok.identity.scheme) == (
            "admin",
            Role.ADMIN,
            "bearer",
        )
    assert ok.identity is not None
    assert await service.logout(ok.identity)
    gone = await service.authenticate(f"BEARER authToken={token}", now=2.0)
    assert gone.status == 401 and not gone.proceed
    assert gone.header("WWW-Authenticate") == "SCRAM hash=SHA-256"


async def test_pyhaystack_style_client() -> None:
    # no gs2 header, lower-case scheme and names, standard alphabet, proof ending in a newline
    client = HandClient(
        "viewer",
        "readonly",
        gs2=False,
        url=False,
        padded=True,
        proof_newline=True,
        lower_case=True,
    )
    reply = await login(make_service(), client)
    assert reply.status == 200
    assert reply.identity is not None and reply.identity.role is Role.VIEWER


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("", 401),
        ("Basic YWRtaW46czNjcmV0", 401),
        ("Digest username=admin", 401),
        ("PLAINTEXT username=YWRtaW4, password=czNjcmV0", 401),  # not enabled
        ("HELLO", 400),
        ("HELLO username=!!!", 400),
        ("HELLO user=YWRtaW4", 400),
        ("SCRAM data=abc", 400),
        ("SCRAM data", 400),
        ("SCRAM data=", 400),
        ("SCRAM handshakeToken=abc", 400),
        ("SCRAM data=YWJj, handshakeToken=unknown", 403),
        ("BEARER", 400),
        ("BEARER authToken=" + "A" * 43, 401),
        ("Bearer not-a-token!", 400),
        ("SCRAM data=a, data=b", 400),
        ("\x00", 400),
    ],
)
async def test_refusals(header: str | None, status: int) -> None:
    reply = await make_service().authenticate(header, now=0.0)
    assert reply.status == status
    assert not reply.proceed and reply.identity is None
    assert reply.message
    if status == 401:
        assert reply.header("WWW-Authenticate") == "SCRAM hash=SHA-256"


async def test_bad_password_and_unknown_user_are_the_same_403() -> None:
    service = make_service()
    bad = await login(service, HandClient("admin", "wrong"))
    ghost = await login(service, HandClient("ghost", "s3cret"))
    assert (bad.status, bad.headers, bad.message) == (ghost.status, ghost.headers, ghost.message)
    assert bad.status == 403


async def test_failed_logins_are_throttled_with_retry_after() -> None:
    policy = ThrottlePolicy(user_free_failures=2, base_delay=5.0)
    service = make_service(throttle=LoginThrottle(policy))
    for _ in range(3):
        assert (await login(service, HandClient("admin", "guess"), now=100.0)).status == 403
    hello = await service.authenticate(HandClient("admin", "s3cret").hello(), now=101.0)
    assert hello.status == 429
    assert hello.header("Retry-After") == "4"
    # another user from another address is not affected
    other = await login(service, HandClient("viewer", "readonly"), now=101.0, address="10.0.0.2")
    assert other.status == 200
    # the lock ends, a good login clears the user's record
    assert (await login(service, HandClient("admin", "s3cret"), now=105.0)).status == 200
    assert (await login(service, HandClient("admin", "guess"), now=106.0)).status == 403


async def test_throttle_applies_to_handshakes_opened_before_the_lock() -> None:
    policy = ThrottlePolicy(user_free_failures=0, base_delay=60.0)
    service = make_service(throttle=LoginThrottle(policy))
    client = HandClient("admin", "s3cret")
    hello = await service.authenticate(client.hello(), now=0.0)
    token = params(hello, "WWW-Authenticate")["handshaketoken"]
    assert (await login(service, HandClient("admin", "guess"), now=1.0)).status == 403
    first = await service.authenticate(client.first(token), now=2.0)
    assert first.status == 429
    assert service.scram.handshake_user(token) is None


async def test_handshake_cap_answers_503_with_retry_after() -> None:
    service = make_service(scram=ScramServer(SECRET, fake_iterations=ITER, max_handshakes=2))
    client = HandClient("admin", "s3cret")
    for _ in range(2):
        assert (await service.authenticate(client.hello(), now=0.0)).status == 401
    full = await service.authenticate(client.hello(), now=10.0)
    assert full.status == 503
    assert full.header("Retry-After") == "50"


async def test_expired_token_is_401() -> None:
    tokens = BearerTokens(MemoryTokenStore(), TokenPolicy(lifetime=60.0, sliding=False))
    service = make_service(tokens=tokens)
    reply = await login(service, HandClient("viewer", "readonly"), now=0.0)
    token = params(reply, "Authentication-Info")["authtoken"]
    assert (await service.authenticate(f"BEARER authToken={token}", now=59.0)).proceed
    assert (await service.authenticate(f"BEARER authToken={token}", now=60.0)).status == 401


def plaintext(user: str, password: str, scheme: str = "PLAINTEXT") -> str:
    return f"{scheme} password={b64url_encode(password)}, username={b64url_encode(user)}"


async def test_plaintext_only_when_enabled_and_over_tls() -> None:
    calls: list[int] = []

    async def run_sync(fn: Callable[[], bool]) -> bool:
        calls.append(1)
        return fn()

    off = make_service()
    assert (await off.authenticate(plaintext("admin", "s3cret"), now=0.0, tls=True)).status == 401
    on = make_service(allow_plaintext=True, run_sync=run_sync)
    assert (await on.authenticate(plaintext("admin", "s3cret"), now=0.0, tls=False)).status == 401
    assert not calls
    reply = await on.authenticate(plaintext("admin", "s3cret"), now=0.0, tls=True)
    assert reply.status == 200 and calls == [1]
    assert reply.identity is not None and reply.identity.scheme == "plaintext"
    info = params(reply, "Authentication-Info")
    assert set(info) == {"authtoken"}
    bearer = await on.authenticate(f"BEARER authToken={info['authtoken']}", now=1.0)
    assert bearer.proceed
    for bad in (plaintext("admin", "nope"), plaintext("ghost", "s3cret", "x-plaintext")):
        refused = await on.authenticate(bad, now=2.0, tls=True)
        assert refused.status == 403 and refused.message == "authentication failed"


async def test_client_certificates() -> None:
    certs = CertAuthenticator(["device-01"], roles={"bms": Role.OPERATOR})
    service = make_service(certificates=certs)
    device = await service.authenticate(None, now=0.0, peer_cn="device-01")
    assert device.proceed and device.identity is not None
    assert (device.identity.username, device.identity.role) == ("device-01", Role.VIEWER)
    refused = await service.authenticate(None, now=0.0, peer_cn="retired-device")
    assert refused.status == 403 and not refused.proceed
    # a refused CN stays refused even with a valid login
    reply = await login(service, HandClient("admin", "s3cret"))
    token = params(reply, "Authentication-Info")["authtoken"]
    with_token = await service.authenticate(
        f"BEARER authToken={token}", now=0.0, peer_cn="retired-device"
    )
    assert with_token.status == 403
    # an allowed CN with an Authorization header: the header decides
    as_user = await service.authenticate(f"BEARER authToken={token}", now=0.0, peer_cn="bms")
    assert as_user.identity is not None and as_user.identity.username == "admin"
    # without a CertAuthenticator the CN is ignored
    assert (await make_service().authenticate(None, now=0.0, peer_cn="device-01")).status == 401


async def test_a_custom_authenticator_plugs_in() -> None:
    class Directory:
        def __init__(self) -> None:
            self.creds = ScramCredentials.derive("ldap-pw", iterations=ITER)

        async def scram_credentials(self, username: str) -> ScramCredentials | None:
            return self.creds if username == "carol" else None

        async def role_of(self, username: str) -> Role | None:
            return Role.OPERATOR if username == "carol" else None

    service = AuthService(
        Directory(),
        scram=ScramServer(SECRET, fake_iterations=ITER),
        tokens=BearerTokens(MemoryTokenStore()),
    )
    reply = await login(service, HandClient("carol", "ldap-pw"))
    assert reply.identity is not None and reply.identity.role is Role.OPERATOR


async def test_a_user_removed_mid_handshake_fails() -> None:
    class Vanishing:
        creds = ScramCredentials.derive("pw", iterations=ITER)

        async def scram_credentials(self, username: str) -> ScramCredentials | None:
            return self.creds

        async def role_of(self, username: str) -> Role | None:
            return None

    service = AuthService(
        Vanishing(),
        scram=ScramServer(SECRET, fake_iterations=ITER),
        tokens=BearerTokens(MemoryTokenStore()),
    )
    assert (await login(service, HandClient("dave", "pw"))).status == 403
    assert await service.tokens.store.count_tokens() == 0


_FUZZ_SERVICE = make_service()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(
            "{} {}".format,
            st.sampled_from(["HELLO", "SCRAM", "BEARER", "Bearer", "PLAINTEXT", "x-plaintext"]),
            st.text(max_size=120),
        ),
    ),
    st.booleans(),
)
async def test_any_header_gets_a_4xx_never_an_exception(header: str, tls: bool) -> None:
    service = _FUZZ_SERVICE
    service.allow_plaintext = True
    reply = await service.authenticate(header, now=0.0, tls=tls, client="10.9.9.9")
    assert reply.status in (400, 401, 403, 429)
    assert not reply.proceed
