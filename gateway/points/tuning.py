"""Connector tuning: poll, stale and write timing, and the connection's retry and timeout.

A tuning record (``connTuning`` marker, Haxall's model) holds time Numbers; absent tags take the
defaults. A point uses the tuning named by its own ``connTuningRef``, else by its connector's
``connTuningRef``, else the default tuning (:func:`resolve_tuning`).

================== =========== ==================== =============================================
tag                default     field                meaning
================== =========== ==================== =============================================
pollTime           10sec       poll_time            poll period of ``curVal``
staleTime          5min        stale_time           ok -> stale when the last good read is older
writeMinTime       (none)      write_min_time       at most one write per window; the latest
                                                    value is sent when the window closes
writeMaxTime       (none)      write_max_time       rewrite the value this long after a write
writeOnStart       off         write_on_start       write at start (else the first value is not)
writeOnOpen        off         write_on_open        rewrite on each closed -> open transition
writeRetryTime     10sec       write_retry_time     retry a failed write after this long [1]
connOpenRetryFreq  10sec       open_retry_base      first reconnect delay (backoff base)
connOpenRetryMax   5min        open_retry_max       longest reconnect delay (backoff cap) [1]
connCallTimeout    10sec       call_timeout         limit of one driver call (open, read...) [1]
================== =========== ==================== =============================================

[1] hs-gateway's own tags (Haxall has none for these). ``writeOnStart``/``writeOnOpen`` are
markers (a Bool is accepted too). Time tags must be Numbers with a time unit (ms, s, sec, min, h,
hr, day); a bare Number or another unit is an error, as is a tag name that is a near miss of one
of these (``polltime``, ``writeMinTim``), so a typo never silently leaves the default in place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from gateway.haystack.kinds import MARKER, Ref, Value
from gateway.points.durations import DurationError, seconds_of, show

__all__ = [
    "DEFAULT_TUNING",
    "TUNING_TAGS",
    "Tuning",
    "TuningError",
    "load_tunings",
    "resolve_tuning",
]


class TuningError(ValueError):
    """A tuning record or reference that cannot be used; the message names the tag and value."""


@dataclass(frozen=True, slots=True)
class Tuning:
    """Resolved tuning; every time is in seconds (``None``: the feature is off)."""

    poll_time: float = 10.0
    stale_time: float = 300.0
    write_min_time: float | None = None
    write_max_time: float | None = None
    write_on_start: bool = False
    write_on_open: bool = False
    write_retry_time: float = 10.0
    open_retry_base: float = 10.0
    open_retry_max: float = 300.0
    call_timeout: float = 10.0
    #: The tuning record this came from (None for the built-in default); not part of equality.
    ref: Ref | None = field(default=None, compare=False)

    @classmethod
    def from_record(cls, rec: Mapping[str, Value], defaults: Tuning | None = None) -> Tuning:
        """The tuning of a tuning record; absent tags come from ``defaults`` (built-ins)."""
        base = defaults if defaults is not None else DEFAULT_TUNING
        where = _label(rec)
        _reject_near_misses(rec, where)
        changes: dict[str, Any] = {}
        for tag, attr in TUNING_TAGS.items():
            val = rec.get(tag)
            if val is None:
                continue
            if attr in _FLAGS:
                changes[attr] = _flag(val, tag, where)
            else:
                try:
                    changes[attr] = seconds_of(val, f"{where}: {tag}")
                except DurationError as exc:
                    raise TuningError(str(exc)) from None
        ref = rec.get("id")
        changes["ref"] = ref if isinstance(ref, Ref) else None
        tuning = replace(base, **changes)
        if tuning.open_retry_max < tuning.open_retry_base:
            raise TuningError(
                f"{where}: connOpenRetryMax ({tuning.open_retry_max:g}s) is shorter than "
                f"connOpenRetryFreq ({tuning.open_retry_base:g}s)"
            )
        return tuning


DEFAULT_TUNING: Final = Tuning()

#: Tag name -> field name.
TUNING_TAGS: Final[dict[str, str]] = {
    "pollTime": "poll_time",
    "staleTime": "stale_time",
    "writeMinTime": "write_min_time",
    "writeMaxTime": "write_max_time",
    "writeOnStart": "write_on_start",
    "writeOnOpen": "write_on_open",
    "writeRetryTime": "write_retry_time",
    "connOpenRetryFreq": "open_retry_base",
    "connOpenRetryMax": "open_retry_max",
    "connCallTimeout": "call_timeout",
}
_FLAGS: Final = frozenset({"write_on_start", "write_on_open"})

# Tags every record may carry, never mistaken for a misspelled tuning tag.
_COMMON_TAGS: Final = frozenset({"id", "dis", "name", "mod", "connTuning", "doc", "connTuningRef"})


def _label(rec: Mapping[str, Value]) -> str:
    ref = rec.get("id")
    return f"tuning @{ref.val}" if isinstance(ref, Ref) else "tuning record"


def _reject_near_misses(rec: Mapping[str, Value], where: str) -> None:
    known = list(TUNING_TAGS)
    for tag in rec:
        if tag in TUNING_TAGS or tag in _COMMON_TAGS:
            continue
        close = difflib.get_close_matches(tag, known, n=1, cutoff=0.8)
        lower = [k for k in known if k.lower() == tag.lower()]
        guess = lower or close
        if guess:
            raise TuningError(f"{where}: unknown tag {tag!r}; did you mean {guess[0]!r}?")


def _flag(val: Value, tag: str, where: str) -> bool:
    if val is MARKER or val is True:
        return True
    if val is False:
        return False
    raise TuningError(f"{where}: {tag} must be a marker (or a Bool), got {show(val)}")


def load_tunings(
    records: Iterable[Mapping[str, Value]], defaults: Tuning | None = None
) -> dict[Ref, Tuning]:
    """Every tuning record (``connTuning`` marker, with an ``id``) by its id."""
    tunings: dict[Ref, Tuning] = {}
    for rec in records:
        ref = rec.get("id")
        if rec.get("connTuning") is MARKER and isinstance(ref, Ref):
            tunings[ref] = Tuning.from_record(rec, defaults)
    return tunings


def _tuning_ref(rec: Mapping[str, Value], what: str) -> Ref | None:
    ref = rec.get("connTuningRef")
    if ref is None:
        return None
    if not isinstance(ref, Ref):
        raise TuningError(f"{what}: connTuningRef must be a Ref, got {show(ref)}")
    return ref


def resolve_tuning(
    point: Mapping[str, Value],
    conn: Mapping[str, Value] | None,
    tunings: Mapping[Ref, Tuning],
    default: Tuning = DEFAULT_TUNING,
) -> Tuning:
    """The tuning of a point: its ``connTuningRef``, else its connector's, else ``default``.

    A reference to a record that is not a known tuning is an error (the runner faults the point
    with this message) rather than a silent fall back to the default.
    """
    for rec, what in ((point, "point"), (conn, "connector")):
        if rec is None:
            continue
        rid = rec.get("id")
        label = f"{what} @{rid.val}" if isinstance(rid, Ref) else what
        ref = _tuning_ref(rec, label)
        if ref is None:
            continue
        tuning = tunings.get(ref)
        if tuning is None:
            raise TuningError(f"{label}: connTuningRef @{ref.val} is not a tuning record")
        return tuning
    return default
