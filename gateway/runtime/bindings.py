"""Which points each connector serves: the connector records and point records, grouped.

:func:`bind` turns the gateway's configuration (connector records, point records, tuning
records) into one :class:`ConnectorBinding` per connector, with every tuning resolved
(point -> connector -> default) and the problems it found:

- a connector without a known protocol marker is skipped and reported;
- a point whose ``<proto>ConnRef`` names no connector of that protocol is an *orphan*: the
  supervisor shows it as ``fault`` with the reason;
- a point's bad ``connTuningRef`` faults that point only (:class:`ConnectorBinding` keeps the
  message), a connector's faults the connector.

Runtime tags (curVal, connStatus, ...) and ``mod`` are stripped from the records, so a
binding compares equal to the one made from the same configuration whatever the runners have
published since: :meth:`ConnectorBinding.__eq__` is what hot reload uses to decide which
connectors to restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.haystack.kinds import Ref, Value
from gateway.points.tuning import DEFAULT_TUNING, Tuning, TuningError, resolve_tuning
from gateway.runtime.registry import DriverKind, DriverRegistry
from gateway.storage.base import RUNTIME_TAGS

__all__ = ["Bindings", "ConnectorBinding", "bind", "config_of"]

_VOLATILE = RUNTIME_TAGS | {"mod"}


def config_of(rec: Mapping[str, Value]) -> dict[str, Value]:
    """A record without its runtime tags (what configuration says about it)."""
    return {k: v for k, v in rec.items() if k not in _VOLATILE and v is not None}


@dataclass(frozen=True, slots=True, eq=False)
class ConnectorBinding:
    """One connector, its points and their tunings."""

    id: Ref
    kind: DriverKind
    conn: Mapping[str, Value]
    points: tuple[Mapping[str, Value], ...]
    tuning: Tuning
    point_tunings: Mapping[Ref, Tuning]
    #: Configuration faults: of the connector (``None`` when fine) and of single points.
    conn_fault: str | None = None
    point_faults: Mapping[Ref, str] = field(default_factory=dict)

    @property
    def point_ids(self) -> list[Ref]:
        """The ids of the connector's points, in configuration order."""
        return [p["id"] for p in self.points if isinstance(p["id"], Ref)]

    def _key(self) -> tuple[object, ...]:
        # Tuning equality ignores the tuning record's id on purpose: only values matter.
        return (
            self.id,
            self.kind.name,
            _frozen(self.conn),
            tuple(_frozen(p) for p in self.points),
            self.tuning,
            tuple(sorted((r.val, t) for r, t in self.point_tunings.items())),
            self.conn_fault,
            tuple(sorted((r.val, m) for r, m in self.point_faults.items())),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConnectorBinding):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self.id)


def _frozen(rec: Mapping[str, Value]) -> tuple[tuple[str, str], ...]:
    # Values compare by kind and value; repr() tells Number(1) from True and is hashable.
    return tuple(sorted((k, f"{type(v).__name__}:{v!r}") for k, v in rec.items()))


@dataclass(frozen=True, slots=True)
class Bindings:
    """The result of :func:`bind`."""

    connectors: dict[Ref, ConnectorBinding]
    #: Points whose connector does not exist: id -> the reason shown in ``curErr``.
    orphans: dict[Ref, str]
    #: Connector records that name no registered protocol: id -> reason.
    unknown: dict[Ref, str]


def bind(
    connectors: Iterable[Mapping[str, Value]],
    points: Iterable[Mapping[str, Value]],
    registry: DriverRegistry,
    tunings: Mapping[Ref, Tuning] | None = None,
    default: Tuning = DEFAULT_TUNING,
) -> Bindings:
    """Group ``points`` under their connectors (see the module docstring)."""
    tunings = tunings or {}
    conns: dict[Ref, tuple[DriverKind, dict[str, Value]]] = {}
    unknown: dict[Ref, str] = {}
    for raw in connectors:
        rec = config_of(raw)
        cid = rec.get("id")
        if not isinstance(cid, Ref):
            continue
        kind = registry.kind_of(rec)
        if kind is None:
            unknown[cid] = "connector has no marker of a registered driver"
            continue
        conns[cid] = (kind, rec)
    members: dict[Ref, list[dict[str, Value]]] = {cid: [] for cid in conns}
    orphans: dict[Ref, str] = {}
    for raw in points:
        rec = config_of(raw)
        pid = rec.get("id")
        if not isinstance(pid, Ref):
            continue
        for kind in registry:
            ref = rec.get(kind.conn_ref_tag)
            if ref is None:
                continue
            owner = conns.get(ref) if isinstance(ref, Ref) else None
            if owner is None or owner[0] is not kind:
                shown = f"@{ref.val}" if isinstance(ref, Ref) else repr(ref)
                orphans[pid] = f"{kind.conn_ref_tag} {shown} names no {kind.name} connector"
            else:
                members[ref].append(rec)
            break
    result: dict[Ref, ConnectorBinding] = {}
    for cid, (kind, conn) in conns.items():
        conn_fault = None
        try:
            conn_tuning = resolve_tuning(conn, None, tunings, default)
        except TuningError as exc:
            conn_tuning, conn_fault = default, str(exc)
        point_tunings: dict[Ref, Tuning] = {}
        point_faults: dict[Ref, str] = {}
        for prec in members[cid]:
            pid = prec["id"]
            assert isinstance(pid, Ref)
            try:
                point_tunings[pid] = resolve_tuning(prec, conn, tunings, default)
            except TuningError as exc:
                point_tunings[pid] = conn_tuning
                point_faults[pid] = str(exc)
        result[cid] = ConnectorBinding(
            id=cid,
            kind=kind,
            conn=conn,
            points=tuple(members[cid]),
            tuning=conn_tuning,
            point_tunings=point_tunings,
            conn_fault=conn_fault,
            point_faults=point_faults,
        )
    return Bindings(result, orphans, unknown)
