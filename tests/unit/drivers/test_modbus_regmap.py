"""drivers.modbus.regmap: parsing register map CSV; every error names file, line, column."""

from __future__ import annotations

import pytest

from drivers.base import FaultError
from drivers.modbus.regmap import RegisterMap, RegisterMapError, Table, parse_addr
from gateway.haystack.kinds import MARKER, Number

MAP = """\
name,addr,data,rw,scale,unit,dis,tags,relinquish
# a comment line
ping,40001,u2,r,,,,,

fanCmd,00001,bit,rw,,,Fan command,cmd fan,false
fanStatus,10017,bit,r,,,Fan status,,
temp,30001,f4,r,,°C,Supply temp,sensor temp his,
power,300003,s4lew,r,/1000,kW,Power,sensor precision:2,
sp,40010,s2,rw,/10,°C,Setpoint,sp,21.5
alarm,465536,bit:15,r,,,Alarm,,
legacyBit,40020,bit,r,,,,,
"""


def test_parse_a_map() -> None:
    regmap = RegisterMap.parse(MAP, source="maps/ahu.csv")
    assert [r.name for r in regmap] == [
        "ping",
        "fanCmd",
        "fanStatus",
        "temp",
        "power",
        "sp",
        "alarm",
        "legacyBit",
    ]
    assert len(regmap) == 8 and "temp" in regmap and "nope" not in regmap
    ping = regmap.row("ping")
    assert (ping.table, ping.address, ping.data.name, ping.readable, ping.writable) == (
        Table.HOLDING_REGISTER,
        0,
        "u2",
        True,
        False,
    )
    assert ping.dis == "ping" and ping.line == 3
    fan = regmap.row("fanCmd")
    assert (fan.table, fan.address, fan.writable, fan.relinquish) == (Table.COIL, 0, True, False)
    assert fan.tags == {"cmd": MARKER, "fan": MARKER}
    assert fan.line == 5  # blank and comment lines still count
    assert regmap.row("fanStatus").address == 16
    temp = regmap.row("temp")
    assert (temp.table, temp.size, temp.unit, temp.kind) == (
        Table.INPUT_REGISTER,
        2,
        "°C",
        "Number",
    )
    power = regmap.row("power")
    assert power.address == 2 and power.data.word_swap and power.scale is not None
    assert power.scale.apply(1500) == 1.5
    assert power.tags == {"sensor": MARKER, "precision": Number(2)}
    sp = regmap.row("sp")
    assert sp.relinquish == Number(21.5, "°C")
    alarm = regmap.row("alarm")
    assert (alarm.address, alarm.data.bit, alarm.kind) == (65535, 15, "Bool")
    assert regmap.row("legacyBit").data.name == "bit:0"


def test_minimal_columns_and_quoting() -> None:
    regmap = RegisterMap.parse('rw,data,addr,name\nr,u2,40001,"a"\n', source="m.csv")
    assert regmap.row("a").dis == "a" and regmap.row("a").scale is None


def test_missing_row_is_a_fault_naming_the_map() -> None:
    regmap = RegisterMap.parse(MAP, source="maps/ahu.csv")
    assert regmap.get("nope") is None
    with pytest.raises(FaultError, match=r"'nope' is not in maps/ahu.csv"):
        regmap.row("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00001", (Table.COIL, 0)),
        ("09999", (Table.COIL, 9998)),
        ("10001", (Table.DISCRETE_INPUT, 0)),
        ("30001", (Table.INPUT_REGISTER, 0)),
        ("40001", (Table.HOLDING_REGISTER, 0)),
        ("49999", (Table.HOLDING_REGISTER, 9998)),
        ("400001", (Table.HOLDING_REGISTER, 0)),
        ("410000", (Table.HOLDING_REGISTER, 9999)),
        ("465536", (Table.HOLDING_REGISTER, 65535)),
        ("000123", (Table.COIL, 122)),
    ],
)
def test_addresses(text: str, expected: tuple[Table, int]) -> None:
    assert parse_addr(text) == expected


HEADER = "name,addr,data,rw,scale,unit,dis,tags,relinquish\n"

# (csv text, line, column, message fragment)
ERRORS = [
    ("", 1, None, "no header row"),
    ("# only a comment\n", 1, None, "no header row"),
    ("name,addr,data\n", 1, "rw", "required column is missing"),
    ("name,addr,data,rw,colour\n", 1, "colour", "unknown column"),
    ("name,addr,data,rw,name\n", 1, "name", "column given twice"),
    (HEADER + ",40001,u2,r\n", 2, "name", "required value is empty"),
    (HEADER + "a,40001,u2,r\n1b,40002,u2,r\n", 3, "name", "bad name '1b'"),
    (HEADER + "a,40001,u2,r\na,40002,u2,r\n", 3, "name", "duplicate name 'a' (first on line 2)"),
    (HEADER + "a,4001,u2,r\n", 2, "addr", "5 or 6 digits"),
    (HEADER + "a,4000x,u2,r\n", 2, "addr", "5 or 6 digits"),
    (HEADER + "a,20001,u2,r\n", 2, "addr", "must start with 0 (coil)"),
    (HEADER + "a,40000,u2,r\n", 2, "addr", "register numbers start at 1"),
    (HEADER + "a,470000,u2,r\n", 2, "addr", "beyond 65536"),
    (HEADER + "a,465536,u4,r\n", 2, "addr", "runs past register 65535"),
    (HEADER + "a,40001,u3,r\n", 2, "data", "unknown data type 'u3'"),
    (HEADER + "a,40001,bit:16,r\n", 2, "data", "bit position must be 0..15"),
    (HEADER + "a,00001,u2,rw\n", 2, "data", "bit table"),
    (HEADER + "a,10001,bit:3,r\n", 2, "data", "bit table"),
    (HEADER + "a,40001,u2,x\n", 2, "rw", "rw must be r, w or rw"),
    (HEADER + "a,30001,u2,rw\n", 2, "rw", "read-only"),
    (HEADER + "a,10001,bit,w\n", 2, "rw", "read-only"),
    (HEADER + "a,40001,u2,r,*0\n", 2, "scale", "cannot be undone"),
    (HEADER + "a,40001,u2,r,x10\n", 2, "scale", "bad scale"),
    (HEADER + "a,00001,bit,r,*10\n", 2, "scale", "a bit cannot be scaled"),
    (HEADER + "a,00001,bit,r,,kW\n", 2, "unit", "a bit has no unit"),
    (HEADER + "a,40001,u2,r,,,,Bad\n", 2, "tags", "bad tag name 'Bad'"),
    (HEADER + "a,40001,u2,r,,,,,5\n", 2, "relinquish", "only a writable row"),
    (HEADER + "a,40001,u2,rw,,,,,five\n", 2, "relinquish", "not a number"),
    (HEADER + "a,00001,bit,rw,,,,,maybe\n", 2, "relinquish", "true or false"),
    (HEADER + "a,40001,u2,r,,,,,,extra\n", 2, None, "10 cells but the header has 9"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), ERRORS)
def test_errors_name_file_line_and_column(
    text: str, line: int, column: str | None, message: str
) -> None:
    with pytest.raises(RegisterMapError) as info:
        RegisterMap.parse(text, source="maps/meter.csv")
    err = info.value
    assert (err.source, err.line, err.column) == ("maps/meter.csv", line, column)
    assert message in err.msg
    where = f"maps/meter.csv, line {line}" + (f", column {column!r}" if column else "")
    assert str(err).startswith(where + ": ")
    assert isinstance(err, FaultError) and isinstance(err, ValueError)
