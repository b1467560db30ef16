"""Text forms shared by the codecs: numbers, dates, times and date-times.

Zinc, JSON v3, JSON v4, Trio and CSV write these kinds the same way (JSON v4 only splits the zone
name into its own field), so the rules live here once.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Final

from gateway.haystack.errors import UnknownTimeZoneError
from gateway.haystack.tz import UTC, hs_name, hs_tz, tz_for_offset

__all__ = [
    "format_date",
    "format_datetime_iso",
    "format_float",
    "format_time",
    "parse_date",
    "parse_datetime",
    "parse_time",
    "tz_name_of",
]

_INF: Final = math.inf


def format_float(val: float) -> str:
    """The shortest exact text of a float: ``72``, ``72.5``, ``1e-05``, ``INF``, ``NaN``."""
    if val != val:
        return "NaN"
    if val == _INF:
        return "INF"
    if val == -_INF:
        return "-INF"
    if val == int(val) and abs(val) < 1e16:
        return str(int(val))
    return repr(val)


def format_date(val: dt.date) -> str:
    """``2024-03-01``."""
    return val.isoformat()


def format_time(val: dt.time) -> str:
    """``08:12:05`` or ``08:12:05.123`` (milliseconds when they are whole, else microseconds)."""
    if val.microsecond == 0:
        return val.isoformat(timespec="seconds")
    if val.microsecond % 1000 == 0:
        return val.isoformat(timespec="milliseconds")
    return val.isoformat(timespec="microseconds")


def tz_name_of(val: dt.datetime) -> str:
    """The Haystack zone name of an aware date-time."""
    return hs_name(val.tzinfo)


def format_datetime_iso(val: dt.datetime) -> str:
    """ISO text with offset (``2024-03-01T08:12:05-05:00``; ``...Z`` for UTC), no zone name."""
    if val.tzinfo is None:
        raise UnknownTimeZoneError("a DateTime must be timezone-aware")
    micro = val.microsecond
    if micro == 0:
        text = val.isoformat(timespec="seconds")
    elif micro % 1000 == 0:
        text = val.isoformat(timespec="milliseconds")
    else:
        text = val.isoformat(timespec="microseconds")
    if text.endswith("+00:00") and val.tzinfo is UTC:
        return text[:-6] + "Z"
    return text


_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\Z")
_DATETIME_RE: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?\Z"
)


def parse_date(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` date; ValueError when malformed or impossible."""
    if not _DATE_RE.match(text):
        raise ValueError(f"invalid date {text!r}")
    return dt.date.fromisoformat(text)


def parse_time(text: str) -> dt.time:
    """``hh:mm[:ss[.fff...]]`` (1 to 9 fraction digits; ``h:mm`` is padded); ValueError if bad."""
    m = _TIME_RE.match(text)
    if not m:
        raise ValueError(f"invalid time {text!r}")
    hour, minute, second, frac = m.groups()
    micro = int((frac + "000000")[:6]) if frac else 0
    return dt.time(int(hour), int(minute), int(second or 0), micro)


def parse_datetime(text: str, tz_name: str | None) -> dt.datetime:
    """An aware date-time from ISO text with offset and an optional Haystack zone name.

    The offset fixes the instant (it settles DST folds); the zone name gives the zone it is
    shown in. ``Z`` without a name is UTC; a bare offset of whole hours is ``GMT±h``. Raises
    ValueError for malformed text and UnknownTimeZoneError for an unknown zone name.
    """
    try:
        val = dt.datetime.fromisoformat(text)
    except ValueError:
        val = _parse_datetime_slow(text)
    if val.tzinfo is None:
        if tz_name is None:
            raise ValueError(f"date-time without offset or zone: {text!r}")
        # A zone name without an offset: local wall time in that zone.
        return val.replace(tzinfo=hs_tz(tz_name))
    if tz_name is None:
        offset = val.utcoffset()
        assert offset is not None
        return val.astimezone(tz_for_offset(int(offset.total_seconds())))
    zone = UTC if tz_name == "UTC" else hs_tz(tz_name)
    return val.astimezone(zone)


def _parse_datetime_slow(text: str) -> dt.datetime:
    # What fromisoformat refuses but real writers emit: 7-9 fraction digits, h:mm hours.
    m = _DATETIME_RE.match(text)
    if not m:
        raise ValueError(f"invalid date-time {text!r}")
    date_s, time_s, off = m.groups()
    date = parse_date(date_s)
    time = parse_time(time_s)
    tzinfo: dt.tzinfo | None = None
    if off == "Z":
        tzinfo = UTC
    elif off:
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        seconds = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        tzinfo = dt.timezone(dt.timedelta(seconds=seconds))
    return dt.datetime.combine(date, time, tzinfo)
