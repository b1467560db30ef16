"""Modbus connector URIs: which bus a connector talks on (pure; no I/O).

Forms (the connector's ``uri`` tag):

- ``modbus-tcp://host[:port][/]`` -- Modbus TCP (MBAP framing), port 502 by default.
- ``modbus-rtutcp://host[:port][/]`` -- RTU framing over a TCP socket (serial servers and
  gateways that pass RTU frames through), port 502 by default.
- ``modbus-rtu:///dev/ttyUSB0?baud=19200&parity=E&stopbits=1&bytesize=8`` -- RTU on a
  serial port. Defaults: ``baud=19200``, ``parity=N``, ``stopbits=1``, ``bytesize=8``.

Every form also accepts ``gap=<ms>``: the silence kept between two requests on the bus
(default: 3.5 character times for RTU, at least 1.75 ms as the Modbus serial line spec
asks above 19200 baud; 0 for TCP). IPv6 hosts go in brackets (``modbus-tcp://[::1]:502``).

Anything else -- another scheme, a path on a TCP URI, an unknown or repeated query key, a
value out of range -- raises ``ModbusUriError`` naming the URI and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qsl, urlsplit

from drivers.base import FaultError

__all__ = ["ModbusEndpoint", "ModbusUriError", "parse_modbus_uri"]

Scheme = Literal["modbus-tcp", "modbus-rtutcp", "modbus-rtu"]

SCHEMES: Final = ("modbus-tcp", "modbus-rtutcp", "modbus-rtu")
DEFAULT_PORT: Final = 502
PARITIES: Final = {"N": "N", "E": "E", "O": "O", "NONE": "N", "EVEN": "E", "ODD": "O"}


class ModbusUriError(FaultError, ValueError):
    """A connector ``uri`` that is not a valid Modbus URI (a configuration fault)."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(f"bad Modbus uri {uri!r}: {problem}")
        self.uri = uri
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ModbusEndpoint:
    """One bus: a TCP endpoint or a serial port, with its line settings."""

    scheme: Scheme
    host: str = ""
    port: int = DEFAULT_PORT
    device: str = ""
    baud: int = 19200
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    gap_ms: float | None = None

    @property
    def is_serial(self) -> bool:
        """True for a serial port (``modbus-rtu``)."""
        return self.scheme == "modbus-rtu"

    @property
    def rtu_framing(self) -> bool:
        """True when frames are RTU (serial, or RTU over TCP)."""
        return self.scheme != "modbus-tcp"

    @property
    def key(self) -> str:
        """The canonical text of the bus: every connector with the same key shares a link."""
        if self.is_serial:
            # Line settings are part of the bus: two settings on one port is a conflict the
            # link registry reports, not two buses.
            return f"modbus-rtu://{self.device}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def frame_gap(self) -> float:
        """Seconds of silence between two requests on this bus."""
        if self.gap_ms is not None:
            return self.gap_ms / 1000.0
        if not self.is_serial:
            return 0.0
        bits_per_char = 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits
        return max(3.5 * bits_per_char / self.baud, 0.00175)

    def __str__(self) -> str:
        if not self.is_serial:
            return self.key
        return (
            f"modbus-rtu://{self.device}?baud={self.baud}&parity={self.parity}"
            f"&stopbits={self.stopbits}&bytesize={self.bytesize}"
        )


def _int(uri: str, key: str, text: str, low: int, high: int) -> int:
    try:
        val = int(text, 10)
    except ValueError:
        raise ModbusUriError(uri, f"{key} must be an integer, not {text!r}") from None
    if not low <= val <= high:
        raise ModbusUriError(uri, f"{key} {val} is out of range {low}..{high}")
    return val


def _query(uri: str, text: str, allowed: frozenset[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise ModbusUriError(uri, f"malformed query {text!r}") from None
    for key, val in pairs:
        if key not in allowed:
            raise ModbusUriError(
                uri, f"unknown query key {key!r} (allowed: {', '.join(sorted(allowed))})"
            )
        if key in out:
            raise ModbusUriError(uri, f"query key {key!r} given twice")
        out[key] = val
    return out


def _gap(uri: str, query: dict[str, str]) -> float | None:
    if "gap" not in query:
        return None
    try:
        gap = float(query["gap"])
    except ValueError:
        raise ModbusUriError(uri, f"gap must be a number of ms, not {query['gap']!r}") from None
    if not 0.0 <= gap <= 1000.0:
        raise ModbusUriError(uri, f"gap {gap} ms is out of range 0..1000")
    return gap


def parse_modbus_uri(uri: str) -> ModbusEndpoint:
    """Parse a connector ``uri`` into the bus it names (see the module docstring)."""
    if not isinstance(uri, str) or not uri.strip():
        raise ModbusUriError(str(uri), "empty")
    uri = uri.strip()
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ModbusUriError(uri, f"scheme must be one of {', '.join(SCHEMES)}")
    parts = urlsplit(uri)
    if parts.fragment:
        raise ModbusUriError(uri, "a fragment (#...) is not allowed")
    if scheme.lower() == "modbus-rtu":
        return _parse_serial(uri, parts.netloc, parts.path, parts.query)
    return _parse_tcp(uri, scheme.lower(), parts.query)


def _parse_tcp(uri: str, scheme: str, query_text: str) -> ModbusEndpoint:
    parts = urlsplit(uri)
    if parts.path not in ("", "/"):
        raise ModbusUriError(uri, f"a TCP uri has no path, found {parts.path!r}")
    if parts.username or parts.password:
        raise ModbusUriError(uri, "user info is not allowed")
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ModbusUriError(uri, f"bad port: {exc}") from None
    if not host:
        raise ModbusUriError(uri, "no host")
    if port == 0:
        raise ModbusUriError(uri, "port 0 is not a port")
    query = _query(uri, query_text, frozenset({"gap"}))
    return ModbusEndpoint(
        scheme="modbus-tcp" if scheme == "modbus-tcp" else "modbus-rtutcp",
        host=host,
        port=DEFAULT_PORT if port is None else port,
        gap_ms=_gap(uri, query),
    )


def _parse_serial(uri: str, netloc: str, path: str, query_text: str) -> ModbusEndpoint:
    if netloc:
        raise ModbusUriError(
            uri, f"a serial uri names a device path: modbus-rtu:///dev/{netloc}{path}"
        )
    if not path.startswith("/") or path.endswith("/") or len(path) < 2:
        raise ModbusUriError(uri, "the serial device must be an absolute path like /dev/ttyUSB0")
    query = _query(uri, query_text, frozenset({"baud", "parity", "stopbits", "bytesize", "gap"}))
    parity_text = query.get("parity", "N").upper()
    if parity_text not in PARITIES:
        raise ModbusUriError(uri, f"parity must be N, E or O, not {query['parity']!r}")
    baud = _int(uri, "baud", query.get("baud", "19200"), 50, 4_000_000)
    stopbits = _int(uri, "stopbits", query.get("stopbits", "1"), 1, 2)
    bytesize = _int(uri, "bytesize", query.get("bytesize", "8"), 7, 8)
    return ModbusEndpoint(
        scheme="modbus-rtu",
        device=path,
        baud=baud,
        parity=PARITIES[parity_text],
        stopbits=stopbits,
        bytesize=bytesize,
        gap_ms=_gap(uri, query),
    )
