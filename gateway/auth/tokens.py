"""Bearer tokens: generation, the policy that bounds them, and the store that keeps them.

A token is 43 characters of ``[A-Za-z0-9]`` from :mod:`secrets` (about 256 bits), safe for every
client's header regexes. The store never sees the token, only its SHA-256 (hex): a copy of the
database does not let anyone in. Tokens live in a :class:`TokenStore` so that they survive a
restart and are shared by worker processes; the storage adapters implement it (memory here,
SQLite in ``gateway.storage``).

Expiry (:class:`TokenPolicy`, ``lifetime`` 3,600 s by default):

- **sliding** (the default): every use pushes the expiry to ``now + lifetime``, so a client
  that polls keeps its session and an idle token dies ``lifetime`` after its last use.
  ``max_age`` optionally caps a session's total life whatever its use. To spare SD cards, the
  store is written at most once per ``renew_step`` (default ``min(60 s, lifetime / 10)``) per
  token, so an idle token expires between ``lifetime - renew_step`` and ``lifetime`` after its
  last use.
- **fixed**: a token expires ``lifetime`` after login, however much it is used; the client logs
  in again (Haystack clients do so when they get a 401).

Cap (``max_tokens``, 10,000 by default): expired tokens are purged first; if the store is still
full, ``overflow="evict"`` (the default) drops the tokens that expire soonest — with sliding
expiry those are the idlest sessions — and ``overflow="refuse"`` refuses the login with 503. Evict
keeps logins working under a flood of sessions at the price of idle sessions; refuse protects
existing sessions at the price of new logins. ``close`` revokes one token; a change to a user
(password, role, disabled, deleted) must revoke all of that user's tokens
(:meth:`BearerTokens.revoke_user`).

The store's methods carry a ``_token`` / ``_tokens`` suffix because one storage adapter object
implements this protocol together with ``UserStore`` and the record store.
"""

from __future__ import annotations

import hashlib
import heapq
import secrets
import string
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, Protocol

from gateway.auth.errors import TokenLimitError
from gateway.auth.roles import Role

__all__ = [
    "TOKEN_LENGTH",
    "BearerTokens",
    "MemoryTokenStore",
    "Overflow",
    "TokenPolicy",
    "TokenRecord",
    "TokenStore",
    "hash_token",
    "new_token",
]

_ALPHABET: Final = string.ascii_letters + string.digits
_ALNUM: Final = frozenset(_ALPHABET)
#: 43 characters of 62 symbols: 256 bits.
TOKEN_LENGTH: Final = 43
_MIN_LENGTH: Final = 32
_MAX_LENGTH: Final = 256


def new_token(length: int = TOKEN_LENGTH) -> str:
    """A random ``[A-Za-z0-9]`` string of ``length`` (at least 32) characters."""
    if length < _MIN_LENGTH:
        raise ValueError(f"a token needs at least {_MIN_LENGTH} characters")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_token(token: str) -> str:
    """The SHA-256 of a token in hex: the only form a store keeps."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A session as stored: whose it is, with which role, and until when (epoch seconds)."""

    token_hash: str
    username: str
    role: Role
    created: float
    expires: float
    scheme: str = "scram"

    def expired(self, now: float) -> bool:
        """Whether the token is no longer valid at ``now``."""
        return now >= self.expires


class TokenStore(Protocol):
    """Where bearer tokens live; keyed by :func:`hash_token`, never by the token."""

    async def save_token(self, record: TokenRecord) -> None:
        """Add a new session (the hash is fresh; replacing is allowed)."""

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        """The session, expired or not, or None."""

    async def renew_token(self, token_hash: str, expires: float) -> None:
        """Move a session's expiry (sliding expiry); a missing hash is ignored."""

    async def revoke_token(self, token_hash: str) -> bool:
        """Remove a session; whether it existed."""

    async def revoke_user_tokens(self, username: str) -> int:
        """Remove every session of a user; how many."""

    async def count_tokens(self) -> int:
        """How many sessions are stored, expired ones included."""

    async def purge_expired_tokens(self, now: float) -> int:
        """Remove the sessions expired at ``now``; how many."""

    async def evict_soonest_tokens(self, n: int) -> int:
        """Remove the ``n`` sessions that expire soonest; how many."""


class Overflow(StrEnum):
    """What a login does when the token cap is reached."""

    EVICT = "evict"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """How long tokens live and how many may exist (see the module docstring)."""

    lifetime: float = 3600.0
    sliding: bool = True
    max_age: float | None = None
    max_tokens: int = 10_000
    overflow: Overflow = Overflow.EVICT
    renew_step: float | None = None

    def __post_init__(self) -> None:
        if not self.lifetime > 0:
            raise ValueError("token lifetime must be positive")
        if self.max_age is not None and not self.max_age > 0:
            raise ValueError("token max_age must be positive")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.renew_step is not None and not 0 <= self.renew_step < self.lifetime:
            raise ValueError("renew_step must be at least 0 and less than the lifetime")

    @property
    def step(self) -> float:
        """The least expiry move worth a store write."""
        return self.renew_step if self.renew_step is not None else min(60.0, self.lifetime / 10)

    def expiry(self, created: float, now: float) -> float:
        """The expiry of a session created at ``created`` and (re)used at ``now``."""
        if not self.sliding:
            return created + self.lifetime
        expires = now + self.lifetime
        return expires if self.max_age is None else min(expires, created + self.max_age)

    def renewal(self, record: TokenRecord, now: float) -> float | None:
        """The new expiry if a use at ``now`` should be written to the store, else None."""
        if not self.sliding:
            return None
        expires = self.expiry(record.created, now)
        return expires if expires - record.expires >= self.step else None


class BearerTokens:
    """Issues, checks and revokes bearer tokens over a :class:`TokenStore`."""

    def __init__(self, store: TokenStore, policy: TokenPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or TokenPolicy()

    async def issue(
        self, username: str, role: Role, *, now: float, scheme: str = "scram"
    ) -> tuple[str, TokenRecord]:
        """A new token for a verified login, and its record; :class:`TokenLimitError` if full."""
        await self._make_room(now)
        token = new_token()
        record = TokenRecord(
            hash_token(token), username, role, now, self.policy.expiry(now, now), scheme
        )
        await self.store.save_token(record)
        return token, record

    async def _make_room(self, now: float) -> None:
        cap = self.policy.max_tokens
        count = await self.store.count_tokens()
        if count < cap:
            return
        count -= await self.store.purge_expired_tokens(now)
        if count < cap:
            return
        if self.policy.overflow is Overflow.REFUSE:
            raise TokenLimitError(retry_after=self.policy.step)
        await self.store.evict_soonest_tokens(count - cap + 1)

    async def check(self, token: str, *, now: float) -> TokenRecord | None:
        """The live session of ``token`` (renewed if sliding), or None."""
        if not _MIN_LENGTH <= len(token) <= _MAX_LENGTH or not all(c in _ALNUM for c in token):
            return None  # not one of ours: skip the hash and the store
        key = hash_token(token)
        record = await self.store.get_token(key)
        if record is None:
            return None
        if record.expired(now):
            await self.store.revoke_token(key)
            return None
        expires = self.policy.renewal(record, now)
        if expires is not None:
            await self.store.renew_token(key, expires)
            record = replace(record, expires=expires)
        return record

    async def revoke(self, token_hash: str) -> bool:
        """End one session (the ``close`` op)."""
        return await self.store.revoke_token(token_hash)

    async def revoke_user(self, username: str) -> int:
        """End every session of a user (after a password, role or enabled change)."""
        return await self.store.revoke_user_tokens(username)


class MemoryTokenStore:
    """A :class:`TokenStore` in a dict, for tests and the in-memory storage adapter."""

    def __init__(self) -> None:
        self._records: dict[str, TokenRecord] = {}

    async def save_token(self, record: TokenRecord) -> None:
        self._records[record.token_hash] = record

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        return self._records.get(token_hash)

    async def renew_token(self, token_hash: str, expires: float) -> None:
        record = self._records.get(token_hash)
        if record is not None:
            self._records[token_hash] = replace(record, expires=expires)

    async def revoke_token(self, token_hash: str) -> bool:
        return self._records.pop(token_hash, None) is not None

    async def revoke_user_tokens(self, username: str) -> int:
        doomed = [h for h, r in self._records.items() if r.username == username]
        for key in doomed:
            del self._records[key]
        return len(doomed)

    async def count_tokens(self) -> int:
        return len(self._records)

    async def purge_expired_tokens(self, now: float) -> int:
        doomed = [h for h, r in self._records.items() if r.expired(now)]
        for key in doomed:
            del self._records[key]
        return len(doomed)

    async def evict_soonest_tokens(self, n: int) -> int:
        if n <= 0:
            return 0
        doomed = heapq.nsmallest(n, self._records.values(), key=lambda r: r.expires)
        for record in doomed:
            del self._records[record.token_hash]
        return len(doomed)
