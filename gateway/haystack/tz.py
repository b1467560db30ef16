"""Haystack time-zone names <-> IANA zones.

A Haystack zone name is the last segment of the IANA name: ``New_York`` is
``America/New_York``, ``UTC`` is ``Etc/UTC``, ``GMT+5`` is ``Etc/GMT+5`` (POSIX sign: five hours
*behind* UTC). Every zone ``zoneinfo`` knows gets a name; where two IANA names share a last
segment, the one under a geographic region (America, Europe, ...) wins, then the first in sorted
order (the few collisions between regions are aliases of one zone). A legacy alias outside the
regions whose last segment belongs to another zone (``Brazil/West``) keeps its full IANA key as
its name, which ``hs_tz`` accepts too.

The table is built on first use from ``zoneinfo.available_timezones()`` (the system database or
the ``tzdata`` package).
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from gateway.haystack.errors import UnknownTimeZoneError

__all__ = [
    "UTC",
    "all_names",
    "hs_name",
    "hs_tz",
    "iana_name",
    "is_known",
    "tz_for_offset",
]

UTC = ZoneInfo("UTC")

_REGIONS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Asia",
        "Atlantic",
        "Australia",
        "Etc",
        "Europe",
        "Indian",
        "Pacific",
    }
)

_HS_TO_IANA: dict[str, str] = {}
_NAME_OF_TZINFO: dict[_dt.tzinfo, str] = {}


def _table() -> dict[str, str]:
    if not _HS_TO_IANA:
        names = sorted(available_timezones())
        table: dict[str, str] = {}
        # Region zones first, so "Eastern" never hides a city and "UTC" maps to Etc/UTC.
        for full in names:
            head, _, rest = full.partition("/")
            if head in _REGIONS and rest:
                table.setdefault(full.rsplit("/", 1)[1], full)
        for full in names:
            table.setdefault(full.rsplit("/", 1)[-1], full)
        table.setdefault("UTC", "UTC")
        _HS_TO_IANA.update(table)
    return _HS_TO_IANA


def all_names() -> list[str]:
    """Every Haystack zone name, sorted."""
    return sorted(_table())


def iana_name(name: str) -> str:
    """The IANA key for a Haystack name (or an IANA key, returned as is)."""
    table = _table()
    full = table.get(name)
    if full is not None:
        return full
    if "/" in name and name in _known_iana():
        return name
    raise UnknownTimeZoneError(f"unknown time zone {name!r}")


@lru_cache(maxsize=1)
def _known_iana() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1024)
def hs_tz(name: str) -> ZoneInfo:
    """The zone for a Haystack name such as ``New_York`` (IANA keys are accepted too)."""
    if name in ("UTC", "Z"):
        return UTC
    try:
        zone = ZoneInfo(iana_name(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone {name!r}") from exc
    _NAME_OF_TZINFO.setdefault(zone, name if "/" not in name else name.rsplit("/", 1)[1])
    return zone


def is_known(name: str) -> bool:
    """True when ``name`` is a Haystack zone name this machine knows."""
    try:
        hs_tz(name)
    except UnknownTimeZoneError:
        return False
    return True


def hs_name(tz: _dt.tzinfo | None) -> str:
    """The Haystack name of a zone: ``ZoneInfo("America/New_York")`` -> ``New_York``.

    Fixed offsets are named ``UTC`` or ``GMT±h`` (POSIX sign) when they are whole hours;
    other fixed offsets have no Haystack name and raise ``UnknownTimeZoneError``.
    """
    if tz is None:
        raise UnknownTimeZoneError("a naive time has no zone")
    name = _NAME_OF_TZINFO.get(tz)
    if name is not None:
        return name
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        name = _name_of_key(key)
    else:
        offset = tz.utcoffset(None)
        if offset is None:
            raise UnknownTimeZoneError(f"zone {tz!r} has no fixed offset and no name")
        name = _offset_name(int(offset.total_seconds()))
    _NAME_OF_TZINFO[tz] = name
    return name


def _name_of_key(key: str) -> str:
    if key in ("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"):
        return "UTC"
    head, _, rest = key.partition("/")
    last = key.rsplit("/", 1)[-1]
    if (head in _REGIONS and rest) or _table().get(last) == key:
        return last
    # A legacy alias whose last segment names another zone ("Brazil/West" vs
    # "Australia/West"): the full key is the only name that leads back to it.
    return key


def _offset_name(seconds: int) -> str:
    if seconds == 0:
        return "UTC"
    if seconds % 3600:
        raise UnknownTimeZoneError(f"offset {seconds}s is not a whole hour: no Haystack zone name")
    hours = seconds // 3600
    # POSIX sign: Etc/GMT+5 is five hours behind UTC.
    return f"GMT{-hours:+d}"


def tz_for_offset(seconds: int) -> _dt.tzinfo:
    """The zone for a bare UTC offset: UTC, an ``Etc/GMT±h`` zone, or a fixed offset."""
    if seconds == 0:
        return UTC
    if seconds % 3600 == 0 and -14 * 3600 <= seconds <= 12 * 3600:
        return hs_tz(_offset_name(seconds))
    return _dt.timezone(_dt.timedelta(seconds=seconds))
