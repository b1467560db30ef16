"""``gateway.toml``: the gateway's settings as a typed, frozen object model, validated on load.

Every key, its type and its default (relative paths are taken from the configuration
directory, ``/etc/hs-gateway``)::

    [server]
    listen = ["0.0.0.0"]          # addresses to listen on ("::" for IPv6 + IPv4 on Linux)
    port = 8443                   # 1..65535 (below 1024 needs CAP_NET_BIND_SERVICE)
    prefix = "/api"               # URL prefix of the Haystack ops ("" for none)
    tz = "UTC"                    # the gateway's time zone (Haystack city or IANA name)
    server_name = "..."           # serverName in the about op (default: the host name)

    [server.tls]
    enabled = true                # false serves plain HTTP (only behind a TLS proxy!)
    certificate = "tls/server.pem"
    private_key = "tls/server.key"
    ca_certificates = "tls/ca.pem"  # the site CA: verifies device (client) certificates
                                  # ("" for none: no client certificates at all)
    require_client_cert = false   # true: every client needs a certificate of the site CA
    min_version = "1.2"           # "1.2" or "1.3"

    [server.tls.clients]          # device certificates allowed in, by CN, and their role
    "bms-frontend" = "operator"   # viewer, operator or admin

    [auth]
    token_lifetime = "1h"         # seconds, or a string with a unit: ms s sec min h hr day
    token_expiry = "sliding"      # sliding (each use extends) or fixed (from login)
    token_max_age = "12h"         # optional cap on a sliding session's whole life
    plaintext = false             # accept PLAINTEXT logins (only ever over TLS)
    iterations = 100000           # PBKDF2 iterations of new passwords (4096..)
    default_role = "viewer"       # role when an authenticator names none

    [storage]
    path = "/var/lib/hs-gateway/gateway.db"
    history_days = 365            # keep history this long (0: forever)
    history_max_mb = 1024         # and the database under this size (0: no cap)

    [tuning]
    default = "tuning.default"    # id of the connTuning record used when a point and its
                                  # connector name none (omit: the built-in defaults)

    [logging]
    level = "info"                # debug, info, warning or error

Tuning records themselves are Haystack records (``connTuning`` marker) in the Trio files under
``points/``, like connectors and points. An unknown key is an error naming the file, line and
key, with a "did you mean" when it is close to a known one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from gateway.auth.roles import Role
from gateway.auth.scram import DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS
from gateway.auth.tokens import TokenPolicy
from gateway.haystack.errors import UnknownTimeZoneError
from gateway.haystack.kinds import Ref
from gateway.haystack.tz import hs_tz
from gateway.runtime.config_toml import TomlDocument, TomlTable

__all__ = [
    "DEFAULT_PORT",
    "AuthSettings",
    "LoggingSettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "TLSSettings",
    "parse_settings",
]

DEFAULT_PORT: Final = 8443
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_PREFIX: Final = re.compile(r"(/[A-Za-z0-9._~-]+)*")
_REF_ID: Final = re.compile(r"@?[A-Za-z0-9_:.~-]+")
_ROLES: Final = tuple(r.value for r in Role)
_DEFAULT_LISTEN: Final = ("0.0.0.0",)


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """``[server.tls]``: the gateway's certificate and the client certificate policy."""

    enabled: bool = True
    certificate: Path = Path("tls/server.pem")
    private_key: Path = Path("tls/server.key")
    ca_certificates: Path | None = Path("tls/ca.pem")
    require_client_cert: bool = False
    min_version: Literal["1.2", "1.3"] = "1.2"
    #: Allowed device certificate CNs and their roles.
    clients: Mapping[str, Role] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``: where and how the Haystack API is served."""

    listen: tuple[str, ...] = _DEFAULT_LISTEN
    port: int = DEFAULT_PORT
    prefix: str = "/api"
    tz: str = "UTC"
    server_name: str | None = None
    tls: TLSSettings = field(default_factory=TLSSettings)

    @property
    def binds(self) -> list[str]:
        """Hypercorn bind strings (``0.0.0.0:8443``, ``[::]:8443``)."""
        return [f"[{a}]:{self.port}" if ":" in a else f"{a}:{self.port}" for a in self.listen]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``[auth]``: logins, sessions and the roles of identities without a stored user."""

    token_lifetime: float = 3600.0
    token_expiry: Literal["sliding", "fixed"] = "sliding"
    token_max_age: float | None = None
    plaintext: bool = False
    iterations: int = DEFAULT_ITERATIONS
    default_role: Role = Role.VIEWER

    def token_policy(self) -> TokenPolicy:
        """The bearer token policy these settings describe."""
        return TokenPolicy(
            lifetime=self.token_lifetime,
            sliding=self.token_expiry == "sliding",
            max_age=self.token_max_age if self.token_expiry == "sliding" else None,
        )


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """``[storage]``: the SQLite file and how much history it keeps."""

    path: Path = Path("/var/lib/hs-gateway/gateway.db")
    history_days: float | None = 365.0
    history_max_bytes: int | None = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """``[logging]``."""

    level: str = "info"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``gateway.toml`` says."""

    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    default_tuning: Ref | None = None
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    #: The file these came from (None: built-in defaults).
    source: Path | None = None


def parse_settings(doc: TomlDocument, config_dir: Path) -> Settings:
    """The settings of a parsed ``gateway.toml``; problems go to ``doc.problems``."""
    root = doc.root()
    server = _server(root.table("server"), config_dir)
    auth = _auth(root.table("auth"))
    storage = _storage(root.table("storage"), config_dir)
    tuning = root.table("tuning")
    default_tuning = _ref(tuning, "default")
    tuning.finish()
    logging = root.table("logging")
    level = logging.choice("level", "info", LOG_LEVELS)
    logging.finish()
    root.finish()
    return Settings(
        server=server,
        auth=auth,
        storage=storage,
        default_tuning=default_tuning,
        logging=LoggingSettings(level),
        source=Path(doc.source),
    )


def _server(table: TomlTable, config_dir: Path) -> ServerSettings:
    listen = table.texts("listen", _DEFAULT_LISTEN)
    for address in listen:
        if not _is_address(address):
            table.problem("listen", f"{address!r} is not an IP address or host name")
    if "0.0.0.0" in listen and "::" in listen:
        table.problem(
            "listen",
            '"::" already accepts IPv4 connections on Linux: list "0.0.0.0" or "::", not both',
        )
    if not listen:
        table.problem("listen", "needs at least one address")
        listen = _DEFAULT_LISTEN
    port = table.integer("port", DEFAULT_PORT, 1, 65535)
    prefix = table.text("prefix", "/api").rstrip("/")
    if not _PREFIX.fullmatch(prefix):
        table.problem("prefix", f"{prefix!r} must look like /api or /haystack/api (or be empty)")
        prefix = "/api"
    tz = table.text("tz", "UTC")
    try:
        hs_tz(tz)
    except UnknownTimeZoneError:
        table.problem("tz", f"unknown time zone {tz!r} (a Haystack city such as New_York, or IANA)")
        tz = "UTC"
    server_name = table.optional_text("server_name")
    tls = _tls(table.table("tls"), config_dir)
    table.finish()
    return ServerSettings(listen, port, prefix, tz, server_name, tls)


def _tls(table: TomlTable, config_dir: Path) -> TLSSettings:
    defaults = TLSSettings()
    enabled = table.flag("enabled", True)
    certificate = config_dir / table.text("certificate", str(defaults.certificate))
    private_key = config_dir / table.text("private_key", str(defaults.private_key))
    ca_text = table.text("ca_certificates", str(defaults.ca_certificates))
    ca = config_dir / ca_text if ca_text else None
    require = table.flag("require_client_cert", False)
    version = table.choice("min_version", "1.2", ("1.2", "1.3"))
    clients_table = table.table("clients")
    clients: dict[str, Role] = {}
    for cn in clients_table.data:
        role = clients_table.choice(cn, "", _ROLES)
        if role:
            clients[cn] = Role(role)
    clients_table.finish()
    if require and ca is None:
        table.problem("require_client_cert", "needs ca_certificates (the CA of the devices)")
    if clients and ca is None:
        table.problem("clients", "device certificates need ca_certificates to be verified")
    table.finish()
    return TLSSettings(
        enabled=enabled,
        certificate=certificate,
        private_key=private_key,
        ca_certificates=ca,
        require_client_cert=require,
        min_version="1.3" if version == "1.3" else "1.2",
        clients=MappingProxyType(clients),
    )


def _auth(table: TomlTable) -> AuthSettings:
    defaults = AuthSettings()
    lifetime = table.duration("token_lifetime", defaults.token_lifetime)
    expiry = table.choice("token_expiry", "sliding", ("sliding", "fixed"))
    max_age = table.duration("token_max_age", None)
    if max_age is not None and expiry == "fixed":
        table.problem("token_max_age", 'applies to token_expiry = "sliding" only')
    plaintext = table.flag("plaintext", False)
    iterations = table.integer("iterations", DEFAULT_ITERATIONS, MIN_ITERATIONS, MAX_ITERATIONS)
    role = table.choice("default_role", Role.VIEWER.value, _ROLES)
    table.finish()
    return AuthSettings(
        token_lifetime=lifetime if lifetime is not None else defaults.token_lifetime,
        token_expiry="fixed" if expiry == "fixed" else "sliding",
        token_max_age=max_age,
        plaintext=plaintext,
        iterations=iterations,
        default_role=Role(role),
    )


def _storage(table: TomlTable, config_dir: Path) -> StorageSettings:
    defaults = StorageSettings()
    path = config_dir / table.text("path", str(defaults.path))
    days = table.number("history_days", defaults.history_days, 0)
    max_mb = table.number("history_max_mb", 1024, 0)
    if max_mb is not None and 0 < max_mb < 1:
        table.problem("history_max_mb", "must be 0 (no cap) or at least 1")
        max_mb = 1024
    table.finish()
    return StorageSettings(
        path=path,
        history_days=days or None,
        history_max_bytes=int(max_mb * 1024 * 1024) if max_mb else None,
    )


def _ref(table: TomlTable, key: str) -> Ref | None:
    text = table.optional_text(key)
    if text is None:
        return None
    if not _REF_ID.fullmatch(text):
        table.problem(key, f"{text!r} is not a record id (like tuning.default)")
        return None
    return Ref(text)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return _HOSTNAME.fullmatch(text) is not None
    return True
