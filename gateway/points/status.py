"""Point and connector status: the vocabulary, the roll-up rules and the tags they produce.

Vocabulary (Haystack ``phIoT``; Haxall's connector framework):

- :class:`CurStatus` for ``curStatus``: ``ok``, ``stale`` (the last good value is older than
  ``staleTime``), ``fault`` (configuration or hardware), ``down`` (communication), ``disabled``,
  ``unknown`` (not read yet), and ``remote*`` when a remote system reports its own status.
- :class:`ConnStatus` for ``connStatus``: ``ok``, ``fault``, ``down``, ``disabled``, ``unknown``.
- :class:`WriteStatus` for ``writeStatus``: ``unbound`` (writable, but no connector writes it),
  ``ok``, ``down``, ``fault``, ``disabled``, ``unknown`` (nothing written yet).

Roll-up (:func:`rollup_cur`, :func:`rollup_write`), first rule that applies:

1. the point's configuration is at fault (bad address, unknown register) -> ``fault``;
2. the point has the ``disabled`` marker -> ``disabled``;
3. the connector is not ``ok`` -> the connector's status (``down``, ``fault``, ``disabled``,
   ``unknown``) with ``curErr`` naming the connector, since a dead link says nothing about a
   point's own health;
4. otherwise the point's own state: its own ``fault`` (an exception response for one register)
   overrides ``ok`` of the connector.

Tags: ``curVal`` is valid only while ``curStatus`` is ``ok`` or ``stale`` (Haystack), so
:func:`cur_tags` removes it for every other status; ``curErr`` is set for a failed status and
removed otherwise. The tag dicts use ``REMOVE`` for deletions, ready for
``StorageAdapter.update_records``; :func:`tag_changes` keeps only what differs from the record, so
a steady poll produces no update at all.

Errors map to a status by type in the runner (DownError -> down, FaultError -> fault,
RemoteStatusError(s) -> :meth:`CurStatus.to_remote`); this module never reads error messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.haystack.kinds import REMOVE, Value

__all__ = [
    "ConnStatus",
    "CurState",
    "CurStatus",
    "WriteState",
    "WriteStatus",
    "conn_tags",
    "cur_tags",
    "is_stale",
    "rollup_cur",
    "rollup_write",
    "tag_changes",
    "write_status_tags",
]


class CurStatus(StrEnum):
    """``curStatus`` values."""

    OK = "ok"
    STALE = "stale"
    FAULT = "fault"
    DOWN = "down"
    DISABLED = "disabled"
    UNKNOWN = "unknown"
    REMOTE_FAULT = "remoteFault"
    REMOTE_DOWN = "remoteDown"
    REMOTE_DISABLED = "remoteDisabled"
    REMOTE_UNKNOWN = "remoteUnknown"

    @property
    def has_cur_val(self) -> bool:
        """True for ``ok`` and ``stale``, the only statuses with a valid ``curVal``."""
        return self is CurStatus.OK or self is CurStatus.STALE

    @property
    def is_remote(self) -> bool:
        """True for the ``remote*`` statuses."""
        return self in _LOCAL_OF_REMOTE

    def to_remote(self) -> CurStatus:
        """The remote form of a status a remote system reported (``fault`` -> ``remoteFault``).

        Remote statuses stay as they are; ``ok``/``stale`` reported as an error are unknown.
        """
        if self.is_remote:
            return self
        return _REMOTE_OF_LOCAL.get(self, CurStatus.REMOTE_UNKNOWN)


_REMOTE_OF_LOCAL = {
    CurStatus.FAULT: CurStatus.REMOTE_FAULT,
    CurStatus.DOWN: CurStatus.REMOTE_DOWN,
    CurStatus.DISABLED: CurStatus.REMOTE_DISABLED,
    CurStatus.UNKNOWN: CurStatus.REMOTE_UNKNOWN,
}
_LOCAL_OF_REMOTE = {v: k for k, v in _REMOTE_OF_LOCAL.items()}


class ConnStatus(StrEnum):
    """``connStatus`` values."""

    OK = "ok"
    FAULT = "fault"
    DOWN = "down"
    DISABLED = "disabled"
    UNKNOWN = "unknown"


class WriteStatus(StrEnum):
    """``writeStatus`` values."""

    UNBOUND = "unbound"
    OK = "ok"
    DOWN = "down"
    FAULT = "fault"
    DISABLED = "disabled"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CurState:
    """A point's current value state: status, value (valid when ok/stale) and error text."""

    status: CurStatus = CurStatus.UNKNOWN
    val: Value = None
    err: str | None = None

    @classmethod
    def ok(cls, val: Value) -> CurState:
        """A good reading."""
        return cls(CurStatus.OK, val)

    @classmethod
    def error(cls, status: CurStatus, err: str) -> CurState:
        """A failed reading (``fault``, ``down``, ``remote*``...) with its error text."""
        return cls(status, None, err)

    def stale(self) -> CurState:
        """``ok`` becomes ``stale`` and keeps its value; any other status is unchanged."""
        if self.status is CurStatus.OK:
            return CurState(CurStatus.STALE, self.val)
        return self


@dataclass(frozen=True, slots=True)
class WriteState:
    """A point's write state: status and error text of the last write to the device."""

    status: WriteStatus = WriteStatus.UNKNOWN
    err: str | None = None


def _conn_err(conn: ConnStatus, conn_err: str | None) -> str:
    return f"connector {conn.value}: {conn_err}" if conn_err else f"connector {conn.value}"


def rollup_cur(
    own: CurState,
    conn: ConnStatus,
    *,
    conn_err: str | None = None,
    disabled: bool = False,
    config_fault: str | None = None,
) -> CurState:
    """The state a point shows, from its own state and its connector's (see module rules)."""
    if config_fault:
        return CurState(CurStatus.FAULT, None, config_fault)
    if disabled:
        return CurState(CurStatus.DISABLED, None, "point is disabled")
    if conn is not ConnStatus.OK:
        return CurState(CurStatus(conn.value), None, _conn_err(conn, conn_err))
    return own


def rollup_write(
    own: WriteState,
    conn: ConnStatus,
    *,
    bound: bool = True,
    conn_err: str | None = None,
    disabled: bool = False,
    config_fault: str | None = None,
) -> WriteState:
    """The write state a point shows; ``bound`` is False when no connector writes the point."""
    if not bound:
        return WriteState(WriteStatus.UNBOUND)
    if config_fault:
        return WriteState(WriteStatus.FAULT, config_fault)
    if disabled:
        return WriteState(WriteStatus.DISABLED, "point is disabled")
    if conn is not ConnStatus.OK:
        return WriteState(WriteStatus(conn.value), _conn_err(conn, conn_err))
    return own


def cur_tags(state: CurState) -> dict[str, Value]:
    """``curStatus``, ``curVal`` (removed unless ok/stale) and ``curErr`` (removed when fine)."""
    status = state.status
    good = status.has_cur_val
    return {
        "curStatus": status.value,
        "curVal": state.val if good and state.val is not None else REMOVE,
        "curErr": state.err if state.err and not good else REMOVE,
    }


def write_status_tags(state: WriteState) -> dict[str, Value]:
    """``writeStatus`` and ``writeErr`` (removed unless the status is a failure)."""
    failed = state.status not in (WriteStatus.OK, WriteStatus.UNBOUND, WriteStatus.UNKNOWN)
    return {
        "writeStatus": state.status.value,
        "writeErr": state.err if state.err and failed else REMOVE,
    }


def conn_tags(status: ConnStatus, err: str | None = None) -> dict[str, Value]:
    """``connStatus`` and ``connErr`` (removed when ok)."""
    ok = status is ConnStatus.OK
    return {"connStatus": status.value, "connErr": err if err and not ok else REMOVE}


def tag_changes(rec: Mapping[str, Value], tags: Mapping[str, Value]) -> dict[str, Value]:
    """The part of ``tags`` that changes ``rec``; a ``REMOVE`` stays only for a present tag."""
    changes: dict[str, Value] = {}
    for name, val in tags.items():
        old = rec.get(name)
        if val is REMOVE or val is None:
            if old is not None:
                changes[name] = REMOVE
        elif old is None or old.__class__ is not val.__class__ or old != val:
            changes[name] = val
    return changes


def is_stale(last_ok: float | None, now: float, stale_time: float, in_watch: bool) -> bool:
    """True when an ``ok`` value has turned ``stale``.

    ``last_ok`` is the (monotonic) time of the last good reading, None if never read. A point
    in a watch never goes stale: the watch keeps it refreshed at ``pollTime``, and a failed poll
    shows as ``down``/``fault`` instead (Haxall's rule).
    """
    if in_watch or last_ok is None:
        return False
    return now - last_ok >= stale_time
