"""History collection: configuration, interval boundaries and change of value."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

import pytest

from gateway.haystack.kinds import MARKER, NA, Number, Ref
from gateway.haystack.tz import UTC, hs_tz
from gateway.points.hiscollect import HisCollect, HisCollectError, HisSample
from gateway.points.status import CurStatus

NY = hs_tz("New_York")
OK = CurStatus.OK


def his_point(**tags: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": Ref("p1"),
        "point": MARKER,
        "his": MARKER,
        "tz": "New_York",
        "kind": "Number",
        "unit": "°F",
    }
    rec.update(tags)
    return {k: v for k, v in rec.items() if v is not None}


def ny(  # noqa: PLR0917
    year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=NY)


# -- configuration -----------------------------------------------------------------------------


def test_no_collection_tags_no_collector() -> None:
    assert HisCollect.from_record(his_point()) is None


@pytest.mark.parametrize(
    ("tags", "want"),
    [
        ({"hisCollectInterval": Number(15, "min")}, {"interval": 900.0, "cov": False}),
        ({"hisCollectInterval": Number(5, "s")}, {"interval": 5.0}),
        ({"hisCollectInterval": Number(2, "h")}, {"interval": 7200.0}),
        ({"hisCollectInterval": Number(1, "day")}, {"interval": 86400.0}),
        ({"hisCollectCov": MARKER}, {"interval": None, "cov": True, "deadband": None}),
        ({"hisCollectCov": Number(0.5)}, {"cov": True, "deadband": 0.5}),
        ({"hisCollectCov": Number(0.5, "°F")}, {"deadband": 0.5}),
        (
            {"hisCollectCov": MARKER, "hisCollectCovRateLimit": Number(1, "min")},
            {"rate_limit": 60.0},
        ),
        ({"hisCollectCov": MARKER, "hisCollectNA": MARKER}, {"collect_na": True, "rate_limit": 1}),
    ],
)
def test_settings_from_the_point(tags: dict[str, Any], want: dict[str, Any]) -> None:
    collect = HisCollect.from_record(his_point(**tags))
    assert collect is not None
    assert collect.tz is NY
    for name, val in want.items():
        assert getattr(collect, name) == val, name


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"his": None, "hisCollectCov": MARKER}, "@p1: history collection needs the his marker"),
        ({"tz": None, "hisCollectCov": MARKER}, "@p1: history collection needs a tz tag"),
        ({"tz": "Atlantis", "hisCollectCov": MARKER}, "@p1: "),
        ({"hisCollectInterval": Number(7, "min")}, "whole number of min that divides an hour"),
        ({"hisCollectInterval": Number(90, "s")}, "whole number of min that divides an hour"),
        ({"hisCollectInterval": Number(7, "s")}, "whole number of sec that divides a minute"),
        ({"hisCollectInterval": Number(5, "h")}, "whole number of hr that divides a day"),
        ({"hisCollectInterval": Number(500, "ms")}, "must be from 1sec to 1day"),
        ({"hisCollectInterval": Number(2, "day")}, "must be from 1sec to 1day"),
        ({"hisCollectInterval": Number(15)}, "@p1: hisCollectInterval must be a time Number"),
        (
            {"hisCollectCov": "yes"},
            'hisCollectCov must be a marker or a Number deadband, got "yes"',
        ),
        (
            {"kind": "Bool", "unit": None, "hisCollectCov": Number(1)},
            'a hisCollectCov deadband (1) needs a Number point, not kind "Bool"',
        ),
        (
            {"hisCollectCov": Number(1, "°C")},
            "hisCollectCov 1°C must be unitless or in the point's unit (°F)",
        ),
        ({"hisCollectCov": Number(-1)}, "must be a deadband >= 0, got -1"),
        (
            {"hisCollectCov": MARKER, "hisCollectCovRateLimit": Number(1, "kW")},
            "hisCollectCovRateLimit must be a time Number",
        ),
    ],
)
def test_bad_settings(tags: dict[str, Any], message: str) -> None:
    with pytest.raises(HisCollectError, match=re.escape(message)):
        HisCollect.from_record(his_point(**tags))


# -- interval ----------------------------------------------------------------------------------


def run(
    collect: HisCollect, steps: list[tuple[dt.datetime, Any, CurStatus]]
) -> tuple[list[tuple[dt.datetime, Any]], list[dt.datetime | None]]:
    samples, wakes = [], []
    for now, val, status in steps:
        collect, decision = collect.observe(now, val, status)
        if decision.sample is not None:
            samples.append((decision.sample.ts, decision.sample.val))
        wakes.append(decision.wake_at)
    return samples, wakes


def test_interval_samples_on_the_local_clocks_boundaries() -> None:
    collect = HisCollect(tz=NY, interval=900.0)
    samples, wakes = run(
        collect,
        [
            (ny(2024, 6, 3, 10, 7), Number(70), OK),
            (ny(2024, 6, 3, 10, 15, 0, 300000), Number(71), OK),  # woke 0.3 s late
            (ny(2024, 6, 3, 10, 20), Number(72), OK),
            (ny(2024, 6, 3, 10, 46), Number(73), OK),  # 10:30 missed: no value for it
        ],
    )
    assert samples == [(ny(2024, 6, 3, 10, 15), Number(71)), (ny(2024, 6, 3, 10, 45), Number(73))]
    assert wakes == [
        ny(2024, 6, 3, 10, 15),
        ny(2024, 6, 3, 10, 30),
        ny(2024, 6, 3, 10, 30),
        ny(2024, 6, 3, 11, 0),
    ]
    assert all(ts.tzinfo is NY for ts, _ in samples)


def test_first_observation_on_a_boundary_is_sampled() -> None:
    samples, _ = run(HisCollect(tz=NY, interval=60.0), [(ny(2024, 6, 3, 10, 0), True, OK)])
    assert samples == [(ny(2024, 6, 3, 10, 0), True)]


def test_hourly_boundaries_follow_a_half_hour_zone() -> None:
    kolkata = hs_tz("Kolkata")
    collect = HisCollect(tz=kolkata, interval=3600.0)
    now = dt.datetime(2024, 6, 3, 4, 10, tzinfo=UTC)  # 09:40 in Kolkata
    collect, decision = collect.observe(now, Number(1), OK)
    assert decision.wake_at == dt.datetime(2024, 6, 3, 10, 0, tzinfo=kolkata)
    assert decision.wake_at is not None
    assert decision.wake_at.astimezone(UTC).minute == 30


def test_hourly_samples_across_the_autumn_clock_change() -> None:
    collect = HisCollect(tz=NY, interval=3600.0)
    start = ny(2024, 11, 2, 23, 30).astimezone(UTC)
    samples: list[HisSample] = []
    for minutes in range(0, 6 * 60, 10):
        now = start + dt.timedelta(minutes=minutes)
        collect, decision = collect.observe(now, Number(minutes), OK)
        if decision.sample:
            samples.append(decision.sample)
    utc = [s.ts.astimezone(UTC) for s in samples]
    assert all(b - a == dt.timedelta(hours=1) for a, b in itertools.pairwise(utc))
    assert all(s.ts.minute == 0 and s.ts.second == 0 for s in samples)
    local = [(s.ts.hour, s.ts.fold) for s in samples]
    assert local[:4] == [(0, 0), (1, 0), (1, 1), (2, 0)]  # 01:00 twice, EDT then EST


@pytest.mark.parametrize(
    ("collect_na", "want"),
    [
        (False, [(ny(2024, 6, 3, 10, 0), Number(1)), (ny(2024, 6, 3, 10, 2), Number(3))]),
        (
            True,
            [
                (ny(2024, 6, 3, 10, 0), Number(1)),
                (ny(2024, 6, 3, 10, 1), NA),
                (ny(2024, 6, 3, 10, 2), Number(3)),
            ],
        ),
    ],
)
def test_interval_while_the_point_is_down(collect_na: bool, want: list[Any]) -> None:
    collect = HisCollect(tz=NY, interval=60.0, collect_na=collect_na)
    samples, _ = run(
        collect,
        [
            (ny(2024, 6, 3, 10, 0), Number(1), OK),
            (ny(2024, 6, 3, 10, 1), None, CurStatus.DOWN),
            (ny(2024, 6, 3, 10, 2), Number(3), OK),
        ],
    )
    assert samples == want


# -- change of value ---------------------------------------------------------------------------

T = ny(2024, 6, 3, 12, 0)


def sec(s: float) -> dt.datetime:
    return (T.astimezone(UTC) + dt.timedelta(seconds=s)).astimezone(NY)


# (cov config, values one per 10 s) -> indexes of the values recorded
COV = [
    (
        "deadband 0.5",
        {"cov": True, "deadband": 0.5},
        [70, 70.2, 70.4, 70.6, 70.3, 70.0, 70.0],
        [0, 3, 5],
    ),
    ("deadband reached exactly", {"cov": True, "deadband": 0.5}, [70, 70.5, 71.0], [0, 1, 2]),
    ("any change", {"cov": True}, [70, 70, 70.1, 70.1, 70], [0, 2, 4]),
    ("deadband 0 is any change", {"cov": True, "deadband": 0.0}, [1, 1, 2], [0, 2]),
]


@pytest.mark.parametrize(("name", "config", "values", "recorded"), COV)
def test_cov_numbers(
    name: str, config: dict[str, Any], values: list[float], recorded: list[int]
) -> None:
    collect = HisCollect(tz=NY, **config)
    samples, _ = run(collect, [(sec(10 * i), Number(v, "°F"), OK) for i, v in enumerate(values)])
    assert samples == [(sec(10 * i), Number(values[i], "°F")) for i in recorded], name


@pytest.mark.parametrize(
    ("values", "recorded"),
    [([False, False, True, True, False], [0, 2, 4]), (["auto", "auto", "on"], [0, 2])],
)
def test_cov_bool_and_str_on_any_change(values: list[Any], recorded: list[int]) -> None:
    collect = HisCollect(tz=NY, cov=True, deadband=None)
    samples, _ = run(collect, [(sec(10 * i), v, OK) for i, v in enumerate(values)])
    assert samples == [(sec(10 * i), values[i]) for i in recorded]


def test_cov_rate_limit_defers_a_change_and_never_loses_it() -> None:
    collect = HisCollect(tz=NY, cov=True, rate_limit=60.0)
    collect, d = collect.observe(sec(0), Number(1), OK)
    assert d.sample == HisSample(sec(0), Number(1))
    collect, d = collect.observe(sec(5), Number(2), OK)
    assert d.sample is None
    assert d.wake_at == sec(60)
    collect, d = collect.observe(sec(30), Number(3), OK)
    assert (d.sample, d.wake_at) == (None, sec(60))
    collect, d = collect.observe(sec(60), Number(3), OK)  # the runner wakes at wake_at
    assert d.sample == HisSample(sec(60), Number(3))
    collect, d = collect.observe(sec(61), Number(3), OK)
    assert (d.sample, d.wake_at) == (None, None)


def test_cov_records_na_once_while_down_with_his_collect_na() -> None:
    collect = HisCollect(tz=NY, cov=True, collect_na=True)
    samples, _ = run(
        collect,
        [
            (sec(0), Number(1), OK),
            (sec(10), None, CurStatus.DOWN),
            (sec(20), None, CurStatus.DOWN),
            (sec(30), Number(1), OK),
        ],
    )
    assert samples == [(sec(0), Number(1)), (sec(10), NA), (sec(30), Number(1))]


def test_cov_skips_bad_values_without_his_collect_na() -> None:
    collect = HisCollect(tz=NY, cov=True)
    samples, _ = run(
        collect,
        [(sec(0), Number(1), OK), (sec(10), None, CurStatus.FAULT), (sec(20), Number(2), OK)],
    )
    assert samples == [(sec(0), Number(1)), (sec(20), Number(2))]


def test_interval_and_cov_together() -> None:
    collect = HisCollect(tz=NY, interval=60.0, cov=True, deadband=5.0)
    samples, wakes = run(
        collect,
        [
            (sec(0), Number(10), OK),  # 12:00:00: the boundary
            (sec(20), Number(11), OK),  # within the deadband
            (sec(30), Number(20), OK),  # a jump: COV
            (sec(60), Number(21), OK),  # 12:01:00: the boundary
        ],
    )
    assert samples == [
        (sec(0), Number(10)),
        (sec(30), Number(20)),
        (sec(60), Number(21)),
    ]
    assert wakes[-1] == sec(120)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        HisCollect(tz=NY, cov=True).observe(dt.datetime(2024, 1, 1), Number(1), OK)
