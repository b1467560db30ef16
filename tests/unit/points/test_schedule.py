"""Poll buckets and reconnect backoff."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.points.schedule import Backoff, PollBucket, poll_buckets
from gateway.points.tuning import Tuning


class Fixed:
    """A random source that returns the given values in turn."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


# -- poll buckets -----------------------------------------------------------------------------


def test_points_are_grouped_by_poll_time_shortest_first() -> None:
    fast, slow = Tuning(poll_time=1), Tuning(poll_time=60)
    tunings = {"a": slow, "b": fast, "c": Tuning(poll_time=60, stale_time=1), "d": fast}
    buckets = poll_buckets(tunings, now=100.0, rng=Fixed(0.5, 0.25))
    assert [(b.poll_time, b.points) for b in buckets] == [(1, ("b", "d")), (60, ("a", "c"))]
    assert [b.next_poll for b in buckets] == [100.5, 115.0]


@pytest.mark.parametrize("seed", range(20))
def test_first_polls_are_staggered_within_one_period(seed: int) -> None:
    rng = random.Random(seed)
    tunings = {i: Tuning(poll_time=float(p)) for i, p in enumerate([1, 5, 10, 30, 60, 300])}
    buckets = poll_buckets(tunings, now=50.0, rng=rng)
    for b in buckets:
        assert 50.0 <= b.next_poll < 50.0 + b.poll_time
    assert len({b.next_poll - 50.0 for b in buckets}) == len(buckets)


def test_no_points_no_buckets() -> None:
    assert poll_buckets({}, now=0.0, rng=Fixed()) == []


# (next poll, poll finished at) -> (next poll after, skipped slots), period 10
ADVANCE = [
    ((100.0, 100.2), (110.0, 0)),  # a quick poll: the next slot
    ((100.0, 109.9), (110.0, 0)),
    ((100.0, 110.0), (120.0, 1)),  # finished exactly on the next slot: that one is missed
    ((100.0, 125.0), (130.0, 2)),  # 110 and 120 missed, never caught up in a burst
    ((100.0, 99.0), (110.0, 0)),  # polled early (a manual refresh): the grid stays
]


@pytest.mark.parametrize(("times", "want"), ADVANCE)
def test_advance_stays_on_the_buckets_grid(
    times: tuple[float, float], want: tuple[float, int]
) -> None:
    due, finished = times
    bucket = PollBucket(10.0, ("a",), due)
    assert bucket.due(due) and not bucket.due(due - 0.001)
    after, skipped = bucket.advance(finished)
    assert (after.next_poll, skipped) == want
    assert after.points == ("a",)
    assert after.next_poll > finished


def test_with_points_keeps_the_slot() -> None:
    bucket = PollBucket(10.0, ("a",), 5.0).with_points(["a", "b"])
    assert bucket == PollBucket(10.0, ("a", "b"), 5.0)


# -- backoff ------------------------------------------------------------------------------------


def test_steps_double_up_to_the_cap() -> None:
    b = Backoff(base=10, cap=300)
    assert [b.step(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 300, 300, 300]
    assert b.step(10_000) == 300  # no overflow after days of failures


def test_jitter_bounds_with_extreme_random_values() -> None:
    b = Backoff(base=10, cap=300, jitter=0.5)
    assert b.failed(0.0, Fixed(0.0)).next_attempt == 10.0  # the full step
    assert b.failed(0.0, Fixed(0.999999)).next_attempt == pytest.approx(5.0, abs=1e-4)
    no_jitter = Backoff(base=10, cap=300, jitter=0.0)
    assert no_jitter.failed(7.0, Fixed(0.7)).next_attempt == 17.0


@given(st.integers(0, 2**32 - 1), st.integers(1, 30))
def test_waits_stay_within_half_a_step_and_a_step(seed: int, failures: int) -> None:
    rng = random.Random(seed)
    b = Backoff(base=2, cap=600, factor=3)
    now = 0.0
    for n in range(1, failures + 1):
        b = b.failed(now, rng)
        wait = b.next_attempt - now
        step = min(600, 2 * 3 ** (n - 1))
        assert step / 2 <= wait <= step
        assert b.failures == n
        now = b.next_attempt


def test_one_attempt_per_step_and_success_resets() -> None:
    rng = random.Random(7)
    b = Backoff(base=1, cap=16)
    assert b.ready(0.0)  # the first attempt goes at once
    attempts = []
    t = 0.0
    while t < 200.0:  # a runner checking every 10 ms against a device that stays down
        if b.ready(t):
            attempts.append(t)
            b = b.failed(t, rng)
        t = round(t + 0.01, 2)
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    steps = [min(16, 2 ** (n - 1)) for n in range(1, len(gaps) + 1)]
    assert all(s / 2 <= g <= s + 0.011 for g, s in zip(gaps, steps, strict=True))
    assert len(attempts) < 25  # ~ 200 s at <= 16 s per step, versus 20,000 checks
    b = b.succeeded()
    assert (b.failures, b.ready(t)) == (0, True)
    assert b.failed(t, Fixed(0.0)).next_attempt == t + 1


def test_from_tuning() -> None:
    b = Backoff.from_tuning(Tuning(open_retry_base=5, open_retry_max=120))
    assert (b.base, b.cap) == (5, 120)


@pytest.mark.parametrize(
    "kwargs",
    [{"base": 0}, {"base": 10, "cap": 5}, {"factor": 0.5}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_bad_backoff_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**kwargs)
