"""drivers.sim.modbus device state, without a server: moving values on a fake clock."""

from __future__ import annotations

import pytest

from drivers.base import FaultError
from drivers.modbus.regmap import RegisterMap
from drivers.sim.modbus import (
    Accumulate,
    Drift,
    Follow,
    ModbusSim,
    SimDevice,
    demo_devices,
)

MAP = RegisterMap.parse(
    "name,addr,data,rw,scale,unit\n"
    "temp,30001,s2,r,/10,°C\n"
    "meter,30002,u4,r,/10,kWh\n"
    "cmd,00001,bit,rw,,\n"
    "status,10001,bit,r,,\n"
    "sp,40001,s2,rw,/10,°C\n"
    "spEcho,40002,s2,r,/10,°C\n",
    source="sim.csv",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_sim(clock: FakeClock) -> ModbusSim:
    device = SimDevice(
        5,
        MAP,
        values={"sp": 20.0},
        behaviours={
            "temp": Drift(base=21.0, amplitude=2.0, period=40.0),
            "meter": Accumulate(rate=0.5, start=100.0),
            "status": Follow("cmd", delay=2.0),
            "spEcho": Follow("sp"),
        },
    )
    return ModbusSim([device], clock=clock)


def test_values_move_with_the_clock() -> None:
    clock = FakeClock()
    sim = make_sim(clock)
    assert sim.value(5, "temp") == pytest.approx(21.0)
    assert sim.value(5, "meter") == pytest.approx(100.0)
    clock.now += 10.0  # a quarter period
    assert sim.value(5, "temp") == pytest.approx(23.0)
    assert sim.value(5, "meter") == pytest.approx(105.0)
    assert sim.registers(5, "temp") == [230]


def test_status_follows_its_command_after_the_delay() -> None:
    clock = FakeClock()
    sim = make_sim(clock)
    assert sim.value(5, "status") is False
    sim.set_value(5, "cmd", True)
    clock.now += 1.0
    assert sim.value(5, "status") is False
    clock.now += 1.5
    assert sim.value(5, "status") is True
    sim.set_value(5, "cmd", False)
    clock.now += 2.0
    assert sim.value(5, "status") is False


def test_writable_rows_act_as_actuators() -> None:
    clock = FakeClock()
    sim = make_sim(clock)
    assert sim.value(5, "spEcho") == pytest.approx(20.0)
    sim.set_value(5, "sp", 22.5)
    assert sim.value(5, "sp") == pytest.approx(22.5)
    assert sim.value(5, "spEcho") == pytest.approx(22.5)


def test_faults_and_online_flags() -> None:
    sim = make_sim(FakeClock())
    sim.set_fault(5, "temp", 2)
    assert sim.device(5).faults == {"temp": 2}
    sim.set_fault(5, "temp", None)
    assert sim.device(5).faults == {}
    sim.set_online(5, False)
    assert sim.device(5).online is False
    with pytest.raises(FaultError):
        sim.set_fault(5, "nope", 2)


def test_bad_configuration() -> None:
    with pytest.raises(FaultError, match=r"'nope' is not in sim\.csv"):
        SimDevice(1, MAP, behaviours={"nope": Accumulate(1.0)})
    with pytest.raises(FaultError, match=r"'gone' is not in sim\.csv"):
        SimDevice(1, MAP, behaviours={"status": Follow("gone")})
    with pytest.raises(ValueError, match="follow itself"):
        SimDevice(1, MAP, behaviours={"status": Follow("status")})
    with pytest.raises(ValueError, match="unique"):
        ModbusSim([SimDevice(1, MAP), SimDevice(1, MAP)])


def test_demo_devices() -> None:
    sim = ModbusSim(demo_devices((1, 2)), clock=FakeClock())
    assert sim.value(1, "ping") == 1
    assert sim.value(2, "energy") == pytest.approx(2000.0)
    assert sim.value(1, "supplySp") == pytest.approx(18.0)
    assert not sim.running
    assert sim.uri == "modbus-tcp://127.0.0.1:0"  # port is bound by start()
