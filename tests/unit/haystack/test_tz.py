"""Haystack zone names <-> IANA zones."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, available_timezones

import pytest

from gateway.haystack import UnknownTimeZoneError
from gateway.haystack.tz import UTC, all_names, hs_name, hs_tz, iana_name, is_known, tz_for_offset


@pytest.mark.parametrize(
    ("hs", "iana"),
    [
        ("New_York", "America/New_York"),
        ("Kolkata", "Asia/Kolkata"),
        ("London", "Europe/London"),
        ("GMT+5", "Etc/GMT+5"),
        ("GMT-3", "Etc/GMT-3"),
        ("Sydney", "Australia/Sydney"),
    ],
)
def test_city_names(hs: str, iana: str) -> None:
    assert iana_name(hs) == iana
    assert hs_tz(hs).key == iana
    assert hs_name(ZoneInfo(iana)) == hs
    assert hs_name(hs_tz(hs)) == hs


def test_utc() -> None:
    assert hs_tz("UTC") is UTC
    assert hs_name(UTC) == "UTC"
    assert hs_name(ZoneInfo("Etc/UTC")) == "UTC"
    assert hs_name(dt.UTC) == "UTC"


def test_every_zone_python_knows_has_a_name_that_maps_back_to_the_same_rules() -> None:
    moment = dt.datetime(2024, 7, 1, 12, tzinfo=dt.UTC)
    names = set(all_names())
    assert len(names) > 400
    for key in available_timezones():
        name = hs_name(ZoneInfo(key))
        assert name in names or name == key, key
        # the name leads to this zone or to an alias with the same offset today
        assert (
            moment.astimezone(hs_tz(name)).utcoffset()
            == moment.astimezone(ZoneInfo(key)).utcoffset()
        ), key


def test_fixed_offsets() -> None:
    assert tz_for_offset(0) is UTC
    assert hs_name(tz_for_offset(-5 * 3600)) == "GMT+5"
    assert hs_name(tz_for_offset(3 * 3600)) == "GMT-3"
    odd = tz_for_offset(5 * 3600 + 1800)
    assert odd.utcoffset(None) == dt.timedelta(hours=5, minutes=30)
    with pytest.raises(UnknownTimeZoneError):
        hs_name(odd)


def test_unknown() -> None:
    assert not is_known("Atlantis")
    with pytest.raises(UnknownTimeZoneError):
        hs_tz("Atlantis")
    with pytest.raises(UnknownTimeZoneError):
        hs_name(None)
    assert is_known("America/Chicago")
