"""The 17-level priority array of a writable point (pure: time comes in as ``now``).

Levels 1..16 are the commands of people and programs (1 emergency, 8 manual override, 14-16
schedules and control logic); level 17 is the relinquish default. The *effective* value, the one
the connector sends to the device, is the first non-null level from 1 down to 17.

A :class:`PriorityArray` is immutable: :meth:`~PriorityArray.write` and
:meth:`~PriorityArray.expire` return a new array, and ``write`` returns the *same* object when
nothing changed (``new is old``), so a caller knows when there is nothing to persist.

Rules (Haystack, with Haxall's choices where the spec is silent):

- the array belongs to a point record with ``point``, ``writable`` and ``kind`` Number, Bool or
  Str (checked by :meth:`PriorityArray.for_point`); a non-null ``val`` must match the kind;
- a unitless Number takes the point's ``unit``; any other unit is an error (never converted), and
  a point without ``unit`` accepts only unitless Numbers; NaN and infinities are refused, since
  they mean nothing to an actuator;
- ``level`` is an integer 1..17 (an ``int`` or a unitless integral Number, as a request sends it);
- ``who`` is a non-empty string (the web layer fills it with the authenticated identity);
- ``val = None`` relinquishes the level. The level keeps ``who`` and the time, so the array read
  shows who released it, as Haxall does;
- ``duration`` (a time Number such as ``30min``) is allowed at level 8 only and makes a timed
  override that ends by itself at ``now + duration``. Anywhere else, or with a null ``val``, it is
  an error, never silently ignored (Haxall ignores it);
- writing the same ``val`` and ``who`` again is a no-op, unless it changes the expiry: a repeat
  with a ``duration`` restarts the timer, and a repeat without one makes a timed override
  permanent;
- when every level is null, ``effective`` is ``(None, 17)``: Haxall reports ``writeLevel`` 17 and
  no ``writeVal``, and so do :meth:`~PriorityArray.write_tags` and the array read.

Expiry is evaluated against ``now`` everywhere: :meth:`effective`, :meth:`rows` and
:meth:`write_tags` treat an expired override as relinquished even before :meth:`expire` has
dropped it, so every view is consistent whenever it is taken. An expired level keeps its ``who``;
its time becomes the expiry instant (the moment it was released), whoever calls ``expire`` later.

Times are stored in UTC. Aware datetimes in a zone with daylight saving compare and subtract by
wall clock when they share a ``tzinfo``, which would make a 1 h override crossing the autumn
change last 2 h; UTC arithmetic makes every duration exact.

Persistence: :meth:`to_records` gives one Haystack dict per level ever written (``level``,
``val``, ``who``, ``written``, ``expires``), every level included (Haxall keeps only 1, 8 and 17),
and :meth:`from_records` restores exactly that array.

The array read (``pointWrite`` with only ``id``) is :meth:`to_grid`: 17 rows ``level, levelDis,
val, who, expires`` with ``writeVal``/``writeLevel`` in the grid meta. ``levelDis`` is
``"1 (emergency)"``, ``"8 (manual)"``, ``"17 (default)"`` and the bare number elsewhere (Haxall
writes ``"def"`` for 17). ``expires`` is the time left, as Haxall reports it: a Number in ``s``,
rounded up to a whole second so a live override never shows 0.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.haystack.grid import Grid
from gateway.haystack.kinds import MARKER, REMOVE, Number, Ref, Value
from gateway.haystack.tz import UTC
from gateway.points.durations import DurationError, seconds_of, show, time_number

__all__ = [
    "ARRAY_COLUMNS",
    "DEFAULT_LEVEL",
    "LEVELS",
    "MANUAL_LEVEL",
    "WRITABLE_KINDS",
    "LevelEntry",
    "PointWriteError",
    "PriorityArray",
    "level_dis",
]

LEVELS: Final = 17
DEFAULT_LEVEL: Final = 17
MANUAL_LEVEL: Final = 8
WRITABLE_KINDS: Final = ("Number", "Bool", "Str")
ARRAY_COLUMNS: Final = ("level", "levelDis", "val", "who", "expires")

_LEVEL_NAMES: Final = {1: "emergency", MANUAL_LEVEL: "manual", DEFAULT_LEVEL: "default"}
_LEVEL_NUMBERS: Final = tuple(Number(i) for i in range(LEVELS + 1))


class PointWriteError(ValueError):
    """A refused write or a point that cannot be written; the message is meant for a person."""


def level_dis(level: int) -> str:
    """The display text of a level: ``"1 (emergency)"``, ``"8 (manual)"``, ``"17 (default)"``."""
    name = _LEVEL_NAMES.get(level)
    return f"{level} ({name})" if name else str(level)


@dataclass(frozen=True, slots=True)
class LevelEntry:
    """One level: its value (``None`` once relinquished), who wrote it, when, and its expiry."""

    val: Value
    who: str
    written: dt.datetime
    expires: dt.datetime | None = None

    def active(self, now: dt.datetime) -> bool:
        """True when the level holds a value at ``now`` (not relinquished, not expired)."""
        return self.val is not None and (self.expires is None or now < self.expires)


def _point_label(rec: Mapping[str, Value]) -> str:
    ref = rec.get("id")
    if isinstance(ref, Ref):
        return f"@{ref.val}"
    dis = rec.get("dis")
    return f"point {show(dis)}" if isinstance(dis, str) else "the point"


def _utc(now: dt.datetime, what: str = "now") -> dt.datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got {now!r}")
    return now.astimezone(UTC)


def _same(a: Value, b: Value) -> bool:
    # `True == Number(1)` is already False, but `1 == True` is not: compare the kinds too.
    return a.__class__ is b.__class__ and a == b


def _check_level(level: object) -> int:
    if isinstance(level, Number) and level.unit is None and level.is_int():
        level = int(level.val)
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= LEVELS:
        raise PointWriteError(f"level must be an integer from 1 to {LEVELS}, got {show(level)}")
    return level


def _check_who(who: object) -> str:
    if not isinstance(who, str) or not who.strip():
        raise PointWriteError(
            f"who must name the user or program making the write, got {show(who)}"
        )
    return who


@dataclass(frozen=True, slots=True)
class PriorityArray:
    """The priority array of one writable point; build it with :meth:`for_point`."""

    kind: str
    unit: str | None = None
    levels: tuple[LevelEntry | None, ...] = (None,) * LEVELS
    label: str = field(default="the point", compare=False)

    def __post_init__(self) -> None:
        if len(self.levels) != LEVELS:
            raise ValueError(f"a priority array has {LEVELS} levels, got {len(self.levels)}")

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def for_point(cls, rec: Mapping[str, Value]) -> PriorityArray:
        """An empty array for a point record; refuses a record that is not a writable point."""
        label = _point_label(rec)
        if rec.get("point") is not MARKER:
            raise PointWriteError(f"{label} is not a point (no point marker)")
        if rec.get("writable") is not MARKER:
            raise PointWriteError(f"{label} is not writable (no writable marker)")
        kind = rec.get("kind")
        if kind not in WRITABLE_KINDS:
            raise PointWriteError(
                f"{label} has kind {show(kind)}; only Number, Bool and Str points are writable"
            )
        unit = rec.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise PointWriteError(f"{label} has a unit tag that is not a Str: {show(unit)}")
        return cls(kind=kind, unit=unit or None, label=label)

    # -- writes ---------------------------------------------------------------------------

    def write(
        self,
        level: int | Number,
        val: Value,
        who: str,
        *,
        now: dt.datetime,
        duration: Value = None,
    ) -> PriorityArray:
        """The array after writing ``val`` at ``level`` (``None`` relinquishes).

        Returns ``self`` when nothing changed. ``duration``: a time Number, or seconds /
        ``timedelta`` from Python callers; level 8 only.
        """
        lvl = _check_level(level)
        who = _check_who(who)
        utc_now = _utc(now)
        expires = self._expiry(lvl, val, duration, utc_now)
        val = self.check_val(val)
        base = self.expire(utc_now)
        old = base.levels[lvl - 1]
        if (
            old is not None
            and _same(old.val, val)
            and old.who == who
            and old.expires is None
            and expires is None
        ):
            return base
        entry = LevelEntry(val, who, utc_now, expires)
        return base._replace(lvl, entry)

    def relinquish(self, level: int | Number, who: str, *, now: dt.datetime) -> PriorityArray:
        """Shorthand for ``write(level, None, who, now=now)``."""
        return self.write(level, None, who, now=now)

    def _expiry(
        self, level: int, val: Value, duration: Value, now: dt.datetime
    ) -> dt.datetime | None:
        if duration is None:
            return None
        if level != MANUAL_LEVEL:
            raise PointWriteError(
                f"duration is only allowed at level {MANUAL_LEVEL} (manual override), "
                f"got level {level} with duration {show(duration)}"
            )
        if val is None:
            raise PointWriteError(
                f"a relinquish (null val) takes no duration, got {show(duration)}; "
                f"relinquish level {MANUAL_LEVEL} without one"
            )
        try:
            secs = seconds_of(duration, f"level {MANUAL_LEVEL} duration", allow_plain=True)
        except DurationError as exc:
            raise PointWriteError(str(exc)) from None
        return now + dt.timedelta(seconds=secs)

    def check_val(self, val: Value) -> Value:
        """``val`` checked against the point's kind, with the point's unit on a bare Number."""
        if val is None:
            return None
        kind = self.kind
        if kind == "Number":
            if not isinstance(val, Number):
                raise PointWriteError(f"{self.label} is a Number point; cannot write {show(val)}")
            if not math.isfinite(val.val):
                raise PointWriteError(f"{self.label} takes a finite Number, got {show(val)}")
            if val.unit is None:
                return Number(val.val, self.unit) if self.unit else val
            if self.unit is None:
                raise PointWriteError(
                    f"{self.label} has no unit; cannot write {show(val)} (write a bare Number)"
                )
            if val.unit != self.unit:
                raise PointWriteError(
                    f"{self.label} is in {self.unit}; cannot write {show(val)} "
                    "(units are never converted)"
                )
            return val
        if kind == "Bool":
            if not isinstance(val, bool):
                raise PointWriteError(f"{self.label} is a Bool point; cannot write {show(val)}")
            return val
        if not isinstance(val, str):
            raise PointWriteError(f"{self.label} is a Str point; cannot write {show(val)}")
        return val

    def expire(self, now: dt.datetime) -> PriorityArray:
        """The array with every override whose time is up relinquished (``self`` if none)."""
        utc_now = _utc(now)
        levels = self.levels
        changed = False
        new: list[LevelEntry | None] = list(levels)
        for i, entry in enumerate(levels):
            if entry is not None and entry.expires is not None and utc_now >= entry.expires:
                # Released at the expiry instant, so the result does not depend on when
                # the caller noticed.
                new[i] = LevelEntry(None, entry.who, entry.expires, None)
                changed = True
        if not changed:
            return self
        return PriorityArray(self.kind, self.unit, tuple(new), self.label)

    def _replace(self, level: int, entry: LevelEntry) -> PriorityArray:
        levels = list(self.levels)
        levels[level - 1] = entry
        return PriorityArray(self.kind, self.unit, tuple(levels), self.label)

    # -- reading --------------------------------------------------------------------------

    def level(self, level: int) -> LevelEntry | None:
        """The entry at ``level`` (1..17) as stored, or None if never written."""
        return self.levels[_check_level(level) - 1]

    def effective(self, now: dt.datetime) -> tuple[Value, int]:
        """``(val, level)`` of the first active level from 1 to 17; ``(None, 17)`` when none."""
        utc_now = _utc(now)
        for i, entry in enumerate(self.levels):
            if entry is not None and entry.active(utc_now):
                return entry.val, i + 1
        return None, DEFAULT_LEVEL

    def winner(self) -> tuple[Value, int]:
        """``(val, level)`` of the first non-null level as stored, without looking at the clock.

        Use it to detect a change of effective value: ``old.winner() != new.winner()`` after
        :meth:`write` or :meth:`expire` (which drop expired overrides first). Comparing
        ``effective(now)`` would miss the change an expiry makes, because the old array already
        shows an override whose time is up as released.
        """
        for i, entry in enumerate(self.levels):
            if entry is not None and entry.val is not None:
                return entry.val, i + 1
        return None, DEFAULT_LEVEL

    def next_expiry(self) -> dt.datetime | None:
        """The earliest time a timed override ends (UTC), so a runner knows when to wake."""
        times = [e.expires for e in self.levels if e is not None and e.expires is not None]
        return min(times) if times else None

    def is_empty(self) -> bool:
        """True when no level has ever been written."""
        return all(e is None for e in self.levels)

    def rows(self, now: dt.datetime) -> list[dict[str, Value]]:
        """The 17 rows of the array read: ``level, levelDis, val, who, expires``."""
        utc_now = _utc(now)
        rows: list[dict[str, Value]] = []
        for i, entry in enumerate(self.levels):
            lvl = i + 1
            val = who = expires = None
            if entry is not None:
                who = entry.who
                if entry.active(utc_now):
                    val = entry.val
                    if entry.expires is not None:
                        left = (entry.expires - utc_now).total_seconds()
                        expires = time_number(math.ceil(left))
            rows.append(
                {
                    "level": _LEVEL_NUMBERS[lvl],
                    "levelDis": level_dis(lvl),
                    "val": val,
                    "who": who,
                    "expires": expires,
                }
            )
        return rows

    def write_tags(self, now: dt.datetime) -> dict[str, Value]:
        """``writeLevel`` and ``writeVal`` of the winner; no ``writeVal`` when all are null."""
        val, lvl = self.effective(now)
        tags: dict[str, Value] = {}
        if val is not None:
            tags["writeVal"] = val
        tags["writeLevel"] = _LEVEL_NUMBERS[lvl]
        return tags

    def write_tag_changes(self, now: dt.datetime) -> dict[str, Value]:
        """:meth:`write_tags` as a record update: ``writeVal`` is ``REMOVE`` when all are null."""
        tags = self.write_tags(now)
        tags.setdefault("writeVal", REMOVE)
        return tags

    def to_grid(self, now: dt.datetime) -> Grid:
        """The array read: the 17 rows, with ``writeVal``/``writeLevel`` in the grid meta."""
        return Grid(ARRAY_COLUMNS, self.rows(now), self.write_tags(now))

    # -- persistence ----------------------------------------------------------------------

    def to_records(self) -> list[dict[str, Value]]:
        """One Haystack dict per level ever written: ``level, val, who, written, expires``.

        ``val`` is absent for a relinquished level and ``expires`` for a permanent one; every
        value is a Haystack kind, so any codec can store the records.
        """
        records: list[dict[str, Value]] = []
        for i, entry in enumerate(self.levels):
            if entry is None:
                continue
            rec: dict[str, Value] = {"level": _LEVEL_NUMBERS[i + 1]}
            if entry.val is not None:
                rec["val"] = entry.val
            rec["who"] = entry.who
            rec["written"] = entry.written
            if entry.expires is not None:
                rec["expires"] = entry.expires
            records.append(rec)
        return records

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Value]], point: Mapping[str, Value]
    ) -> PriorityArray:
        """The array that :meth:`to_records` saved, for the point record ``point``.

        The stored values are restored as they are (the store is the truth; a point whose kind
        changed since shows the old values until they are rewritten). A malformed record raises
        ``ValueError`` naming the level.
        """
        array = cls.for_point(point)
        levels: list[LevelEntry | None] = [None] * LEVELS
        for rec in records:
            try:
                lvl = _check_level(rec.get("level"))
            except PointWriteError as exc:
                raise ValueError(f"stored priority level: {exc}") from None
            if levels[lvl - 1] is not None:
                raise ValueError(f"stored priority array has level {lvl} twice")
            who = rec.get("who")
            written = rec.get("written")
            expires = rec.get("expires")
            if not isinstance(who, str) or not who:
                raise ValueError(f"stored priority level {lvl} has no who")
            if not isinstance(written, dt.datetime):
                raise ValueError(f"stored priority level {lvl} has no written time")
            if expires is not None and not isinstance(expires, dt.datetime):
                raise ValueError(f"stored priority level {lvl} has a bad expiry: {expires!r}")
            levels[lvl - 1] = LevelEntry(
                rec.get("val"),
                who,
                _utc(written, "written"),
                None if expires is None else _utc(expires, "expires"),
            )
        return PriorityArray(array.kind, array.unit, tuple(levels), array.label)
