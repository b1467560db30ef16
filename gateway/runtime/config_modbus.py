"""Configuration checks of Modbus connectors and points, and the register maps under ``maps/``.

A Modbus connector names its register map with ``modbusRegMapUri`` (Haxall's tag; the runtime
also accepts ``modbusRegMap``): a Str or Uri holding a path relative to ``maps/``, such as
``"meter.csv"`` (an optional ``file:`` prefix is ignored). Every CSV under ``maps/`` is parsed
when the configuration loads, used or not, so a broken map is reported before any connector
needs it.

Checked here, each problem naming the file, line and tag (or CSV column):

- a map that does not parse (``RegisterMap.parse`` errors carry their CSV line and column);
- a connector whose ``uri`` is not a Modbus URI, whose map is missing, whose other tags the
  driver refuses (``modbusSlave`` 0..255, ``modbusBlockMax``, timeouts: the very constructor
  the runtime uses judges them), or that shares a serial port with different line settings;
- a point whose ``modbusCur`` / ``modbusWrite`` names no row of the map (with a "did you mean"),
  reads a write-only row or writes a read-only one, writes without the ``writable`` marker,
  names no register at all, or whose ``kind`` / ``unit`` does not fit the row: Modbus values
  are Numbers or Bools, a Bool point needs a bit or an unscaled integer register, and a Number
  point has the unit of its row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast

from drivers.base import FaultError
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.link import LinkRegistry
from drivers.modbus.regmap import RegisterMap, RegisterMapError, RegisterRow
from drivers.modbus.uri import ModbusEndpoint, ModbusUriError, parse_modbus_uri
from gateway.haystack.kinds import MARKER, Uri, Value
from gateway.runtime.config_toml import Problem, did_you_mean
from gateway.runtime.config_trio import SourcedRecord

__all__ = ["MAP_TAGS", "ModbusCheck", "read_register_maps"]

#: The connector tags naming the register map, in the order the runtime reads them.
MAP_TAGS: Final = ("modbusRegMapUri", "modbusRegMap")
CONN_TAGS: Final = (
    "modbusConn",
    "modbusSlave",
    "modbusBlockGap",
    "modbusBlockMax",
    "modbusReadTimeout",
    "modbusWriteTimeout",
    *MAP_TAGS,
)
POINT_TAGS: Final = ("modbusPoint", "modbusConnRef", "modbusCur", "modbusWrite")


def read_register_maps(maps_dir: Path) -> tuple[dict[str, RegisterMap], dict[str, Problem]]:
    """Every ``*.csv`` under ``maps_dir`` by its relative path; and the files that failed."""
    maps: dict[str, RegisterMap] = {}
    failed: dict[str, Problem] = {}
    if not maps_dir.is_dir():
        return maps, failed
    for path in sorted(maps_dir.rglob("*.csv")):
        name = path.relative_to(maps_dir).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
            maps[name] = RegisterMap.parse(text, source=str(path))
        except RegisterMapError as exc:
            failed[name] = Problem(str(path), exc.line, exc.column, exc.msg)
        except (OSError, UnicodeDecodeError) as exc:
            failed[name] = Problem(str(path), 1, None, f"cannot read the register map: {exc}")
    return maps, failed


class ModbusCheck:
    """The Modbus checks of one configuration (its maps, and the buses seen so far)."""

    name: Final = "modbus"
    conn_tags: Final = CONN_TAGS
    point_tags: Final = POINT_TAGS

    def __init__(self, maps_dir: Path) -> None:
        self.maps_dir = maps_dir
        self.maps, self.failed = read_register_maps(maps_dir)
        self._buses: dict[str, tuple[ModbusEndpoint, SourcedRecord]] = {}
        #: Each connector's map, for its points (None: the connector's map is unusable).
        self._conn_maps: dict[int, RegisterMap | None] = {}

    def problems(self) -> list[Problem]:
        """The problems of the map files themselves."""
        return list(self.failed.values())

    def register_maps(self) -> dict[str, RegisterMap]:
        """The parsed maps by every name a connector used for them, and by file name."""
        return dict(self.maps)

    def alias(self, name: str) -> str:
        """The file name a connector's ``modbusRegMapUri`` value refers to."""
        return name.removeprefix("file:")

    def check_connector(
        self, conn: SourcedRecord, maps_out: dict[str, RegisterMap]
    ) -> list[Problem]:
        """Problems of one ``modbusConn`` connector; its map goes to ``maps_out``."""
        problems: list[Problem] = []
        rec = conn.rec
        endpoint = self._endpoint(conn, problems)
        regmap = self._map_of(conn, problems, maps_out)
        self._conn_maps[id(conn)] = regmap
        if endpoint is None or regmap is None:
            return problems
        try:
            ModbusDriver(rec, regmap, aio=cast(Any, None), links=LinkRegistry())
        except FaultError as exc:
            tag = next((t for t in CONN_TAGS if t in str(exc)), None)
            problems.append(conn.problem(tag, str(exc)))
        return problems

    def _endpoint(self, conn: SourcedRecord, problems: list[Problem]) -> ModbusEndpoint | None:
        uri = conn.rec.get("uri")
        if not isinstance(uri, str | Uri) or not str(uri):
            problems.append(conn.problem("uri", "a Modbus connector needs a uri"))
            return None
        try:
            endpoint = parse_modbus_uri(str(uri))
        except ModbusUriError as exc:
            problems.append(conn.problem("uri", exc.problem + f" in {str(uri)!r}"))
            return None
        seen = self._buses.get(endpoint.key)
        if seen is None:
            self._buses[endpoint.key] = (endpoint, conn)
        elif seen[0] != endpoint:
            other = seen[1]
            problems.append(
                conn.problem(
                    "uri",
                    f"{endpoint.key} is also used by {other.file}:{other.line} as {seen[0]}; "
                    "every connector on one bus must use the same line settings",
                )
            )
        return endpoint

    def _map_of(
        self, conn: SourcedRecord, problems: list[Problem], maps_out: dict[str, RegisterMap]
    ) -> RegisterMap | None:
        tag = next((t for t in MAP_TAGS if conn.rec.get(t) is not None), None)
        raw = conn.rec.get(tag) if tag else None
        if tag is None or not isinstance(raw, str | Uri) or not str(raw):
            problems.append(
                conn.problem(
                    tag or "modbusRegMapUri",
                    'needs modbusRegMapUri: the register map under maps/, like "meter.csv"',
                )
            )
            return None
        name = self.alias(str(raw))
        found = self.maps.get(name)
        if found is not None:
            maps_out[str(raw)] = found
            maps_out[name] = found
            return found
        if name in self.failed:
            problems.append(conn.problem(tag, f"register map {name!r} has errors (see above)"))
            return None
        known = sorted(self.maps)
        listing = ", ".join(known) if known else "none"
        hint = did_you_mean(name, known)
        problems.append(
            conn.problem(
                tag, f"no register map {name!r} under {self.maps_dir}{hint} (found: {listing})"
            )
        )
        return None

    def check_point(self, point: SourcedRecord, conn: SourcedRecord) -> list[Problem]:
        """Problems of one point of a Modbus connector (after ``check_connector``)."""
        rec = point.rec
        problems: list[Problem] = []
        cur, write = rec.get("modbusCur"), rec.get("modbusWrite")
        if cur is None and write is None:
            problems.append(
                point.problem("modbusConnRef", "names no register: add modbusCur or modbusWrite")
            )
        if write is not None and rec.get("writable") is not MARKER:
            problems.append(point.problem("modbusWrite", "needs the writable marker on the point"))
        regmap = self._conn_maps.get(id(conn))
        if regmap is None:
            return problems  # the connector's problem says why
        for tag, want in (("modbusCur", "r"), ("modbusWrite", "w")):
            val = rec.get(tag)
            if val is None:
                continue
            row = self._row(point, tag, val, regmap, problems)
            if row is None:
                continue
            if want == "r" and not row.readable:
                problems.append(point.problem(tag, f"register {row.name!r} is write-only"))
            if want == "w" and not row.writable:
                problems.append(point.problem(tag, f"register {row.name!r} is read-only"))
            problems.extend(_kind_fit(point, tag, row))
        return problems

    def _row(
        self,
        point: SourcedRecord,
        tag: str,
        val: Value,
        regmap: RegisterMap,
        problems: list[Problem],
    ) -> RegisterRow | None:
        if not isinstance(val, str):
            problems.append(point.problem(tag, "must be a Str: the name of a register map row"))
            return None
        row = regmap.get(val)
        if row is None:
            hint = did_you_mean(val, [r.name for r in regmap])
            source = Path(regmap.source).name
            problems.append(point.problem(tag, f"no register {val!r} in {source}{hint}"))
        return row


def _kind_fit(point: SourcedRecord, tag: str, row: RegisterRow) -> list[Problem]:
    rec: Mapping[str, Value] = point.rec
    kind = rec.get("kind")
    data = row.data
    if kind == "Str":
        return [
            point.problem("kind", f"a Modbus register holds a Number or a Bool, not Str ({tag})")
        ]
    if kind == "Bool" and (data.base == "f" or row.scale is not None):
        what = "a scaled register" if row.scale is not None else f"an {data.name} register"
        return [point.problem("kind", f"a Bool point cannot read {what} ({row.name!r})")]
    if kind == "Number" and not data.is_bit and row.unit is not None:
        unit = rec.get("unit")
        if unit is None:
            return [point.problem("unit", f"register {row.name!r} is in {row.unit}: add unit")]
        if unit != row.unit:
            return [
                point.problem("unit", f"{unit} does not match register {row.name!r} ({row.unit})")
            ]
    return []
