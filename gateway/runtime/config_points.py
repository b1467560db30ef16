"""The point database: sites, equips, connectors, points and tuning records from ``points/*.trio``.

Every record needs an ``id`` (a Ref, unique across all files). Its type comes from one marker:

============  ===================================================================
marker        record
============  ===================================================================
``site``      a site (``tz`` recommended); equips and points name it in ``siteRef``
``equip``     an equipment; points name it in ``equipRef``
``conn``      a connector, with exactly one protocol marker (``modbusConn``) and ``uri``
``point``     a point: ``kind`` (Number, Bool, Str), ``unit`` (Numbers), and for a device
              point ``<proto>ConnRef`` plus ``<proto>Cur`` / ``<proto>Write``
``connTuning``  a tuning record (``pollTime``, ``staleTime``... of gateway.points.tuning),
              named by ``connTuningRef`` on points or connectors, or by ``[tuning] default``
              in gateway.toml; a tag it leaves out comes from the default tuning
============  ===================================================================

Other records (a ``floor``, a ``space``) are loaded as they are. Problems found, each naming
the file, line and tag: a record that does not parse, a missing or duplicate id, two type
markers on one record, a runtime tag (``curVal``, ``connStatus``...: the gateway sets those),
a tag that looks like a misspelling of one the gateway reads (``modbusCurr``), a ``*Ref`` that
names no record or a record of the wrong type, a point without a usable ``kind``, a unit on a
non-Number, a bad ``tz``, bad history collection tags, bad tuning tags, and whatever the
protocol's checks (:mod:`gateway.runtime.config_modbus`) find.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol

from drivers.modbus.regmap import RegisterMap
from gateway.haystack.errors import UnknownTimeZoneError
from gateway.haystack.kinds import MARKER, Ref, Value
from gateway.haystack.tz import hs_tz
from gateway.points.hiscollect import HisCollect, HisCollectError
from gateway.points.tuning import DEFAULT_TUNING, TUNING_TAGS, Tuning, TuningError
from gateway.runtime.config_modbus import ModbusCheck
from gateway.runtime.config_toml import Problem
from gateway.runtime.config_trio import SourcedRecord, read_trio
from gateway.storage.base import RUNTIME_TAGS

__all__ = ["TYPE_MARKERS", "PointDatabase", "ProtocolCheck", "load_database"]

TYPE_MARKERS: Final = ("site", "equip", "conn", "point", "connTuning")
POINT_KINDS: Final = ("Number", "Bool", "Str")
#: Which record type a ref tag must name.
REF_TARGETS: Final = {"siteRef": "site", "equipRef": "equip", "connTuningRef": "connTuning"}
HIS_TAGS: Final = ("hisCollectInterval", "hisCollectCov", "hisCollectCovRateLimit", "hisCollectNA")
#: Tags the gateway reads; an unknown tag close to one of these is reported as a misspelling.
GENERIC_TAGS: Final = frozenset(
    {
        *TYPE_MARKERS,
        *REF_TARGETS,
        *HIS_TAGS,
        *TUNING_TAGS,
        "id",
        "dis",
        "navName",
        "kind",
        "unit",
        "tz",
        "his",
        "writable",
        "cur",
        "disabled",
        "uri",
    }
)
_CONN_MARKER: Final = re.compile(r"([a-z][A-Za-z0-9]*)Conn")
_CONN_REF: Final = re.compile(r"([a-z][A-Za-z0-9]*)ConnRef")


class ProtocolCheck(Protocol):
    """The configuration checks of one protocol (``modbus``)."""

    @property
    def name(self) -> str: ...
    @property
    def conn_tags(self) -> tuple[str, ...]: ...
    @property
    def point_tags(self) -> tuple[str, ...]: ...
    def problems(self) -> list[Problem]: ...
    def check_connector(
        self, conn: SourcedRecord, maps_out: dict[str, RegisterMap]
    ) -> list[Problem]: ...
    def check_point(self, point: SourcedRecord, conn: SourcedRecord) -> list[Problem]: ...


#: Protocol checks by name, built for one configuration directory.
PROTOCOLS: Final[dict[str, Callable[[Path], ProtocolCheck]]] = {
    "modbus": lambda config_dir: ModbusCheck(config_dir / "maps"),
}


@dataclass(frozen=True, slots=True)
class PointDatabase:
    """Every record of ``points/*.trio`` (file order), the register maps and the tunings."""

    records: tuple[SourcedRecord, ...] = ()
    register_maps: Mapping[str, RegisterMap] = field(default_factory=dict)
    tunings: Mapping[Ref, Tuning] = field(default_factory=dict)
    default_tuning: Tuning = DEFAULT_TUNING

    def of_type(self, marker: str) -> tuple[Mapping[str, Value], ...]:
        """The records carrying ``marker`` (``site``, ``conn``, ``point``...)."""
        return tuple(s.rec for s in self.records if s.rec.get(marker) is MARKER)

    @property
    def connectors(self) -> tuple[Mapping[str, Value], ...]:
        """The connector records."""
        return self.of_type("conn")

    @property
    def points(self) -> tuple[Mapping[str, Value], ...]:
        """The point records."""
        return self.of_type("point")

    @property
    def all_records(self) -> tuple[Mapping[str, Value], ...]:
        """Every record, for the store."""
        return tuple(s.rec for s in self.records)

    def origin(self, ref: Ref) -> SourcedRecord | None:
        """Where the record ``ref`` was written."""
        return next((s for s in self.records if s.rec.get("id") == ref), None)


def load_database(
    config_dir: Path,
    default_tuning: Ref | None = None,
    on_bad_default: Callable[[str], None] | None = None,
) -> tuple[PointDatabase, list[Problem]]:
    """Read and check ``points/*.trio`` and ``maps/`` under ``config_dir``."""
    problems: list[Problem] = []
    records: list[SourcedRecord] = []
    points_dir = config_dir / "points"
    files = sorted(points_dir.glob("*.trio")) if points_dir.is_dir() else []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 1, None, f"cannot read: {exc}"))
            continue
        found, bad = read_trio(text, str(path))
        records.extend(found)
        problems.extend(bad)
    checks = {name: make(config_dir) for name, make in PROTOCOLS.items()}
    for check in checks.values():
        problems.extend(check.problems())
    checker = _Checker(records, checks, problems)
    checker.run()
    tunings, default = checker.tunings(default_tuning, on_bad_default)
    db = PointDatabase(
        records=tuple(records),
        register_maps=MappingProxyType(checker.maps),
        tunings=MappingProxyType(tunings),
        default_tuning=default,
    )
    return db, problems


def _show_ref(ref: Ref) -> str:
    return f"@{ref.val}"


class _Checker:
    """Checks of the whole set of records; problems go to ``problems``."""

    def __init__(
        self,
        records: list[SourcedRecord],
        checks: Mapping[str, ProtocolCheck],
        problems: list[Problem],
    ) -> None:
        self.records = records
        self.checks = checks
        self.problems = problems
        self.by_id: dict[Ref, SourcedRecord] = {}
        self.maps: dict[str, RegisterMap] = {}
        known = set(GENERIC_TAGS)
        for check in checks.values():
            known.update(check.conn_tags, check.point_tags)
        self.known_tags = frozenset(known)
        self._known_lower = {t.lower(): t for t in known}

    def report(self, rec: SourcedRecord, tag: str | None, message: str) -> None:
        self.problems.append(rec.problem(tag, message))

    def run(self) -> None:
        for rec in self.records:
            self._identify(rec)
        for rec in self.records:
            self._check_tags(rec)
            self._check_refs(rec)
        for rec in self.records:
            if rec.rec.get("conn") is MARKER:
                self._check_connector(rec)
        for rec in self.records:
            if rec.rec.get("point") is MARKER:
                self._check_point(rec)
            elif rec.rec.get("site") is MARKER:
                self._check_tz(rec)

    def _identify(self, rec: SourcedRecord) -> None:
        rid = rec.rec.get("id")
        if rid is None:
            self.report(rec, None, "a record needs an id (like id: @ahu1-dat)")
        elif not isinstance(rid, Ref):
            self.report(rec, "id", "must be a Ref (like @ahu1-dat)")
        elif rid in self.by_id:
            first = self.by_id[rid]
            self.report(
                rec, "id", f"duplicate id {_show_ref(rid)} (first in {first.file}:{first.line})"
            )
        else:
            self.by_id[rid] = rec
        types = [m for m in TYPE_MARKERS if rec.rec.get(m) is MARKER]
        if len(types) > 1:
            self.report(rec, types[1], f"a record is one of {', '.join(types)}, not several")

    def _check_tags(self, rec: SourcedRecord) -> None:
        for tag in rec.rec:
            if tag in RUNTIME_TAGS:
                self.report(rec, tag, "is set by the gateway at run time, not in configuration")
            elif tag not in self.known_tags and not _CONN_MARKER.fullmatch(tag):
                guess = self._near_miss(tag)
                if guess is not None:
                    self.report(rec, tag, f"unknown tag (did you mean {guess!r}?)")

    def _near_miss(self, tag: str) -> str | None:
        same = self._known_lower.get(tag.lower())
        if same is not None:
            return same
        if len(tag) < 5:
            return None
        close = difflib.get_close_matches(tag, self.known_tags, n=1, cutoff=0.85)
        return close[0] if close else None

    def _check_refs(self, rec: SourcedRecord) -> None:
        for tag, val in rec.rec.items():
            if not tag.endswith("Ref") or tag == "id":
                continue
            if not isinstance(val, Ref):
                self.report(rec, tag, f"must be a Ref (like @{tag[:-3]}1)")
                continue
            target = self.by_id.get(val)
            if target is None:
                self.report(rec, tag, f"{_show_ref(val)} names no record")
                continue
            want = REF_TARGETS.get(tag)
            if want is None and _CONN_REF.fullmatch(tag):
                want = "conn"
            if want is not None and target.rec.get(want) is not MARKER:
                self.report(rec, tag, f"{_show_ref(val)} is not a {want} record")

    def _check_connector(self, rec: SourcedRecord) -> None:
        protos = [m.group(1) for t in rec.rec if (m := _CONN_MARKER.fullmatch(t))]
        protos = [p for p in protos if rec.rec.get(f"{p}Conn") is MARKER]
        known = ", ".join(f"{n}Conn" for n in self.checks)
        if not protos:
            self.report(rec, "conn", f"a connector needs a protocol marker ({known})")
            return
        if len(protos) > 1:
            self.report(rec, f"{protos[1]}Conn", "a connector speaks one protocol")
            return
        check = self.checks.get(protos[0])
        if check is None:
            self.report(rec, f"{protos[0]}Conn", f"no driver for this protocol (known: {known})")
            return
        self.problems.extend(check.check_connector(rec, self.maps))

    def _check_point(self, rec: SourcedRecord) -> None:
        point = rec.rec
        kind = point.get("kind")
        if kind is None:
            self.report(rec, None, "a point needs a kind (Number, Bool or Str)")
        elif kind not in POINT_KINDS:
            self.report(rec, "kind", f"must be Number, Bool or Str, not {kind!r}")
        if point.get("unit") is not None and kind != "Number":
            self.report(rec, "unit", "only a Number point has a unit")
        self._check_tz(rec)
        if point.get("tz") is None or isinstance(point.get("tz"), str):
            try:
                HisCollect.from_record(point)
            except HisCollectError as exc:
                self.report(rec, _tag_in(str(exc), HIS_TAGS, "his"), str(exc))
        self._check_site_of_equip(rec)
        self._check_protocol_point(rec)

    def _check_tz(self, rec: SourcedRecord) -> None:
        tz = rec.rec.get("tz")
        if tz is None:
            return
        if not isinstance(tz, str):
            self.report(rec, "tz", "must be a Str (a Haystack city such as New_York)")
            return
        try:
            hs_tz(tz)
        except UnknownTimeZoneError:
            self.report(rec, "tz", f"unknown time zone {tz!r}")

    def _check_site_of_equip(self, rec: SourcedRecord) -> None:
        site, equip_ref = rec.rec.get("siteRef"), rec.rec.get("equipRef")
        if not isinstance(site, Ref) or not isinstance(equip_ref, Ref):
            return
        equip = self.by_id.get(equip_ref)
        equip_site = equip.rec.get("siteRef") if equip is not None else None
        if isinstance(equip_site, Ref) and equip_site != site:
            self.report(
                rec,
                "siteRef",
                f"{_show_ref(site)} but its equip {_show_ref(equip_ref)} "
                f"is on {_show_ref(equip_site)}",
            )

    def _check_protocol_point(self, rec: SourcedRecord) -> None:
        point = rec.rec
        refs = [m.group(1) for t in point if (m := _CONN_REF.fullmatch(t))]
        if len(refs) > 1:
            self.report(rec, f"{refs[1]}ConnRef", "a point belongs to one connector")
            return
        if not refs:
            for each in self.checks.values():
                for tag in each.point_tags:
                    if tag in point and tag != f"{each.name}Point":
                        self.report(rec, tag, f"needs {each.name}ConnRef (its connector)")
            return
        proto = refs[0]
        ref_tag = f"{proto}ConnRef"
        check = self.checks.get(proto)
        if check is None:
            self.report(rec, ref_tag, f"no driver for {proto} (known: {', '.join(self.checks)})")
            return
        conn_ref = point.get(ref_tag)
        if not isinstance(conn_ref, Ref):
            return  # reported by _check_refs
        conn = self.by_id.get(conn_ref)
        if conn is None or conn.rec.get(f"{proto}Conn") is not MARKER:
            if conn is not None and conn.rec.get("conn") is MARKER:
                self.report(rec, ref_tag, f"{_show_ref(conn_ref)} is not a {proto} connector")
            return  # an unknown ref or a non-connector was reported by _check_refs
        self.problems.extend(check.check_point(rec, conn))

    def tunings(
        self, default_ref: Ref | None, on_bad_default: Callable[[str], None] | None
    ) -> tuple[dict[Ref, Tuning], Tuning]:
        """Every tuning record, made over the default tuning; and the default tuning."""
        default = DEFAULT_TUNING
        default_src: SourcedRecord | None = None
        if default_ref is not None:
            found = self.by_id.get(default_ref)
            if found is None or found.rec.get("connTuning") is not MARKER:
                if on_bad_default is not None:
                    what = "names no record" if found is None else "is not a connTuning record"
                    on_bad_default(f"{_show_ref(default_ref)} {what}")
            else:
                default_src = found
                default = self._tuning(found, DEFAULT_TUNING) or DEFAULT_TUNING
        tunings: dict[Ref, Tuning] = {}
        for src in self.records:
            ref = src.rec.get("id")
            if src.rec.get("connTuning") is not MARKER or not isinstance(ref, Ref):
                continue
            tuning = default if src is default_src else self._tuning(src, default)
            if tuning is not None:
                tunings[ref] = tuning
        return tunings, default

    def _tuning(self, src: SourcedRecord, base: Tuning) -> Tuning | None:
        try:
            return Tuning.from_record(src.rec, base)
        except TuningError as exc:
            tags = [t for t in src.rec if t not in ("id", "dis", "connTuning")]
            self.report(src, _tag_in(str(exc), tags, None), str(exc))
            return None


def _tag_in(message: str, tags: Iterable[str], default: str | None) -> str | None:
    """The first of ``tags`` named as a word in ``message`` (to place a library's error)."""
    for tag in tags:
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(tag)}(?![A-Za-z0-9_])", message):
            return tag
    return default
