"""``hs-gateway serve``: the service systemd runs (``Type=notify``).

One trio run holds the web server (Hypercorn, TLS from ``[server.tls]``), the runtime
supervisor (:class:`gateway.runtime.supervisor.Gateway`: one connection runner per connector)
and the asyncio thread of the protocol libraries. In order:

1. the configuration is loaded and validated (every problem logged, exit 1, before anything
   opens);
2. the web server starts: its lifespan opens the SQLite store and restores priority arrays;
3. the store's records are made to match ``points/*.trio`` (:mod:`gateway.runtime.config_sync`)
   and the connectors start;
4. systemd hears ``READY=1`` and a ``STATUS=`` line with the connector counts (refreshed as
   they change), and ``WATCHDOG=1`` every half ``WatchdogSec``.

Signals: **SIGHUP** (``systemctl reload``) re-reads ``points/`` and ``maps/``, syncs the store
and calls the supervisor's ``apply()``, which restarts only the connectors that changed and
keeps every priority array; a configuration with problems is refused and the running one
stays. ``gateway.toml`` is read at start only (a change is logged as needing a restart).
**SIGTERM** / **SIGINT**: ``STOPPING=1``, the runners stop (writes in flight finish, history is
flushed), then the web server drains its connections and the store closes, all within
``stop_deadline`` seconds; past it everything is cancelled and the exit status is 1.

Logs are one line per event on stderr; under systemd (``$JOURNAL_STREAM``) each line carries
its syslog priority (``<6>``) so ``journalctl -p warning`` works.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from functools import partial
from pathlib import Path
from typing import Final

import trio
from hypercorn.config import Config as HyperConfig

from drivers.aio import open_aio_host
from drivers.modbus.link import LinkRegistry
from drivers.modbus.regmap import RegisterMap
from gateway.auth.authenticators import CertAuthenticator, StorageAuthenticator
from gateway.haystack.kinds import Ref
from gateway.ops import HaystackOps
from gateway.runtime.config import ConfigError, GatewayConfig, load_config, tls_config
from gateway.runtime.config_modbus import MAP_TAGS
from gateway.runtime.config_sync import sync_records
from gateway.runtime.pointstate import error_text
from gateway.runtime.registry import DriverRegistry, RegisterMaps, modbus_kind
from gateway.runtime.sdnotify import SystemdNotifier
from gateway.runtime.supervisor import Gateway
from gateway.storage.base import StorageError
from gateway.storage.sqlite import SQLiteAdapter
from gateway.web.app import create_app
from gateway.web.security import AuthGate
from gateway.web.tls import TLSConfigError
from gateway.web.tls import serve as serve_web
from gateway.writes import PointWrites

__all__ = ["DEFAULT_STOP_DEADLINE", "Service", "configure_logging", "run_service"]

log = logging.getLogger("hs_gateway")

DEFAULT_STOP_DEADLINE: Final = 20.0
STATUS_INTERVAL: Final = 1.0
_WEB_GRACE: Final = 5.0
_SYSLOG_PRIORITY: Final = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    """``<priority>name: message``: journald reads the priority off the line."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{prio}>" + super().format(record).replace("\n", f"\n<{prio}>")


def configure_logging(level: str = "info", environ: dict[str, str] | None = None) -> None:
    """Log to stderr, one line per event (journald-aware)."""
    env = os.environ if environ is None else environ
    handler = logging.StreamHandler(sys.stderr)
    if env.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class Service:
    """The running gateway: web server, runtime and the signals that steer them."""

    def __init__(
        self,
        config: GatewayConfig,
        notifier: SystemdNotifier,
        *,
        stop_deadline: float = DEFAULT_STOP_DEADLINE,
    ) -> None:
        self.config = config
        self.notifier = notifier
        self.stop_deadline = stop_deadline
        settings = config.settings
        storage = settings.storage
        self.store = SQLiteAdapter(
            storage.path,
            his_retention_days=storage.history_days,
            his_max_bytes=storage.history_max_bytes,
        )
        self.writes = PointWrites(self.store)
        ops = HaystackOps(
            self.store,
            tz=settings.server.tz,
            server_name=settings.server.server_name,
            writes=self.writes,
        )
        tls = settings.server.tls
        auth = settings.auth
        certificates = CertAuthenticator(roles=tls.clients) if tls.clients else None
        gate = AuthGate.build(
            StorageAuthenticator(self.store),
            user_store=self.store,
            storage=self.store,
            token_policy=auth.token_policy(),
            allow_plaintext=auth.plaintext,
            certificates=certificates,
            default_role=auth.default_role,
            iterations=auth.iterations,
            # Kept beside the database: unknown users' fake salts must not change at a restart.
            secret_file=settings.storage.path.parent / "scram-secret",
        )
        self.app = create_app(ops, auth=gate, prefix=settings.server.prefix)
        self.hyper = HyperConfig()
        self.hyper.bind = settings.server.binds
        self.hyper.graceful_timeout = _WEB_GRACE
        self.hyper.accesslog = None
        self.hyper.errorlog = logging.getLogger("hypercorn.error")
        self.tls = tls_config(tls) if tls.enabled else None
        self.register_maps = RegisterMaps(
            dict(config.database.register_maps), base_dir=config.config_dir / "maps"
        )
        self.gateway: Gateway | None = None
        self.binds: list[str] = []
        self._status = ""
        self._conn_seen: dict[Ref, tuple[str, str | None]] = {}

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status."""
        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        # Open the receiver first: a SIGHUP during start-up must not kill the process.
        with trio.open_signal_receiver(*signals) as received:
            async with open_aio_host() as aio:
                registry = DriverRegistry([modbus_kind(aio, LinkRegistry(), self.register_maps)])
                db = self.config.database
                self.gateway = Gateway(
                    self.store,
                    registry,
                    writes=self.writes,
                    tunings=db.tunings,
                    default_tuning=db.default_tuning,
                    expire_overrides=False,  # the web app's own task ends timed overrides
                    tune_gc=True,  # the appliance owns the process (see the supervisor)
                )
                return await self._serve(self.gateway, received)

    async def _serve(self, gateway: Gateway, received: AsyncIterator[int]) -> int:
        web_stop = trio.Event()
        async with trio.open_nursery() as nursery:
            web = partial(
                serve_web, self.app, self.hyper, tls=self.tls, shutdown_trigger=web_stop.wait
            )
            self.binds = await nursery.start(web)
            synced = await sync_records(self.store, self.config.database.all_records)
            log.info(
                "point database: %d records (%d added, %d updated, %d removed)",
                len(self.config.database.records),
                len(synced.added),
                len(synced.updated),
                len(synced.removed),
            )
            await nursery.start(gateway.run, self.config.connectors, self.config.points)
            log.info("serving %s", ", ".join(self.binds))
            if self.tls is None:
                log.warning("TLS is off ([server.tls] enabled = false): tokens travel in clear")
            self.notifier.ready(self._update_status())
            async with trio.open_nursery() as helpers:
                helpers.start_soon(self.notifier.run_watchdog)
                helpers.start_soon(self._status_loop)
                signum = await self._wait_for_stop(received)
                helpers.cancel_scope.cancel()
            log.info("stopping (%s)", signal.Signals(signum).name)
            self.notifier.stopping("stopping")
            nursery.cancel_scope.deadline = trio.current_time() + self.stop_deadline
            await gateway.stop()
            web_stop.set()
        if nursery.cancel_scope.cancelled_caught:
            log.error("did not stop within %g s: cancelled", self.stop_deadline)
            return 1
        log.info("stopped")
        return 0

    async def _wait_for_stop(self, received: AsyncIterator[int]) -> int:
        async for signum in received:
            if signum == signal.SIGHUP:
                await self.reload()
            else:
                return signum
        return signal.SIGTERM  # pragma: no cover - the receiver never ends by itself

    async def reload(self) -> bool:
        """Re-read points and maps and apply the difference; whether it was applied."""
        assert self.gateway is not None
        self.notifier.reloading()
        log.info("reloading %s", self.config.config_dir)
        try:
            new = await trio.to_thread.run_sync(load_config, self.config.config_dir)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("%s", problem)
            log.error(
                "reload refused: %d problems; still running the previous configuration",
                len(exc.problems),
            )
            refused = f"reload refused ({plural(len(exc.problems), 'problem')}); "
            self.notifier.ready(refused + self._status)
            return False
        if new.settings != self.config.settings:
            log.warning("gateway.toml changed: restart the service to apply it")
        old_maps = self.config.database.register_maps
        for name, regmap in new.database.register_maps.items():
            self.register_maps.add(name, regmap)
        synced = await sync_records(self.store, new.database.all_records)
        for rid in synced.removed:
            self.writes.forget(rid)
        gateway = self.gateway
        gateway.default_tuning = new.database.default_tuning
        # A connector whose register map file changed has the same records as before: name it
        # so that apply() restarts it with the new map.
        result = await gateway.apply(
            new.connectors,
            new.points,
            new.database.tunings,
            restart=_remapped_connectors(new, old_maps),
        )
        self.config = new
        log.info(
            "reloaded: records +%d ~%d -%d; connectors started %d, restarted %d, stopped %d, "
            "unchanged %d",
            len(synced.added),
            len(synced.updated),
            len(synced.removed),
            len(result.started),
            len(result.restarted),
            len(result.stopped),
            len(result.unchanged),
        )
        self.notifier.ready(self._update_status())
        return True

    def _update_status(self) -> str:
        """The STATUS= line: connectors by status and the point count."""
        gateway = self.gateway
        runners = gateway.runners if gateway is not None else {}
        counts = Counter(r.conn_status.value for r in runners.values())
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        points = sum(len(r.points) for r in runners.values())
        text = plural(len(runners), "connector") + (f" ({detail})" if detail else "")
        self._status = f"{text}, {plural(points, 'point')}"
        return self._status

    def _log_connector_changes(self) -> None:
        """One log line per connector whose status or error changed since the last look."""
        gateway = self.gateway
        runners = gateway.runners if gateway is not None else {}
        for cid, runner in runners.items():
            now = (runner.conn_status.value, runner.conn_err)
            if self._conn_seen.get(cid) == now:
                continue
            self._conn_seen[cid] = now
            status, err = now
            level = logging.INFO if status in ("ok", "unknown", "disabled") else logging.WARNING
            log.log(level, "connector @%s: %s%s", cid.val, status, f": {err}" if err else "")
        for cid in set(self._conn_seen) - set(runners):
            del self._conn_seen[cid]

    async def _status_loop(self) -> None:
        """Log connector changes, and send a new STATUS= line whenever the counts change."""
        while True:
            self._log_connector_changes()
            before = self._status
            text = self._update_status()
            if text != before:
                log.info("status: %s", text)
                self.notifier.status(text)
            await trio.sleep(STATUS_INTERVAL)


def plural(count: int, word: str) -> str:
    """``1 point``, ``2 points``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _remapped_connectors(new: GatewayConfig, old_maps: Mapping[str, RegisterMap]) -> set[Ref]:
    """Ids of connectors whose register map differs from the one they run with."""
    changed: set[Ref] = set()
    for conn in new.connectors:
        name = next((conn.get(t) for t in MAP_TAGS if conn.get(t) is not None), None)
        cid = conn.get("id")
        if name is None or not isinstance(cid, Ref):
            continue
        before = old_maps.get(str(name))
        after = new.database.register_maps.get(str(name))
        if before is not None and after is not None and before != after:
            changed.add(cid)
    return changed


async def run_service(
    config_dir: Path,
    notifier: SystemdNotifier | None = None,
    stop_deadline: float = DEFAULT_STOP_DEADLINE,
) -> int:
    """Load the configuration and run the service; the exit status."""
    notifier = notifier if notifier is not None else SystemdNotifier()
    try:
        config = await trio.to_thread.run_sync(load_config, config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        log.error(
            "not started: %d configuration problems (hs-gateway check-config)", len(exc.problems)
        )
        notifier.status(f"configuration has {len(exc.problems)} problems")
        return 1
    logging.getLogger().setLevel(config.settings.logging.level.upper())
    service = Service(config, notifier, stop_deadline=stop_deadline)
    try:
        return await service.run()
    except Exception as exc:
        # The port is taken, the store cannot be opened...: one line for the journal (with a
        # traceback only when it is not one of those), then systemd's Restart= decides.
        log.error("stopped by an error: %s", _describe(exc), exc_info=not _expected(exc))
        notifier.status(f"failed: {_describe(exc)}")
        return 1
    finally:
        notifier.close()


def _expected(exc: BaseException) -> bool:
    """Whether ``exc`` (every leaf of a group) is an environment problem, not a bug."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_expected(e) for e in exc.exceptions)
    return isinstance(exc, OSError | StorageError | TLSConfigError)


def _describe(exc: BaseException) -> str:
    """A one-line account of an error (the leaves of an exception group)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return " ".join(error_text(exc).split())
