"""History collection of a ``his`` point: which readings become samples, and when.

Configured on the point record (Haxall's tags):

- ``hisCollectInterval``: a time Number; a sample on each interval boundary of the point's local
  clock (``15min`` -> :00, :15, :30, :45). It must divide a minute (whole seconds), an hour (whole
  minutes) or a day (whole hours), between 1 s and 1 day, so boundaries line up with midnight;
- ``hisCollectCov``: a sample on each change of value: the marker for any change, or a Number
  deadband for a Number point (unitless or in the point's unit; never converted): a new sample
  when the value moved at least that far from the last sample;
- ``hisCollectCovRateLimit``: COV samples are at least this far apart (default 1 s). A change
  inside the window is not lost: the decision asks to be called again when the window closes,
  and the value at that time is recorded if it still differs;
- ``hisCollectNA``: while ``curStatus`` is not ``ok``, record ``NA`` (once per change for COV,
  on each boundary for intervals) instead of skipping the sample.

Interval and COV may be combined. :meth:`HisCollect.observe` takes the aware ``now`` (wall clock:
samples carry real timestamps), the point's ``curVal`` and ``curStatus``, and returns the new state
with a :class:`HisDecision`: the sample to record (``ts`` in the point's time zone; an interval
sample is stamped with its boundary even if the runner woke a little late) and when to be called
again even if no reading arrives. Internally times are UTC, so nothing depends on how a zone's
daylight saving compares wall-clock times.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final
from zoneinfo import ZoneInfo

from gateway.haystack.errors import UnknownTimeZoneError
from gateway.haystack.kinds import MARKER, NA, Number, Ref, Value
from gateway.haystack.tz import UTC, hs_tz
from gateway.points.durations import DurationError, seconds_of, show
from gateway.points.status import CurStatus

__all__ = ["HisCollect", "HisCollectError", "HisDecision", "HisSample"]

_MIN_INTERVAL: Final = 1.0
_MAX_INTERVAL: Final = 86400.0
_DEFAULT_RATE_LIMIT: Final = 1.0


class HisCollectError(ValueError):
    """A history collection setting that cannot be used (the runner reports it in ``hisErr``)."""


@dataclass(frozen=True, slots=True)
class HisSample:
    """A history sample to record: timestamp in the point's zone, and value."""

    ts: dt.datetime
    val: Value


@dataclass(frozen=True, slots=True)
class HisDecision:
    """What :meth:`HisCollect.observe` decided: a sample to record and when to call again."""

    sample: HisSample | None = None
    wake_at: dt.datetime | None = None


def _utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime, got {now!r}")
    return now.astimezone(UTC)


def _check_interval(secs: float, where: str) -> float:
    if not _MIN_INTERVAL <= secs <= _MAX_INTERVAL:
        raise HisCollectError(f"{where}: hisCollectInterval must be from 1sec to 1day")
    for size, whole, name in ((60, 1, "sec"), (3600, 60, "min"), (86400, 3600, "hr")):
        if secs < size or size == 86400:
            count = secs / whole
            if count != round(count) or (size // whole) % round(count):
                per = {"sec": "a minute", "min": "an hour", "hr": "a day"}[name]
                raise HisCollectError(
                    f"{where}: hisCollectInterval must be a whole number of {name} that "
                    f"divides {per}, got {secs:g}s"
                )
            break
    return secs


def _boundary(now: dt.datetime, tz: ZoneInfo, interval: float, *, after: bool) -> dt.datetime:
    """The interval boundary of the local clock at or before ``now`` (or strictly after)."""
    offset = now.astimezone(tz).utcoffset()
    off = offset.total_seconds() if offset is not None else 0.0
    local = now.timestamp() + off
    k = math.floor(local / interval) + (1 if after else 0)
    return dt.datetime.fromtimestamp(k * interval - off, UTC)


@dataclass(frozen=True, slots=True)
class HisCollect:
    """History collection settings and state of one point."""

    tz: ZoneInfo
    interval: float | None = None
    cov: bool = False
    deadband: float | None = None
    rate_limit: float = _DEFAULT_RATE_LIMIT
    collect_na: bool = False
    #: UTC time and value of the last sample recorded.
    last_ts: dt.datetime | None = None
    last_val: Value = None
    #: The next interval boundary (UTC).
    next_due: dt.datetime | None = None

    @classmethod
    def from_record(cls, rec: Mapping[str, Value]) -> HisCollect | None:
        """The collection settings of a point record; None when it collects nothing."""
        interval_tag = rec.get("hisCollectInterval")
        cov_tag = rec.get("hisCollectCov")
        if interval_tag is None and cov_tag is None:
            return None
        rid = rec.get("id")
        where = f"@{rid.val}" if isinstance(rid, Ref) else "point"
        if rec.get("his") is not MARKER:
            raise HisCollectError(f"{where}: history collection needs the his marker")
        tz_name = rec.get("tz")
        if not isinstance(tz_name, str):
            raise HisCollectError(f"{where}: history collection needs a tz tag")
        try:
            tz = hs_tz(tz_name)
        except UnknownTimeZoneError as exc:
            raise HisCollectError(f"{where}: {exc}") from None
        try:
            interval = None
            if interval_tag is not None:
                secs = seconds_of(interval_tag, f"{where}: hisCollectInterval")
                interval = _check_interval(secs, where)
            rate_tag = rec.get("hisCollectCovRateLimit")
            rate = _DEFAULT_RATE_LIMIT
            if rate_tag is not None:
                rate = seconds_of(rate_tag, f"{where}: hisCollectCovRateLimit")
        except DurationError as exc:
            raise HisCollectError(str(exc)) from None
        deadband = None
        if cov_tag is not None and cov_tag is not MARKER and cov_tag is not True:
            deadband = _deadband(cov_tag, rec, where)
        return cls(
            tz=tz,
            interval=interval,
            cov=cov_tag is not None,
            deadband=deadband,
            rate_limit=rate,
            collect_na=rec.get("hisCollectNA") is MARKER,
        )

    def observe(
        self, now: dt.datetime, val: Value, status: CurStatus
    ) -> tuple[HisCollect, HisDecision]:
        """Decide at ``now`` given the point's ``curVal`` and ``curStatus``."""
        utc_now = _utc(now)
        if status is CurStatus.OK and val is not None:
            current: Value = val
        elif self.collect_na:
            current = NA
        else:
            current = None  # nothing to record while the value is bad
        state = self
        sample_ts: dt.datetime | None = None
        if self.interval is not None:
            due = self.next_due
            if due is None:
                due = _boundary(utc_now, self.tz, self.interval, after=False)
                if due < utc_now:
                    due = _boundary(utc_now, self.tz, self.interval, after=True)
            if utc_now >= due:
                boundary = _boundary(utc_now, self.tz, self.interval, after=False)
                if current is not None and (self.last_ts is None or self.last_ts < boundary):
                    sample_ts = boundary
                due = _boundary(utc_now, self.tz, self.interval, after=True)
            state = replace(state, next_due=due)
        cov_wake = None
        if (
            sample_ts is None
            and self.cov
            and current is not None
            and (self.last_ts is None or self._changed(self.last_val, current))
        ):
            window_end = None
            if self.last_ts is not None:
                window_end = self.last_ts + dt.timedelta(seconds=self.rate_limit)
            if window_end is not None and utc_now < window_end:
                cov_wake = window_end
            else:
                sample_ts = utc_now
        sample = None
        if sample_ts is not None:
            sample = HisSample(sample_ts.astimezone(self.tz), current)
            state = replace(state, last_ts=sample_ts, last_val=current)
        wakes = [t for t in (state.next_due, cov_wake) if t is not None]
        return state, HisDecision(sample, min(wakes) if wakes else None)

    def _changed(self, old: Value, new: Value) -> bool:
        if old.__class__ is not new.__class__:
            return True
        if old == new:
            return False
        if self.deadband is not None and isinstance(old, Number) and isinstance(new, Number):
            # `not <` so that a NaN on either side counts as a change.
            return not abs(new.val - old.val) < self.deadband
        return True


def _deadband(cov: Value, rec: Mapping[str, Value], where: str) -> float:
    if not isinstance(cov, Number):
        raise HisCollectError(
            f"{where}: hisCollectCov must be a marker or a Number deadband, got {show(cov)}"
        )
    if rec.get("kind") != "Number":
        raise HisCollectError(
            f"{where}: a hisCollectCov deadband ({show(cov)}) needs a Number point, "
            f"not kind {show(rec.get('kind'))}"
        )
    unit = rec.get("unit")
    if cov.unit is not None and cov.unit != unit:
        raise HisCollectError(
            f"{where}: hisCollectCov {show(cov)} must be unitless or in the point's unit "
            f"({unit or 'none'}); units are never converted"
        )
    if not math.isfinite(cov.val) or cov.val < 0:
        raise HisCollectError(f"{where}: hisCollectCov must be a deadband >= 0, got {show(cov)}")
    return cov.val
