"""``hs-gateway demo``: simulated devices on loopback and the real gateway over them.

Everything lives in a temporary folder that is removed at the end: a configuration like the
appliance's (gateway.toml, points, a register map), throw-away certificates (a site CA and a
server certificate for 127.0.0.1/localhost), a demo admin with a random password and a bearer
token, and the SQLite database. The simulated air handlers run on pymodbus's server on
127.0.0.1; the gateway is the same ``Service`` that ``hs-gateway serve`` runs, with
connectors polling them every second, history collected every minute and on change, and
pointWrite reaching their registers. Ctrl-C stops the gateway, then the devices, and removes
the folder.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import trio

from drivers.aio import open_aio_host
from drivers.modbus.learn import learn_points
from drivers.modbus.regmap import RegisterMap
from drivers.sim.modbus import DEMO_REGISTER_MAP, demo_devices, open_modbus_sim
from gateway.auth import pki
from gateway.auth.roles import Role
from gateway.auth.tokens import BearerTokens
from gateway.auth.users import create_user
from gateway.haystack.codecs.trio import encode_records
from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.runtime.cli_serve import Service, configure_logging
from gateway.runtime.config import load_config
from gateway.runtime.config_settings import AuthSettings
from gateway.runtime.sdnotify import SystemdNotifier
from gateway.storage.sqlite import SQLiteAdapter

__all__ = ["main"]

log = logging.getLogger(__name__)

DEMO_USER = "demo"
_ITERATIONS = 4096  # a throw-away password: fast logins matter more than PBKDF2 cost here


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _settings_text(port: int) -> str:
    return f"""\
# The demo's settings (a temporary copy of what /etc/hs-gateway/gateway.toml holds).
[server]
listen = ["127.0.0.1"]
port = {port}
prefix = "/api"
tz = "New_York"
server_name = "hs-gateway-demo"

[server.tls]
enabled = true
certificate = "tls/server.pem"
private_key = "tls/server.key"
ca_certificates = "tls/ca.pem"
require_client_cert = false

[auth]
token_lifetime = "8h"
iterations = {_ITERATIONS}

[storage]
path = "state/gateway.db"
history_days = 7

[logging]
level = "info"
"""


def _points(units: list[int], sim_uri: str, regmap: RegisterMap) -> list[dict[str, Value]]:
    records: list[dict[str, Value]] = [
        {"id": Ref("demo-site"), "dis": "Demo building", "site": MARKER, "tz": "New_York"},
        {
            "id": Ref("demo-tuning"),
            "dis": "Demo tuning: poll every second",
            "connTuning": MARKER,
            "pollTime": Number(1, "s"),
            "staleTime": Number(30, "s"),
        },
    ]
    for unit in units:
        conn = Ref(f"ahu{unit}-conn")
        equip = Ref(f"ahu{unit}")
        records += [
            {
                "id": conn,
                "dis": f"AHU-{unit} controller",
                "conn": MARKER,
                "modbusConn": MARKER,
                "uri": sim_uri,
                "modbusSlave": Number(unit),
                "modbusRegMapUri": "ahu.csv",
                "connTuningRef": Ref("demo-tuning"),
            },
            {
                "id": equip,
                "dis": f"AHU-{unit}",
                "equip": MARKER,
                "ahu": MARKER,
                "siteRef": Ref("demo-site"),
            },
        ]
        for point in learn_points(regmap, conn_ref=conn):
            if point.get("modbusCur") == "ping":
                continue
            name = point.get("modbusCur") or point.get("modbusWrite")
            point.update(
                {
                    "id": Ref(f"ahu{unit}-{name}"),
                    "dis": f"AHU-{unit} {point['dis']}",
                    "siteRef": Ref("demo-site"),
                    "equipRef": equip,
                    "tz": "New_York",
                    "his": MARKER,
                    "hisCollectInterval": Number(1, "min"),
                    "hisCollectCov": MARKER,
                }
            )
            records.append(point)
    return records


def _write_config(root: Path, port: int, sim_uri: str, units: list[int]) -> Path:
    etc = root / "etc"
    for sub in ("points", "maps", "tls", "state"):
        (etc / sub).mkdir(parents=True)
    (etc / "gateway.toml").write_text(_settings_text(port), encoding="utf-8")
    (etc / "maps" / "ahu.csv").write_text(DEMO_REGISTER_MAP, encoding="utf-8")
    regmap = RegisterMap.parse(DEMO_REGISTER_MAP, source="maps/ahu.csv")
    (etc / "points" / "demo.trio").write_text(
        "// The demo's connectors and points (written by hs-gateway demo)\n"
        + encode_records(_points(units, sim_uri, regmap)),
        encoding="utf-8",
    )
    ca = pki.create_ca("hs-gateway demo CA")
    server = pki.issue_server_certificate(
        ca, "localhost", hostnames=["localhost"], ip_addresses=["127.0.0.1"]
    )
    pki.save_certificates(etc / "tls" / "ca.pem", ca.certificate)
    pki.save_certificates(etc / "tls" / "server.pem", server.certificate)
    pki.save_private_key(etc / "tls" / "server.key", server.key)
    return etc


async def _prepare_store(db: Path, password: str, settings: AuthSettings) -> str:
    """The demo admin, and a bearer token for the ready-to-paste curl query."""
    store = SQLiteAdapter(db)
    await store.open()
    try:
        user = create_user(DEMO_USER, password, Role.ADMIN, iterations=_ITERATIONS)
        await store.create_user(user)
        tokens = BearerTokens(store, settings.token_policy())
        token, _ = await tokens.issue(DEMO_USER, Role.ADMIN, now=time.time(), scheme="demo")
        return token
    finally:
        await store.aclose()


def _banner(url: str, etc: Path, password: str, token: str) -> str:
    ca = etc / "tls" / "ca.pem"
    return f"""
hs-gateway demo is starting (simulated air handlers on Modbus TCP, 127.0.0.1)

  URL       {url}/api
  login     {DEMO_USER} / {password}   (SCRAM-SHA-256; role admin)
  CA        {ca}

Live points with curl (a bearer token for {DEMO_USER} is ready):

  curl --cacert {ca} -H 'Authorization: BEARER authToken={token}' \\
       '{url}/api/read?filter=point%20and%20cur'

With phable (pip install phable):

  python3 -c 'import ssl, phable; c = phable.HaystackClient.open("{url}/api", "{DEMO_USER}", \\
    "{password}", ssl_context=ssl.create_default_context(cafile="{ca}")); \\
    print(c.read_all("point and temp").rows)'

A pointWrite (AHU-1's supply setpoint to 21 °C at level 8) moves the simulated register;
the next poll brings it back as curVal:

  printf 'ver:"3.0"\\nid,level,val\\n@ahu1-supplySp,8,21\\n' | curl --cacert {ca} \\
       -H 'Authorization: BEARER authToken={token}' -H 'Content-Type: text/zinc' \\
       --data-binary @- '{url}/api/pointWrite'

Ctrl-C stops everything and removes {etc.parent}
"""


async def run_demo(units: list[int], port: int, keep: bool) -> int:
    """Run the demo until Ctrl-C; the exit status."""
    root = Path(tempfile.mkdtemp(prefix="hs-gateway-demo-"))
    try:
        async with (
            open_aio_host() as aio,
            open_modbus_sim(aio, demo_devices(units), host="127.0.0.1", port=0) as sim,
        ):
            etc = _write_config(root, port or _free_port(), sim.uri, units)
            config = await trio.to_thread.run_sync(load_config, etc)
            password = secrets.token_urlsafe(12)
            token = await _prepare_store(
                config.settings.storage.path, password, config.settings.auth
            )
            url = f"https://127.0.0.1:{config.settings.server.port}"
            print(_banner(url, etc, password, token), flush=True)
            service = Service(config, SystemdNotifier(environ={}))
            return await service.run()
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


DESCRIPTION = (
    "Simulated air handlers on 127.0.0.1 and the gateway over them, with throw-away "
    "certificates, a demo admin and SQLite in a temporary folder. Ctrl-C stops everything "
    "and removes the folder."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` options (shared by ``hs-gateway demo`` and ``main``)."""
    parser.add_argument(
        "--port", type=int, default=8443, help="HTTPS port (default 8443; 0: any free port)"
    )
    parser.add_argument("--devices", type=int, default=2, help="simulated air handlers (default 2)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder when the demo ends"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m gateway.runtime.demo``."""
    parser = argparse.ArgumentParser(prog="hs-gateway demo", description=DESCRIPTION)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    """Run the demo with parsed options (``hs-gateway demo``)."""
    if not 1 <= args.devices <= 20:
        print("hs-gateway demo: --devices must be between 1 and 20", file=sys.stderr)
        return 2
    configure_logging("info")
    try:
        return trio.run(run_demo, list(range(1, args.devices + 1)), args.port, args.keep)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
