"""Failed-login throttling per user name and per client address; pure, time passed in.

Policy (:class:`ThrottlePolicy`), applied to each key — the user name and the client address —
separately:

- the first ``free_failures`` failures cost nothing (5 per user name; 20 per address, because a
  site's users may share one NAT address);
- each further failure locks the key for an exponentially growing delay: ``base_delay`` (1 s)
  after the first one over the allowance, then 2 s, 4 s, ... up to ``max_delay`` (300 s);
- while a key is locked, logins for it are refused with 429 and Retry-After *before* any proof
  or password is looked at, and the refused attempts do not count (a lock never grows by
  itself);
- a key with no failure for ``forget_after`` (15 min) starts afresh; a successful login clears
  the user name's record, not the address's (a valid account must not reset the counter of
  an address that is guessing other users' passwords).

The user name key applies to names that do not exist too, so throttling reveals nothing. The
price of per-user throttling is that an attacker can delay a real user's logins by at most
``max_delay`` at a time; bearer tokens already issued keep working. At most ``max_entries``
keys are kept; when full, the key with the oldest failure is forgotten first.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.errors import ThrottledError

__all__ = ["LoginThrottle", "ThrottlePolicy"]

_Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The throttling parameters (see the module docstring)."""

    user_free_failures: int = 5
    address_free_failures: int = 20
    base_delay: float = 1.0
    max_delay: float = 300.0
    forget_after: float = 900.0
    max_entries: int = 10_000

    def delay(self, failures: int, free: int) -> float:
        """The lock after the ``failures``-th failure of a key allowed ``free`` failures."""
        over = failures - free
        if over <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(over - 1, 64))


@dataclass(slots=True)
class _Record:
    failures: int
    last: float
    locked_until: float


class LoginThrottle:
    """Counts failed logins and says how long a user name or address must wait."""

    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        # Ordered by last failure: stale and evictable keys are at the front.
        self._records: dict[_Key, _Record] = {}

    def _keys(self, username: str | None, address: str | None) -> list[tuple[_Key, int]]:
        keys: list[tuple[_Key, int]] = []
        if username is not None:
            keys.append((("user", username), self.policy.user_free_failures))
        if address is not None:
            keys.append((("addr", address), self.policy.address_free_failures))
        return keys

    def _live(self, key: _Key, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last > self.policy.forget_after:
            del self._records[key]
            return None
        return record

    def retry_after(self, *, username: str | None, address: str | None, now: float) -> float:
        """Seconds until a login for ``username`` from ``address`` may be tried; 0: now."""
        wait = 0.0
        for key, _free in self._keys(username, address):
            record = self._live(key, now)
            if record is not None:
                wait = max(wait, record.locked_until - now)
        return wait

    def check(self, *, username: str | None, address: str | None, now: float) -> None:
        """Raise :class:`ThrottledError` if the login must wait."""
        wait = self.retry_after(username=username, address=address, now=now)
        if wait > 0:
            raise ThrottledError(retry_after=wait)

    def failed(self, *, username: str | None, address: str | None, now: float) -> None:
        """Count a failed login (a bad proof or password)."""
        for key, free in self._keys(username, address):
            record = self._live(key, now)
            if record is None:
                self._make_room(now)
                record = _Record(0, now, now)
            else:
                del self._records[key]  # re-inserted at the end: newest failure last
            record.failures += 1
            record.last = now
            record.locked_until = now + self.policy.delay(record.failures, free)
            self._records[key] = record

    def succeeded(self, *, username: str, now: float) -> None:
        """Clear the user name's failures after a good login."""
        self._records.pop(("user", username), None)

    def _make_room(self, now: float) -> None:
        while self._records:
            key, record = next(iter(self._records.items()))
            full = len(self._records) >= self.policy.max_entries
            if not full and now - record.last <= self.policy.forget_after:
                return
            del self._records[key]

    def __len__(self) -> int:
        return len(self._records)
