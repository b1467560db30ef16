"""``hs-gateway learn @conn``: point records for a connector, as a Trio file to edit and keep.

The connector's driver is built from the configuration and asked to ``learn`` (Modbus: one
point per register map row; no device is contacted for that). A driver that can only learn
while connected (``DownError``) is opened first. Each record gets what a points file needs
and the driver cannot know: an ``id`` (``@<conn>-<register>``), and on request ``siteRef``,
``equipRef`` and history (``his``, ``tz`` and ``hisCollectInterval``). The output passes
``check-config`` once saved under ``points/`` (with ``--site`` and ``--equip`` naming records
that exist).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from drivers.aio import open_aio_host
from drivers.base import DownError, DriverError
from drivers.modbus.link import LinkRegistry
from gateway.haystack.codecs.trio import encode_records
from gateway.haystack.errors import ParseError
from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.runtime.config import GatewayConfig, check_config
from gateway.runtime.registry import DriverRegistry, RegisterMaps, modbus_kind

__all__ = ["add_parser", "learn_records"]

_SLUG = re.compile(r"[^A-Za-z0-9_.~-]+")


class LearnError(Exception):
    """Learn cannot be done; the message is for the operator."""


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``learn``."""
    learn = commands.add_parser(
        "learn",
        parents=[common],
        help="print point records for a connector (from its register map or device)",
        description="Learn a connector's points and print them as Trio records, ready to "
        "save under points/ (review and trim them first).",
    )
    learn.add_argument("conn", help="the connector id, like @meter1")
    learn.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE")
    learn.add_argument("--force", action="store_true", help="overwrite FILE")
    learn.add_argument("--site", metavar="REF", help="siteRef of the points, like @site")
    learn.add_argument("--equip", metavar="REF", help="equipRef of the points")
    learn.add_argument(
        "--his",
        metavar="INTERVAL",
        help="collect history of every point at this interval, like 15min",
    )
    learn.add_argument("--tz", default=None, help="tz of history points (default: the server's)")
    learn.set_defaults(handler=_learn)


def _ref(text: str | None) -> Ref | None:
    return Ref(text.removeprefix("@")) if text else None


def _learn(args: argparse.Namespace) -> int:
    try:
        config, problems = check_config(args.config_dir, check_tls_files=False)
        text, count = trio.run(learn_records, config, _ref(args.conn), args)
    except LearnError as exc:
        print(f"hs-gateway: {exc}", file=sys.stderr)
        return 1
    if problems:
        print(
            f"note: the configuration has {len(problems)} problems (hs-gateway check-config)",
            file=sys.stderr,
        )
    if args.output is None:
        sys.stdout.write(text)
        return 0
    if args.output.exists() and not args.force:
        print(f"hs-gateway: {args.output} exists; use --force to replace it", file=sys.stderr)
        return 1
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {count} point records to {args.output}", file=sys.stderr)
    return 0


async def learn_records(
    config: GatewayConfig, conn_id: Ref | None, args: argparse.Namespace
) -> tuple[str, int]:
    """The Trio text of the connector's learned points, and how many there are."""
    conn = next((c for c in config.connectors if c.get("id") == conn_id), None)
    if conn is None or conn_id is None:
        ids = [c.get("id") for c in config.connectors]
        known = ", ".join(str(i) for i in ids if isinstance(i, Ref))
        raise LearnError(f"no connector {args.conn} (connectors: {known or 'none'})")
    async with open_aio_host() as aio:
        maps = RegisterMaps(dict(config.database.register_maps), config.config_dir / "maps")
        registry = DriverRegistry([modbus_kind(aio, LinkRegistry(), maps)])
        kind = registry.kind_of(conn)
        if kind is None:
            raise LearnError(f"no driver for connector {args.conn}")
        try:
            driver: Any = kind.factory(conn)
        except DriverError as exc:
            raise LearnError(f"connector {args.conn}: {exc}") from None
        if not hasattr(driver, "learn"):
            raise LearnError(f"the {kind.name} driver cannot learn")
        try:
            learned = await _learn_from(driver)
        except DriverError as exc:
            raise LearnError(f"learn {args.conn}: {exc}") from None
    records = [_complete(rec, conn_id, args, config) for rec in learned]
    header = f"// Learned from @{conn_id.val} by hs-gateway learn; review before use.\n"
    return header + encode_records(records), len(records)


async def _learn_from(driver: Any) -> list[dict[str, Value]]:
    learned: list[dict[str, Value]]
    try:
        learned = await driver.learn(None)
    except DownError:
        await driver.open()
        try:
            learned = await driver.learn(None)
        finally:
            await driver.aclose()
    return learned


def _complete(
    rec: Mapping[str, Value], conn_id: Ref, args: argparse.Namespace, config: GatewayConfig
) -> dict[str, Value]:
    out = dict(rec)
    name = next(
        (str(rec[t]) for t in rec if t.endswith(("Cur", "Write")) and isinstance(rec[t], str)),
        str(rec.get("dis", "point")),
    )
    out["id"] = Ref(f"{conn_id.val}-{_SLUG.sub('-', name)}")
    site, equip = _ref(args.site), _ref(args.equip)
    if site is not None:
        out["siteRef"] = site
    if equip is not None:
        out["equipRef"] = equip
    if args.his:
        from gateway.haystack.codecs.zinc import decode_val

        try:
            interval = decode_val(args.his)
        except ParseError:
            raise LearnError(f"--his {args.his!r} is not a duration like 15min") from None
        if not isinstance(interval, Number):
            raise LearnError(f"--his {args.his!r} is not a duration like 15min")
        out["his"] = MARKER
        out["tz"] = args.tz or config.settings.server.tz
        out["hisCollectInterval"] = interval
    elif out.get("his") is MARKER and "tz" not in out:
        out["tz"] = args.tz or config.settings.server.tz
    return out
