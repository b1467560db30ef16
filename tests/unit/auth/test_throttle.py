"""Failed-login throttling: exponential locks per user name and per address."""

from __future__ import annotations

import pytest

from gateway.auth.errors import ThrottledError
from gateway.auth.throttle import LoginThrottle, ThrottlePolicy

POLICY = ThrottlePolicy(
    user_free_failures=3,
    address_free_failures=5,
    base_delay=1.0,
    max_delay=8.0,
    forget_after=100.0,
    max_entries=50,
)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (1, 0.0), (3, 0.0), (4, 1.0), (5, 2.0), (6, 4.0), (7, 8.0), (8, 8.0), (500, 8.0)],
)
def test_delay_table(failures: int, delay: float) -> None:
    assert POLICY.delay(failures, free=3) == delay


def test_user_is_locked_after_the_allowance_then_released() -> None:
    throttle = LoginThrottle(POLICY)
    for t in range(3):
        throttle.check(username="bob", address=None, now=t)
        throttle.failed(username="bob", address=None, now=t)
    throttle.check(username="bob", address=None, now=3)  # three failures are free
    throttle.failed(username="bob", address=None, now=3)  # the 4th: locked for 1 s
    with pytest.raises(ThrottledError) as info:
        throttle.check(username="bob", address=None, now=3.5)
    assert info.value.status == 429
    assert info.value.retry_after == pytest.approx(0.5)
    throttle.check(username="alice", address=None, now=3.5)  # other users are not affected
    throttle.check(username="bob", address=None, now=4.0)
    throttle.failed(username="bob", address=None, now=4.0)  # the 5th: 2 s
    assert throttle.retry_after(username="bob", address=None, now=4.0) == pytest.approx(2.0)


def test_refused_attempts_do_not_grow_the_lock() -> None:
    throttle = LoginThrottle(POLICY)
    for t in range(4):
        throttle.failed(username="bob", address=None, now=t)
    for _ in range(10):
        with pytest.raises(ThrottledError):
            throttle.check(username="bob", address=None, now=3.1)
    assert throttle.retry_after(username="bob", address=None, now=3.1) == pytest.approx(0.9)


def test_address_is_locked_across_user_names() -> None:
    throttle = LoginThrottle(POLICY)
    for i in range(6):  # six names, one guess each: no user lock, but the address is locked
        throttle.failed(username=f"user{i}", address="10.0.0.9", now=10.0)
    with pytest.raises(ThrottledError):
        throttle.check(username="user99", address="10.0.0.9", now=10.5)
    throttle.check(username="user99", address="10.0.0.10", now=10.5)
    throttle.check(username="user1", address=None, now=10.5)


def test_success_clears_the_user_but_not_the_address() -> None:
    throttle = LoginThrottle(POLICY)
    for _ in range(6):
        throttle.failed(username="bob", address="10.0.0.9", now=0.0)
    throttle.succeeded(username="bob", now=0.0)
    assert throttle.retry_after(username="bob", address=None, now=0.0) == 0.0
    assert throttle.retry_after(username=None, address="10.0.0.9", now=0.0) > 0.0


def test_failures_are_forgotten_after_a_quiet_period() -> None:
    throttle = LoginThrottle(POLICY)
    for _ in range(4):
        throttle.failed(username="bob", address=None, now=0.0)
    throttle.failed(username="bob", address=None, now=101.0)  # counts as the first again
    assert throttle.retry_after(username="bob", address=None, now=101.0) == 0.0
    assert len(throttle) == 1
    assert throttle.retry_after(username="bob", address=None, now=202.0) == 0.0
    assert len(throttle) == 0


def test_table_is_bounded() -> None:
    throttle = LoginThrottle(POLICY)
    for i in range(200):
        throttle.failed(username=f"u{i}", address=None, now=float(i) / 1000)
    assert len(throttle) == POLICY.max_entries
    # the newest entries are the ones kept
    for _ in range(3):
        throttle.failed(username="u199", address=None, now=1.0)
    assert throttle.retry_after(username="u199", address=None, now=1.0) > 0


def test_defaults_are_documented_values() -> None:
    policy = ThrottlePolicy()
    assert (policy.user_free_failures, policy.address_free_failures) == (5, 20)
    assert (policy.base_delay, policy.max_delay, policy.forget_after) == (1.0, 300.0, 900.0)
