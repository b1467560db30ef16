"""Which driver serves a connector: protocol markers mapped to driver factories.

A connector record names its protocol with a marker (``modbusConn``); its points point back
to it with ``<proto>ConnRef`` and name their addresses in ``<proto>Cur`` / ``<proto>Write``
(DESIGN.md, "Data model"). A :class:`DriverKind` holds those names and a factory that builds
the driver from the connector record (no I/O); a :class:`DriverRegistry` holds the kinds a
gateway serves. The runtime needs nothing else to know about a protocol.

Modbus (:func:`modbus_kind`): the connector names its register map in ``modbusRegMapUri``
(Haxall's tag; ``modbusRegMap`` is accepted too), a Str or Uri that :class:`RegisterMaps`
resolves: maps given up front by name (the config loader parses every CSV when it loads),
else a CSV file under ``base_dir``, parsed once and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from drivers.aio import AioHost
from drivers.base import Driver, FaultError
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.link import LinkRegistry
from drivers.modbus.regmap import RegisterMap
from gateway.haystack.kinds import MARKER, Uri, Value

__all__ = [
    "DriverFactory",
    "DriverKind",
    "DriverRegistry",
    "RegisterMaps",
    "modbus_kind",
]

#: Builds a connector's driver from its record (no I/O); raises FaultError on bad config.
DriverFactory = Callable[[Mapping[str, Value]], Driver]


@dataclass(frozen=True, slots=True)
class DriverKind:
    """One protocol: its tag names and its driver factory."""

    name: str  # "modbus": tags are modbusConn, modbusConnRef, modbusCur, modbusWrite
    factory: DriverFactory

    @property
    def conn_marker(self) -> str:
        """The connector marker (``modbusConn``)."""
        return f"{self.name}Conn"

    @property
    def conn_ref_tag(self) -> str:
        """The point tag naming the connector (``modbusConnRef``)."""
        return f"{self.name}ConnRef"

    @property
    def cur_tag(self) -> str:
        """The point tag of the address to read (``modbusCur``)."""
        return f"{self.name}Cur"

    @property
    def write_tag(self) -> str:
        """The point tag of the address to write (``modbusWrite``)."""
        return f"{self.name}Write"


class DriverRegistry:
    """The driver kinds a gateway serves, by protocol name."""

    def __init__(self, kinds: Iterable[DriverKind] = ()) -> None:
        self._kinds: dict[str, DriverKind] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: DriverKind) -> None:
        """Serve one more protocol; a name is registered once."""
        if kind.name in self._kinds:
            raise ValueError(f"driver kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind

    def __iter__(self) -> Iterator[DriverKind]:
        return iter(list(self._kinds.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def get(self, name: str) -> DriverKind | None:
        """The kind named ``name`` (``"modbus"``), if registered."""
        return self._kinds.get(name)

    def kind_of(self, conn: Mapping[str, Value]) -> DriverKind | None:
        """The kind whose marker the connector record carries (None: no known marker)."""
        for kind in self._kinds.values():
            if conn.get(kind.conn_marker) is MARKER:
                return kind
        return None


class RegisterMaps:
    """Register maps by the name a connector gives in ``modbusRegMapUri``."""

    def __init__(
        self, maps: Mapping[str, RegisterMap] | None = None, base_dir: Path | None = None
    ) -> None:
        self._maps: dict[str, RegisterMap] = dict(maps or {})
        self.base_dir = base_dir

    def add(self, name: str, register_map: RegisterMap) -> None:
        """Make ``register_map`` known as ``name``."""
        self._maps[name] = register_map

    def for_connector(self, conn: Mapping[str, Value]) -> RegisterMap:
        """The map the connector names; a FaultError says what is missing."""
        ref = conn.get("modbusRegMapUri", conn.get("modbusRegMap"))
        if not isinstance(ref, (str, Uri)) or not str(ref):
            raise FaultError("connector has no modbusRegMapUri naming its register map")
        name = str(ref)
        found = self._maps.get(name)
        if found is not None:
            return found
        if self.base_dir is None:
            raise FaultError(f"unknown register map {name!r}")
        path = (self.base_dir / name.removeprefix("file:")).resolve()
        if not path.is_relative_to(self.base_dir.resolve()):
            raise FaultError(f"register map {name!r} is outside {self.base_dir}")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FaultError(f"cannot read register map {name!r}: {exc.strerror}") from None
        parsed = RegisterMap.parse(text, source=str(path))
        self._maps[name] = parsed
        return parsed


def modbus_kind(aio: AioHost, links: LinkRegistry, register_maps: RegisterMaps) -> DriverKind:
    """The Modbus driver kind: every connector shares ``aio`` and the bus links of ``links``."""

    def factory(conn: Mapping[str, Value]) -> Driver:
        return ModbusDriver(conn, register_maps.for_connector(conn), aio=aio, links=links)

    return DriverKind("modbus", factory)
