"""The appliance's configuration: ``/etc/hs-gateway``, loaded into one frozen object and validated.

Files (DESIGN.md, "Files on the appliance")::

    /etc/hs-gateway/gateway.toml        settings (gateway.runtime.config_settings)
    /etc/hs-gateway/points/*.trio       sites, equips, connectors, points, tuning records
                                        (gateway.runtime.config_points), read in name order
    /etc/hs-gateway/maps/**/*.csv       Modbus register maps, named by a connector's
                                        modbusRegMapUri (gateway.runtime.config_modbus)
    /etc/hs-gateway/tls/                ca.pem, server.pem, server.key (``hs-gateway certs``)

:func:`load_config` reads everything and raises :class:`ConfigError` carrying *every* problem
found (never just the first), each a :class:`Problem` naming the file, the line and the key or
tag. :func:`check_config` returns the problems instead (``hs-gateway check-config``).
:func:`load_settings` reads ``gateway.toml`` alone (the ``user`` commands need the store's
path even when a points file is broken).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.haystack.kinds import Value
from gateway.runtime.config_points import PointDatabase, load_database
from gateway.runtime.config_settings import (
    AuthSettings,
    LoggingSettings,
    ServerSettings,
    Settings,
    StorageSettings,
    TLSSettings,
    parse_settings,
)
from gateway.runtime.config_toml import Problem, TomlDocument
from gateway.web.tls import TLSConfig, TLSConfigError

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "AuthSettings",
    "ConfigError",
    "GatewayConfig",
    "LoggingSettings",
    "PointDatabase",
    "Problem",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "TLSSettings",
    "check_config",
    "load_config",
    "load_settings",
    "tls_config",
]

DEFAULT_CONFIG_DIR: Final = Path("/etc/hs-gateway")
SETTINGS_FILE: Final = "gateway.toml"


class ConfigError(Exception):
    """The configuration has problems; ``problems`` holds every one, in file and line order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}:\n{lines}")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything under the configuration directory, validated."""

    config_dir: Path
    settings: Settings = field(default_factory=Settings)
    database: PointDatabase = field(default_factory=PointDatabase)

    @property
    def connectors(self) -> tuple[Mapping[str, Value], ...]:
        """The connector records."""
        return self.database.connectors

    @property
    def points(self) -> tuple[Mapping[str, Value], ...]:
        """The point records."""
        return self.database.points


def _settings(config_dir: Path, problems: list[Problem]) -> tuple[Settings, TomlDocument | None]:
    path = config_dir / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem(str(path), 1, None, "the settings file is missing"))
        return Settings(), None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), 1, None, f"cannot read: {exc}"))
        return Settings(), None
    doc = TomlDocument(text, str(path), problems)
    return parse_settings(doc, config_dir), doc


def load_settings(config_dir: str | os.PathLike[str] = DEFAULT_CONFIG_DIR) -> Settings:
    """``gateway.toml`` alone; :class:`ConfigError` if it has problems."""
    problems: list[Problem] = []
    settings, _ = _settings(Path(config_dir), problems)
    if problems:
        raise ConfigError(problems)
    return settings


def check_config(
    config_dir: str | os.PathLike[str] = DEFAULT_CONFIG_DIR, *, check_tls_files: bool = True
) -> tuple[GatewayConfig, list[Problem]]:
    """The configuration and every problem of it (sorted); usable only without problems."""
    root = Path(config_dir)
    problems: list[Problem] = []
    settings, doc = _settings(root, problems)

    def bad_default(message: str) -> None:
        line = doc.line_of(("tuning", "default")) if doc is not None else 1
        problems.append(Problem(str(root / SETTINGS_FILE), line, "tuning.default", message))

    database, db_problems = load_database(root, settings.default_tuning, bad_default)
    problems.extend(db_problems)
    if check_tls_files and settings.server.tls.enabled:
        problems.extend(_tls_problems(settings, doc, root))
    return GatewayConfig(root, settings, database), sorted(problems)


def load_config(
    config_dir: str | os.PathLike[str] = DEFAULT_CONFIG_DIR, *, check_tls_files: bool = True
) -> GatewayConfig:
    """The whole configuration; :class:`ConfigError` with every problem if there are any."""
    config, problems = check_config(config_dir, check_tls_files=check_tls_files)
    if problems:
        raise ConfigError(problems)
    return config


def tls_config(settings: TLSSettings) -> TLSConfig:
    """The web layer's TLS configuration for these settings (``enabled`` must be true)."""
    return TLSConfig(
        certificate_path=settings.certificate,
        private_key_path=settings.private_key,
        ca_certificates_path=settings.ca_certificates,
        require_client_cert=settings.require_client_cert,
        min_version=_tls_version(settings.min_version),
    )


def _tls_version(text: str) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if text == "1.3" else ssl.TLSVersion.TLSv1_2


def _tls_problems(settings: Settings, doc: TomlDocument | None, root: Path) -> list[Problem]:
    tls = settings.server.tls
    source = str(root / SETTINGS_FILE)

    def at(key: str, message: str) -> Problem:
        line = doc.line_of(("server", "tls", key)) if doc is not None else 1
        return Problem(source, line, f"server.tls.{key}", message)

    files = {"certificate": tls.certificate, "private_key": tls.private_key}
    if tls.ca_certificates is not None:
        files["ca_certificates"] = tls.ca_certificates
    missing = [
        at(key, f"{path} does not exist (create it with: hs-gateway certs ...)")
        for key, path in files.items()
        if not path.exists()
    ]
    if missing:
        return missing
    try:
        tls_config(tls).check_files()
    except TLSConfigError as exc:
        key = next((k for k, p in files.items() if str(p) == str(exc.path)), "certificate")
        return [at(key, str(exc))]
    return []
