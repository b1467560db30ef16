"""drivers.modbus.learn: register map rows as point records."""

from __future__ import annotations

from drivers.modbus.learn import learn_points
from drivers.modbus.regmap import RegisterMap
from gateway.haystack.kinds import MARKER, Number, Ref

MAP = """\
name,addr,data,rw,scale,unit,dis,tags
temp,30001,f4,r,,°F,Zone temp,sensor temp zone
fan,00001,bit,rw,,,Fan,cmd
sp,40001,s2,w,/10,°F,,sp precision:1
"""


def test_learn_points() -> None:
    regmap = RegisterMap.parse(MAP, source="m.csv")
    temp, fan, sp = learn_points(regmap, conn_ref=Ref("c1"))
    assert temp == {
        "dis": "Zone temp",
        "point": MARKER,
        "modbusPoint": MARKER,
        "kind": "Number",
        "unit": "°F",
        "cur": MARKER,
        "modbusCur": "temp",
        "modbusConnRef": Ref("c1"),
        "sensor": MARKER,
        "temp": MARKER,
        "zone": MARKER,
    }
    assert fan["kind"] == "Bool" and "unit" not in fan
    assert fan["modbusCur"] == fan["modbusWrite"] == "fan"
    assert fan["writable"] is MARKER and fan["cmd"] is MARKER
    assert sp["dis"] == "sp" and sp["modbusWrite"] == "sp"
    assert "modbusCur" not in sp and "cur" not in sp  # write-only
    assert sp["precision"] == Number(1)


def test_his_and_no_conn_ref() -> None:
    regmap = RegisterMap.parse(MAP, source="m.csv")
    points = learn_points(regmap, his=True)
    assert all(p["his"] is MARKER for p in points)
    assert all("modbusConnRef" not in p for p in points)
    assert [p["dis"] for p in points] == ["Zone temp", "Fan", "sp"]
