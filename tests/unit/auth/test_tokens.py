"""Bearer tokens: generation, sliding and fixed expiry, the cap, revocation, hashed storage."""

from __future__ import annotations

import re

import pytest

from gateway.auth.errors import TokenLimitError
from gateway.auth.roles import Role
from gateway.auth.tokens import (
    TOKEN_LENGTH,
    BearerTokens,
    MemoryTokenStore,
    Overflow,
    TokenPolicy,
    TokenRecord,
    hash_token,
    new_token,
)


class CountingStore(MemoryTokenStore):
    """The memory store, counting the calls that would be disk writes or reads in SQLite."""

    def __init__(self) -> None:
        super().__init__()
        self.renews = 0
        self.gets = 0

    async def renew_token(self, token_hash: str, expires: float) -> None:
        self.renews += 1
        await super().renew_token(token_hash, expires)

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        self.gets += 1
        return await super().get_token(token_hash)


def test_new_tokens() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9]{43}", token)
    assert TOKEN_LENGTH >= 32
    assert len(new_token(64)) == 64
    with pytest.raises(ValueError, match="at least 32"):
        new_token(16)


def test_hash_is_sha256_hex() -> None:
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


async def test_issue_and_check_store_only_the_hash() -> None:
    store = MemoryTokenStore()
    tokens = BearerTokens(store)
    token, record = await tokens.issue("bob", Role.OPERATOR, now=1000.0)
    assert record.token_hash == hash_token(token)
    assert record.expires == 1000.0 + 3600.0
    stored = await store.get_token(record.token_hash)
    assert stored == record
    assert token not in repr(stored)
    assert await store.get_token(token) is None
    checked = await tokens.check(token, now=1001.0)
    assert checked is not None
    assert (checked.username, checked.role, checked.scheme) == ("bob", Role.OPERATOR, "scram")


@pytest.mark.parametrize("bogus", ["", "short", "x" * 43 + "!", "é" * 43, "a" * 300])
async def test_foreign_tokens_skip_the_store(bogus: str) -> None:
    store = CountingStore()
    assert await BearerTokens(store).check(bogus, now=0.0) is None
    assert store.gets == 0


async def test_unknown_token() -> None:
    assert await BearerTokens(MemoryTokenStore()).check(new_token(), now=0.0) is None


async def test_fixed_expiry_ignores_use() -> None:
    store = CountingStore()
    tokens = BearerTokens(store, TokenPolicy(lifetime=100.0, sliding=False))
    token, _ = await tokens.issue("bob", Role.VIEWER, now=0.0)
    for t in (10.0, 50.0, 99.0):
        record = await tokens.check(token, now=t)
        assert record is not None and record.expires == 100.0
    assert await tokens.check(token, now=100.0) is None
    assert await store.count_tokens() == 0  # an expired token found on use is removed
    assert store.renews == 0


async def test_sliding_expiry_follows_use_with_few_writes() -> None:
    store = CountingStore()
    tokens = BearerTokens(store, TokenPolicy(lifetime=100.0, sliding=True, renew_step=10.0))
    token, _ = await tokens.issue("bob", Role.VIEWER, now=0.0)
    t = 0.0
    while t < 1000.0:  # a client polling every second keeps its token for 1000 s
        t += 1.0
        assert await tokens.check(token, now=t) is not None
    assert store.renews == 100  # one write per renew_step, not per request
    record = await store.get_token(hash_token(token))
    assert record is not None and 1090.0 <= record.expires <= 1100.0
    # idle: it dies within lifetime of the last use
    assert await tokens.check(token, now=record.expires) is None


async def test_sliding_expiry_with_max_age() -> None:
    tokens = BearerTokens(
        MemoryTokenStore(), TokenPolicy(lifetime=100.0, max_age=250.0, renew_step=0.0)
    )
    token, _ = await tokens.issue("bob", Role.VIEWER, now=0.0)
    for t in range(0, 250, 50):
        assert await tokens.check(token, now=float(t)) is not None
    assert await tokens.check(token, now=250.0) is None


def test_policy_defaults_and_validation() -> None:
    policy = TokenPolicy()
    assert (policy.lifetime, policy.sliding, policy.max_tokens) == (3600.0, True, 10_000)
    assert policy.overflow is Overflow.EVICT
    assert policy.step == 60.0
    assert TokenPolicy(lifetime=30.0).step == 3.0
    for kwargs in (
        {"lifetime": 0.0},
        {"max_tokens": 0},
        {"renew_step": 30.0, "lifetime": 30.0},
        {"max_age": -1.0},
    ):
        with pytest.raises(ValueError, match="must"):
            TokenPolicy(**kwargs)


async def test_cap_evicts_the_soonest_expiring() -> None:
    store = MemoryTokenStore()
    tokens = BearerTokens(store, TokenPolicy(lifetime=100.0, sliding=False, max_tokens=3))
    first, _ = await tokens.issue("a", Role.VIEWER, now=0.0)
    second, _ = await tokens.issue("b", Role.VIEWER, now=1.0)
    third, _ = await tokens.issue("c", Role.VIEWER, now=2.0)
    fourth, _ = await tokens.issue("d", Role.VIEWER, now=3.0)
    assert await store.count_tokens() == 3
    assert await tokens.check(first, now=3.0) is None
    for token in (second, third, fourth):
        assert await tokens.check(token, now=3.0) is not None


async def test_cap_purges_expired_before_evicting() -> None:
    store = MemoryTokenStore()
    tokens = BearerTokens(store, TokenPolicy(lifetime=10.0, sliding=False, max_tokens=2))
    await tokens.issue("a", Role.VIEWER, now=0.0)
    live, _ = await tokens.issue("b", Role.VIEWER, now=5.0)
    await tokens.issue("c", Role.VIEWER, now=12.0)  # "a" expired at 10: purged, "b" kept
    assert await tokens.check(live, now=12.0) is not None
    assert await store.count_tokens() == 2


async def test_cap_refuses_when_so_configured() -> None:
    store = MemoryTokenStore()
    policy = TokenPolicy(lifetime=100.0, max_tokens=2, overflow=Overflow.REFUSE)
    tokens = BearerTokens(store, policy)
    kept = [(await tokens.issue(u, Role.VIEWER, now=0.0))[0] for u in ("a", "b")]
    with pytest.raises(TokenLimitError) as info:
        await tokens.issue("c", Role.VIEWER, now=1.0)
    assert info.value.status == 503
    for token in kept:
        assert await tokens.check(token, now=1.0) is not None


async def test_revoke_and_revoke_user() -> None:
    store = MemoryTokenStore()
    tokens = BearerTokens(store)
    a1, rec = await tokens.issue("alice", Role.ADMIN, now=0.0)
    a2, _ = await tokens.issue("alice", Role.ADMIN, now=0.0)
    b1, _ = await tokens.issue("bob", Role.VIEWER, now=0.0)
    assert await tokens.revoke(rec.token_hash)
    assert not await tokens.revoke(rec.token_hash)
    assert await tokens.check(a1, now=1.0) is None
    assert await tokens.revoke_user("alice") == 1
    assert await tokens.check(a2, now=1.0) is None
    assert await tokens.check(b1, now=1.0) is not None


async def test_memory_store_contract() -> None:
    store = MemoryTokenStore()
    records = [TokenRecord(f"h{i}", "u", Role.VIEWER, 0.0, float(10 + i)) for i in range(5)]
    for record in records:
        await store.save_token(record)
    await store.renew_token("h0", 100.0)
    await store.renew_token("missing", 100.0)
    assert await store.count_tokens() == 5
    assert await store.evict_soonest_tokens(0) == 0
    assert await store.evict_soonest_tokens(2) == 2  # h1 (11) and h2 (12); h0 now expires at 100
    assert await store.get_token("h0") is not None and await store.get_token("h1") is None
    assert await store.purge_expired_tokens(13.5) == 1  # h3
    assert await store.count_tokens() == 2
