"""drivers.modbus.link.SlaveBackoff: how long a silent slave is skipped (time as input)."""

from __future__ import annotations

from drivers.modbus.link import SlaveBackoff


def test_backoff_doubles_up_to_the_limit_and_resets_on_answer() -> None:
    backoff = SlaveBackoff(base=1.0, limit=5.0)
    assert backoff.remaining(100.0) == 0.0
    expected = [1.0, 2.0, 4.0, 5.0, 5.0]
    for delay in expected:
        backoff.on_no_answer(100.0)
        assert backoff.remaining(100.0) == delay
    assert backoff.remaining(104.0) == 1.0
    assert backoff.remaining(106.0) == 0.0
    backoff.on_answer()
    assert backoff.remaining(100.0) == 0.0
    backoff.on_no_answer(200.0)
    assert backoff.remaining(200.0) == 1.0
