"""hs-gateway learn: a connector's register map as point records that check clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.runtime.cli import main
from gateway.runtime.config import load_config
from gateway.runtime.config_trio import read_trio
from tests.unit.runtime.test_config import write_config


def test_learn_prints_records_that_pass_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = write_config(tmp_path / "etc")
    assert main(["learn", "@m1", "--config-dir", str(etc), "--site", "@site"]) == 0
    out = capsys.readouterr().out
    records, problems = read_trio(out, "learned")
    assert problems == []
    by_id = {r.rec["id"]: r.rec for r in records}
    assert sorted(r.val for r in by_id) == [
        "m1-energy",
        "m1-mode",
        "m1-power",
        "m1-running",
        "m1-setpoint",
    ]
    power = by_id[Ref("m1-power")]
    assert power["modbusConnRef"] == Ref("m1")
    assert power["modbusCur"] == "power"
    assert (power["kind"], power["unit"]) == ("Number", "kW")
    assert power["siteRef"] == Ref("site")
    setpoint = by_id[Ref("m1-setpoint")]
    assert setpoint["writable"] is MARKER
    assert setpoint["modbusWrite"] == "setpoint"
    assert by_id[Ref("m1-running")]["kind"] == "Bool"
    # Saved under points/, the learned records are a valid configuration.
    (etc / "points" / "learned.trio").write_text(out, encoding="utf-8")
    config = load_config(etc, check_tls_files=False)
    assert len(config.points) == 5


def test_learn_to_a_file_with_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = write_config(tmp_path / "etc")
    target = etc / "points" / "meter.trio"
    argv = ["learn", "m1", "--config-dir", str(etc), "--his", "15min", "-o", str(target)]
    assert main(argv) == 0
    assert "wrote 5 point records" in capsys.readouterr().err
    config = load_config(etc, check_tls_files=False)
    power = next(p for p in config.points if p["id"] == Ref("m1-power"))
    assert power["his"] is MARKER
    assert power["tz"] == "UTC"
    assert power["hisCollectInterval"] == Number(15.0, "min")
    assert main(argv) == 1  # exists: --force needed
    assert "use --force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0


def test_learn_of_an_unknown_connector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = write_config(tmp_path / "etc")
    assert main(["learn", "@nope", "--config-dir", str(etc)]) == 1
    assert "no connector @nope (connectors: @m1)" in capsys.readouterr().err


def test_learn_with_a_bad_interval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = write_config(tmp_path / "etc")
    assert main(["learn", "@m1", "--config-dir", str(etc), "--his", "often"]) == 1
    assert "not a duration" in capsys.readouterr().err
