"""Time Numbers (``30min``, ``10sec``, ``250ms``) as seconds, for tuning records and timed writes.

Haystack writes durations as Numbers with a time unit. The point layer accepts exactly these
units and nothing else, so a typo such as ``10kW`` in a tuning record or a ``duration`` of ``5``
(no unit: seconds? minutes?) is an error that names the value, never a silent guess:

======  =========
unit    seconds
======  =========
ms      0.001
s, sec  1
min     60
h, hr   3600
day     86400
======  =========

Also here: :func:`show`, the short text of a value used in every error message of the point layer
(``5kW``, ``true``, ``"auto"``), so messages read like the Zinc an integrator typed.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Final

from gateway.haystack.codecs.common import format_float
from gateway.haystack.kinds import Number, Value, kind_name

__all__ = ["TIME_UNITS", "DurationError", "seconds_of", "show", "time_number"]

#: Seconds per accepted time unit symbol.
TIME_UNITS: Final[dict[str, float]] = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "day": 86400.0,
}

_UNIT_LIST: Final = ", ".join(TIME_UNITS)


class DurationError(ValueError):
    """A value that is not a usable duration; the message names the value and what was wanted."""


def show(val: Value) -> str:
    """A short, Zinc-like text of a value for error messages (``5kW``, ``true``, ``"auto"``)."""
    if val is None:
        return "null"
    if isinstance(val, Number):
        return format_float(val.val) + (val.unit or "")
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, str):
        return '"' + val + '"'
    if isinstance(val, dt.timedelta):
        return f"{val.total_seconds():g}s"
    if isinstance(val, int | float):
        return format_float(float(val))
    try:
        return f"{val} ({kind_name(val)})"
    except TypeError:
        return repr(val)


def seconds_of(val: Value, what: str, *, allow_plain: bool = False) -> float:
    """The seconds of a time Number; ``what`` names the setting in the error message.

    With ``allow_plain``, a Python ``int``/``float`` (seconds) or ``timedelta`` is accepted too:
    that is for callers in Python, never for values that came from a record or a request, where
    a bare number has no unit to say what it means.
    """
    if isinstance(val, Number):
        factor = TIME_UNITS.get(val.unit or "")
        if factor is None:
            raise DurationError(f"{what} must be a time Number ({_UNIT_LIST}), got {show(val)}")
        secs = val.val * factor
    elif allow_plain and isinstance(val, dt.timedelta):
        secs = val.total_seconds()
    elif allow_plain and isinstance(val, int | float) and not isinstance(val, bool):
        secs = float(val)
    else:
        raise DurationError(f"{what} must be a time Number ({_UNIT_LIST}), got {show(val)}")
    if not math.isfinite(secs) or secs <= 0:
        raise DurationError(f"{what} must be a positive time, got {show(val)}")
    return secs


def time_number(seconds: float) -> Number:
    """``seconds`` as a Number in ``s`` (the unit the array read reports time left in)."""
    return Number(seconds, "s")
