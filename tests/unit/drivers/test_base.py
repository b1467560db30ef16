"""drivers.base: the error tree maps to statuses by type; Reading."""

from __future__ import annotations

import pytest

from drivers.base import (
    DownError,
    Driver,
    DriverError,
    FaultError,
    Learner,
    Reading,
    RemoteStatusError,
    point_id,
)
from gateway.haystack.kinds import Number, Ref


def test_statuses_by_type() -> None:
    assert DownError("x").status == "down"
    assert FaultError("x").status == "fault"
    assert RemoteStatusError("remoteDown").status == "remoteDown"
    assert RemoteStatusError("remoteFault", "bad sensor").status == "remoteFault"
    assert str(RemoteStatusError("remoteFault", "bad sensor")) == "bad sensor"
    for cls in (DownError, FaultError, RemoteStatusError):
        assert issubclass(cls, DriverError)
    with pytest.raises(ValueError, match="not a remote status"):
        RemoteStatusError("down")


def test_reading() -> None:
    ok = Reading(Ref("p"), Number(1.0))
    assert ok.ok and ok.status == "ok"
    bad = Reading(Ref("p"), err=FaultError("illegal address"))
    assert not bad.ok and bad.status == "fault" and bad.val is None
    assert Reading(Ref("p"), err=RemoteStatusError("remoteDown")).status == "remoteDown"


def test_point_id() -> None:
    assert point_id({"id": Ref("a")}) == Ref("a")
    with pytest.raises(FaultError):
        point_id({"id": "a"})


def test_modbus_driver_satisfies_the_protocols() -> None:
    from drivers.modbus.driver import ModbusDriver

    for name in ("open", "aclose", "read", "write", "learn"):
        assert callable(getattr(ModbusDriver, name))
    assert issubclass(ModbusDriver, Driver)
    assert issubclass(ModbusDriver, Learner)
