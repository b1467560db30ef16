"""The ``range`` of hisRead: text or values -> a start-inclusive, end-exclusive time span.

Forms (haystack.md §9), all taken in the point's time zone:

- ``today``, ``yesterday``: midnight to the next midnight;
- ``2024-03-01``: that day;
- ``2024-03-01,2024-03-05``: the 1st 00:00 to the 6th 00:00 (the end date is included);
- ``<dateTime>,<dateTime>``: as given;
- ``<dateTime>``: that instant to now.

A client may send the range as a Str (the usual case) or, through a GET query parsed as Zinc,
as a Date or DateTime value; both are accepted. Spaces around the comma are trimmed; a Date
mixed with a DateTime is an error. The current time comes in as an argument.
"""

from __future__ import annotations

import datetime as dt

from gateway.haystack.codecs.zinc import decode_val
from gateway.haystack.errors import HaystackError, ParseError
from gateway.haystack.kinds import Value

__all__ = ["HisRangeError", "parse_his_range"]


class HisRangeError(HaystackError):
    """A range that cannot be understood; the message says what is wrong."""


def _midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tz)


def _day_span(first: dt.date, last: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    if last < first:
        raise HisRangeError(f"range ends ({last}) before it starts ({first})")
    return _midnight(first, tz), _midnight(last + dt.timedelta(days=1), tz)


def _part(text: str) -> dt.date | dt.datetime:
    try:
        val = decode_val(text)
    except ParseError:
        raise HisRangeError(f"cannot read {text!r} as a date or date-time") from None
    if isinstance(val, dt.datetime | dt.date):
        return val
    raise HisRangeError(f"{text!r} is not a date or date-time")


def parse_his_range(
    range_val: Value, tz: dt.tzinfo, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The span ``[start, end)`` of a hisRead range, in the zone ``tz`` of the point."""
    if isinstance(range_val, dt.datetime):
        return range_val.astimezone(tz), now.astimezone(tz)
    if isinstance(range_val, dt.date):
        return _day_span(range_val, range_val, tz)
    if not isinstance(range_val, str):
        raise HisRangeError(
            f'range must be a Str like "today" or "2024-03-01,2024-03-05", got {range_val!r}'
        )
    text = range_val.strip()
    today = now.astimezone(tz).date()
    if text == "today":
        return _day_span(today, today, tz)
    if text == "yesterday":
        day = today - dt.timedelta(days=1)
        return _day_span(day, day, tz)
    if not text:
        raise HisRangeError("range is empty")
    if "," in text:
        first_text, _, last_text = text.partition(",")
        first, last = _part(first_text.strip()), _part(last_text.strip())
        first_is_dt = isinstance(first, dt.datetime)
        if first_is_dt != isinstance(last, dt.datetime):
            raise HisRangeError("range mixes a date with a date-time; use two of the same kind")
        if isinstance(first, dt.datetime) and isinstance(last, dt.datetime):
            start, end = first.astimezone(tz), last.astimezone(tz)
            if end < start:
                raise HisRangeError(f"range ends ({last}) before it starts ({first})")
            return start, end
        assert not isinstance(first, dt.datetime) and not isinstance(last, dt.datetime)
        return _day_span(first, last, tz)
    single = _part(text)
    if isinstance(single, dt.datetime):
        return single.astimezone(tz), now.astimezone(tz)
    return _day_span(single, single, tz)
