"""drivers.modbus.uri: every accepted form, its defaults, and every refusal."""

from __future__ import annotations

import pytest

from drivers.base import FaultError
from drivers.modbus.uri import ModbusEndpoint, ModbusUriError, parse_modbus_uri

GOOD = [
    ("modbus-tcp://10.0.0.5", ModbusEndpoint("modbus-tcp", host="10.0.0.5", port=502)),
    ("modbus-tcp://10.0.0.5/", ModbusEndpoint("modbus-tcp", host="10.0.0.5", port=502)),
    ("modbus-tcp://plc.local:1502", ModbusEndpoint("modbus-tcp", host="plc.local", port=1502)),
    ("MODBUS-TCP://h:7", ModbusEndpoint("modbus-tcp", host="h", port=7)),
    ("modbus-tcp://[::1]:5020", ModbusEndpoint("modbus-tcp", host="::1", port=5020)),
    ("modbus-tcp://h?gap=2.5", ModbusEndpoint("modbus-tcp", host="h", gap_ms=2.5)),
    ("modbus-rtutcp://gw:4001", ModbusEndpoint("modbus-rtutcp", host="gw", port=4001)),
    ("modbus-rtutcp://gw", ModbusEndpoint("modbus-rtutcp", host="gw", port=502)),
    ("modbus-rtu:///dev/ttyUSB0", ModbusEndpoint("modbus-rtu", device="/dev/ttyUSB0")),
    (
        "modbus-rtu:///dev/ttyUSB0?baud=9600&parity=E&stopbits=2&bytesize=7",
        ModbusEndpoint(
            "modbus-rtu", device="/dev/ttyUSB0", baud=9600, parity="E", stopbits=2, bytesize=7
        ),
    ),
    (
        "modbus-rtu:///dev/serial/by-id/usb-FTDI?parity=odd&gap=10",
        ModbusEndpoint("modbus-rtu", device="/dev/serial/by-id/usb-FTDI", parity="O", gap_ms=10),
    ),
]


@pytest.mark.parametrize(("uri", "expected"), GOOD, ids=[u for u, _ in GOOD])
def test_good_uris(uri: str, expected: ModbusEndpoint) -> None:
    assert parse_modbus_uri(uri) == expected


BAD = [
    ("", "empty"),
    ("tcp://h:502", "scheme must be one of"),
    ("modbus-udp://h", "scheme must be one of"),
    ("modbus-tcp://", "no host"),
    ("modbus-tcp://h:99999", "bad port"),
    ("modbus-tcp://h:0", "port 0"),
    ("modbus-tcp://h:502/unit/3", "has no path"),
    ("modbus-tcp://user@h", "user info"),
    ("modbus-tcp://h?baud=9600", "unknown query key 'baud'"),
    ("modbus-tcp://h#x", "fragment"),
    ("modbus-tcp://h?gap=-1", "out of range"),
    ("modbus-tcp://h?gap=fast", "number of ms"),
    ("modbus-rtu://ttyUSB0", "modbus-rtu:///dev/ttyUSB0"),
    ("modbus-rtu:///dev/ttyUSB0?baud=fast", "baud must be an integer"),
    ("modbus-rtu:///dev/ttyUSB0?baud=10", "out of range"),
    ("modbus-rtu:///dev/ttyUSB0?parity=X", "parity must be N, E or O"),
    ("modbus-rtu:///dev/ttyUSB0?stopbits=3", "stopbits 3 is out of range"),
    ("modbus-rtu:///dev/ttyUSB0?bytesize=6", "bytesize 6 is out of range"),
    ("modbus-rtu:///dev/ttyUSB0?baud=9600&baud=19200", "given twice"),
    ("modbus-rtu:///dev/ttyUSB0?speed=9600", "unknown query key 'speed'"),
    ("modbus-rtu:///dev/", "absolute path"),
]


@pytest.mark.parametrize(("uri", "message"), BAD, ids=[u or "empty" for u, _ in BAD])
def test_bad_uris_name_the_problem(uri: str, message: str) -> None:
    with pytest.raises(ModbusUriError) as info:
        parse_modbus_uri(uri)
    assert message in str(info.value)
    assert isinstance(info.value, FaultError)  # a bad uri is a configuration fault
    assert info.value.status == "fault"


def test_keys_identify_the_bus_not_the_slave() -> None:
    a = parse_modbus_uri("modbus-tcp://h:502")
    b = parse_modbus_uri("modbus-tcp://h:502/")
    assert a.key == b.key == "modbus-tcp://h:502"
    rtu = parse_modbus_uri("modbus-rtu:///dev/ttyS1?baud=9600")
    assert rtu.key == "modbus-rtu:///dev/ttyS1"
    assert parse_modbus_uri("modbus-tcp://[::1]:5020").key == "modbus-tcp://[::1]:5020"


@pytest.mark.parametrize(
    ("uri", "gap"),
    [
        ("modbus-tcp://h", 0.0),
        ("modbus-tcp://h?gap=5", 0.005),
        # 3.5 characters of 10 bits at 9600 baud
        ("modbus-rtu:///dev/ttyS0?baud=9600", 3.5 * 10 / 9600),
        # 11-bit characters with parity
        ("modbus-rtu:///dev/ttyS0?baud=9600&parity=E", 3.5 * 11 / 9600),
        # the serial line spec's floor above 19200 baud
        ("modbus-rtu:///dev/ttyS0?baud=115200", 0.00175),
    ],
)
def test_frame_gap(uri: str, gap: float) -> None:
    assert parse_modbus_uri(uri).frame_gap() == pytest.approx(gap)


def test_str_round_trips() -> None:
    for text in ("modbus-tcp://h:502", "modbus-rtu:///dev/ttyS0?baud=9600&parity=E"):
        ep = parse_modbus_uri(text)
        assert parse_modbus_uri(str(ep)) == ep
