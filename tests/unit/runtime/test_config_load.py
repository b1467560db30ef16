"""Configuration loading: TLS files, a clean load into the frozen model, the shipped files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from gateway.auth.pki import (
    create_ca,
    issue_server_certificate,
    save_certificates,
    save_private_key,
)
from gateway.auth.roles import Role
from gateway.haystack.kinds import MARKER, Ref
from gateway.runtime.config import GatewayConfig, Problem, load_config, load_settings
from tests.unit.runtime.test_config import (
    FIRMWARE,
    POINT,
    TOML,
    line_of,
    problems_of,
    write_config,
)

# -- TLS files -----------------------------------------------------------------------------

TLS_TOML = TOML.replace("enabled = false", "enabled = true\nrequire_client_cert = true")


def _write_pki(tls: Path) -> None:
    tls.mkdir(parents=True)
    ca = create_ca("test CA")
    save_certificates(tls / "ca.pem", ca.certificate)
    save_private_key(tls / "ca.key", ca.key)
    server = issue_server_certificate(ca, "gw", hostnames=["localhost"])
    save_certificates(tls / "server.pem", server.certificate)
    save_private_key(tls / "server.key", server.key)


def test_missing_tls_files_are_named_at_their_keys(tmp_path: Path) -> None:
    toml = TLS_TOML + 'certificate = "tls/gw.pem"\n'.join(["", ""])
    toml = TLS_TOML.replace("enabled = true", 'enabled = true\ncertificate = "tls/gw.pem"')
    root = write_config(tmp_path, toml)
    problems = problems_of(root, tls=True)
    got = {p.key: p.line for p in problems}
    assert got == {
        "server.tls.certificate": line_of(toml, "certificate ="),
        # Keys left at their default are placed on their table's header.
        "server.tls.private_key": line_of(toml, "[server.tls]"),
        "server.tls.ca_certificates": line_of(toml, "[server.tls]"),
    }
    assert all("does not exist" in p.message for p in problems)


def test_tls_key_of_another_certificate_is_a_problem(tmp_path: Path) -> None:
    root = write_config(tmp_path, TLS_TOML)
    _write_pki(root / "tls")
    other = create_ca("other")
    save_private_key(root / "tls" / "server.key", other.key)
    problems = problems_of(root, tls=True)
    assert [p.key for p in problems] == ["server.tls.private_key"]
    assert "is not the private key" in problems[0].message


# -- clean configurations ------------------------------------------------------------------


def test_clean_configuration_loads_into_a_frozen_model(tmp_path: Path) -> None:
    toml = (
        TLS_TOML
        + '\n[server.tls.clients]\n"bms" = "operator"\n'
        + '\n[auth]\ntoken_lifetime = "30min"\ntoken_expiry = "fixed"\nplaintext = true\n'
        + '\n[tuning]\ndefault = "@t.default"\n\n[logging]\nlevel = "debug"\n'
    )
    tuning = (
        "id: @t.default\nconnTuning\npollTime: 2s\n---\nid: @t.slow\nconnTuning\nstaleTime: 1h\n"
    )
    root = write_config(tmp_path, toml, {"points/p.trio": POINT, "points/t.trio": tuning})
    _write_pki(root / "tls")
    config = load_config(root)
    assert isinstance(config, GatewayConfig)
    settings = config.settings
    assert settings.server.binds == ["127.0.0.1:8443"]
    assert settings.server.tls.require_client_cert is True
    assert settings.server.tls.clients == {"bms": Role.OPERATOR}
    assert settings.server.tls.certificate == root / "tls" / "server.pem"
    assert settings.auth.token_lifetime == 1800.0
    policy = settings.auth.token_policy()
    assert (policy.lifetime, policy.sliding) == (1800.0, False)
    assert settings.auth.plaintext is True
    assert settings.storage.path == root / "state" / "gateway.db"
    assert settings.logging.level == "debug"
    db = config.database
    assert [c["id"] for c in config.connectors] == [Ref("m1")]
    assert [p["id"] for p in config.points] == [Ref("p1")]
    assert db.default_tuning.poll_time == 2.0
    # A tuning record fills what it leaves out from the default tuning.
    assert db.tunings[Ref("t.slow")].poll_time == 2.0
    assert db.tunings[Ref("t.slow")].stale_time == 3600.0
    assert db.register_maps["meter.csv"].row("power").unit == "kW"
    origin = db.origin(Ref("p1"))
    assert origin is not None
    assert origin.file == str(root / "points" / "p.trio")
    assert origin.line_of("modbusCur") == line_of(POINT, "modbusCur")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.settings.server.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.points[0]["kind"] = "Bool"  # type: ignore[index]
    assert config.points[0]["point"] is MARKER


def test_defaults_without_optional_sections(tmp_path: Path) -> None:
    root = write_config(tmp_path, "")
    settings = load_settings(root)
    assert settings.server.port == 8443
    assert settings.server.listen == ("0.0.0.0",)
    assert settings.server.tls.enabled is True
    assert settings.auth.token_expiry == "sliding"
    assert settings.storage.history_days == 365.0
    assert settings.default_tuning is None


def test_shipped_firmware_config_passes(tmp_path: Path) -> None:
    # The shipped files pass as they are, TLS files aside (the package makes those).
    assert problems_of(FIRMWARE) == []
    tls_problems = problems_of(FIRMWARE, tls=True)
    assert {p.key for p in tls_problems} == {
        "server.tls.certificate",
        "server.tls.private_key",
        "server.tls.ca_certificates",
    }
    # With the certificates made, nothing is left.
    root = tmp_path / "etc"
    shutil.copytree(FIRMWARE, root)
    _write_pki(root / "tls")
    config = load_config(root)
    assert len(config.connectors) == 3
    assert all(c.get("disabled") is MARKER for c in config.connectors)
    assert config.database.default_tuning.ref == Ref("tuning.default")
    assert {p["id"].val for p in config.points} >= {"meter1-power", "fcu1-room-sp"}  # type: ignore[union-attr]


def test_problem_text_reads_file_line_key() -> None:
    assert str(Problem("/etc/x.toml", 3, "server.port", "bad")) == "/etc/x.toml:3: server.port: bad"
    assert str(Problem("/etc/x.toml", 1, None, "bad")) == "/etc/x.toml:1: bad"
