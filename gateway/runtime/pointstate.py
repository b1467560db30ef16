"""What a connection runner knows about one point, and the runtime tags that follow from it.

A :class:`PointState` is built once per runner from the point record (its tuning, history
settings and configuration faults are resolved then) and changed only by the runner's
transitions: a reading, a stale sweep, a write outcome. The tags a point shows are always
*computed* from that state and the connector's status with the pure rules of
``gateway.points.status`` (roll-up, ``cur_tags``, ``write_status_tags``); :meth:`PointState.
changes` keeps what was last published and returns only what differs, so a steady poll writes
nothing to the store. After a failed store update, :func:`forget` marks the owned tags unknown,
so the next change sends (or removes) every one of them again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, cast

from drivers.base import DriverError, PointRec, Reading
from gateway.haystack.kinds import MARKER, REMOVE, Ref, Value
from gateway.points.hiscollect import HisCollect, HisCollectError, HisDecision
from gateway.points.status import (
    ConnStatus,
    CurState,
    CurStatus,
    WriteState,
    WriteStatus,
    cur_tags,
    rollup_cur,
    rollup_write,
    tag_changes,
    write_status_tags,
)
from gateway.points.tuning import Tuning
from gateway.points.writes import WriteThrottle

__all__ = [
    "CONN_TAGS",
    "POINT_TAGS",
    "PointState",
    "cur_state_of",
    "forget",
    "owned",
    "publish",
    "write_state_of",
]

#: ``remoteDown`` -> ``down`` and so on: a write outcome has no remote statuses.
_LOCAL_WRITE = {
    "remoteFault": WriteStatus.FAULT,
    "remoteDown": WriteStatus.DOWN,
    "remoteDisabled": WriteStatus.DISABLED,
    "remoteUnknown": WriteStatus.UNKNOWN,
}


#: The runtime tags a runner writes on its connector and on its points.
CONN_TAGS: Final = frozenset({"connStatus", "connErr", "connState"})
POINT_TAGS: Final = frozenset(
    {"curVal", "curStatus", "curErr", "writeStatus", "writeErr", "hisStatus", "hisErr"}
)


def owned(rec: Mapping[str, Value] | None, names: frozenset[str]) -> dict[str, Value]:
    """The runtime tags of ``rec`` this runner owns (what it must replace or remove)."""
    if rec is None:
        return {}
    return {k: v for k, v in rec.items() if k in names and v is not None}


class _Unknown:
    """What the store holds for a tag after a failed update: unknown, so sent again."""

    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN = cast(Value, _Unknown())


def forget(published: dict[str, Value], names: frozenset[str]) -> None:
    """After a failed update: every owned tag is sent (or removed) again next time."""
    for name in names:
        published[name] = _UNKNOWN


def publish(published: dict[str, Value], tags: Mapping[str, Value]) -> dict[str, Value]:
    """The part of ``tags`` that differs from ``published``, which is updated to match."""
    changes = tag_changes(published, tags)
    for name, val in changes.items():
        if val is REMOVE:
            published.pop(name, None)
        else:
            published[name] = val
    return changes


def cur_state_of(reading: Reading) -> CurState:
    """The point's own state after a reading."""
    err = reading.err
    if err is None:
        return CurState(CurStatus.OK, reading.val)
    return CurState(_cur_status(err), None, error_text(err))


def write_state_of(err: DriverError | None) -> WriteState:
    """The point's own write state after a write (``None``: it succeeded)."""
    if err is None:
        return WriteState(WriteStatus.OK)
    status = _LOCAL_WRITE.get(err.status)
    if status is None:
        try:
            status = WriteStatus(err.status)
        except ValueError:
            status = WriteStatus.FAULT
    return WriteState(status, error_text(err))


def _cur_status(err: DriverError) -> CurStatus:
    try:
        return CurStatus(err.status)
    except ValueError:
        return CurStatus.FAULT


def error_text(err: BaseException) -> str:
    """An error's message, or its type's name when it has none (``curErr``, ``writeErr``...)."""
    return str(err) or type(err).__name__


@dataclass(slots=True, eq=False)
class PointState:
    """One point of a connector: configuration resolved at start, then the runtime state."""

    id: Ref
    rec: PointRec
    tuning: Tuning
    #: The point reads a value (has ``<proto>Cur``).
    readable: bool
    #: The point is ``writable`` (it shows writeStatus) and ``bound`` (has ``<proto>Write``).
    writable: bool
    bound: bool
    disabled: bool = False
    config_fault: str | None = None
    his: HisCollect | None = None
    his_err: str | None = None
    own: CurState = field(default_factory=CurState)
    last_ok: float | None = None
    write_own: WriteState = field(default_factory=WriteState)
    throttle: WriteThrottle | None = None
    #: Trio time of the last change of effective value not yet acknowledged by the device.
    change_at: float | None = None
    #: The runtime tags as last published to the store.
    published: dict[str, Value] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        rec: PointRec,
        *,
        id: Ref,
        tuning: Tuning,
        cur_tag: str,
        write_tag: str,
        config_fault: str | None = None,
    ) -> PointState:
        """The state of a point at runner start (nothing read, nothing written)."""
        readable = rec.get(cur_tag) is not None
        writable = rec.get("writable") is MARKER
        bound = writable and rec.get(write_tag) is not None
        if config_fault is None and not readable and not bound:
            config_fault = f"point has neither {cur_tag} nor {write_tag} (with writable)"
        his: HisCollect | None = None
        his_err = None
        try:
            his = HisCollect.from_record(rec)
        except HisCollectError as exc:
            his_err = str(exc)
        state = cls(
            id=id,
            rec=rec,
            tuning=tuning,
            readable=readable,
            writable=writable,
            bound=bound,
            disabled=rec.get("disabled") is MARKER,
            config_fault=config_fault,
            his=his,
            his_err=his_err,
        )
        if bound and config_fault is None:
            state.throttle = WriteThrottle.from_tuning(tuning)
        return state

    @property
    def pollable(self) -> bool:
        """True when the runner reads the point."""
        return self.readable and self.config_fault is None and not self.disabled

    def shown(self, conn: ConnStatus, conn_err: str | None) -> CurState:
        """The current state the point shows, rolled up with its connector's."""
        return rollup_cur(
            self.own,
            conn,
            conn_err=conn_err,
            disabled=self.disabled,
            config_fault=self.config_fault,
        )

    def tags(self, conn: ConnStatus, conn_err: str | None) -> dict[str, Value]:
        """Every runtime tag the runner owns for this point, as it should be now."""
        tags = cur_tags(self.shown(conn, conn_err))
        if self.writable:
            write = rollup_write(
                self.write_own,
                conn,
                bound=self.bound,
                conn_err=conn_err,
                disabled=self.disabled,
                config_fault=self.config_fault,
            )
            tags.update(write_status_tags(write))
        if self.his_err is not None:
            tags["hisStatus"] = "fault"
            tags["hisErr"] = self.his_err
        elif self.his is not None:
            tags["hisStatus"] = "ok"
            tags["hisErr"] = REMOVE
        return tags

    def changes(self, tags: Mapping[str, Value]) -> dict[str, Value]:
        """The part of ``tags`` not yet published; it counts as published from now on."""
        return publish(self.published, tags)

    def observe_his(
        self, now_wall: dt.datetime, conn: ConnStatus, conn_err: str | None
    ) -> HisDecision:
        """Feed history collection the value and status the point shows now."""
        his = self.his
        if his is None:
            return HisDecision()
        shown = self.shown(conn, conn_err)
        if shown.status is CurStatus.UNKNOWN:
            # Not read yet (start, reload): no sample, not even NA.
            return HisDecision()
        self.his, decision = his.observe(now_wall, shown.val, shown.status)
        return decision
