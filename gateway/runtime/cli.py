"""``hs-gateway``: the command of the appliance (the console script of the package).

::

    hs-gateway serve                       the service (what systemd runs)
    hs-gateway demo                        simulated devices and a gateway over them
    hs-gateway check-config                every configuration problem, with file and line
    hs-gateway user add|passwd|list|remove users of the SQLite store
    hs-gateway certs init-ca|server|client the site PKI under /etc/hs-gateway/tls
    hs-gateway learn @conn                 point records for a connector (Trio)
    hs-gateway --version

Every command takes ``--config-dir`` (default ``/etc/hs-gateway``, or ``$HS_GATEWAY_CONFIG_DIR``).
Exit status: 0 success, 1 failure (the reason is printed), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from gateway.runtime.config import DEFAULT_CONFIG_DIR, check_config

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def _version() -> str:
    try:
        return version("hs-gateway")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _config_dir_default() -> Path:
    return Path(os.environ.get("HS_GATEWAY_CONFIG_DIR") or DEFAULT_CONFIG_DIR)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config-dir",
        type=Path,
        default=_config_dir_default(),
        metavar="DIR",
        help="configuration directory (default: %(default)s; env HS_GATEWAY_CONFIG_DIR)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    from gateway.runtime import cli_certs, cli_learn, cli_users

    parser = argparse.ArgumentParser(
        prog="hs-gateway",
        description="Edge gateway: field devices (Modbus, ...) served as Project Haystack points.",
        epilog="Run 'hs-gateway <command> --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"hs-gateway {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    common = _common()

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the gateway service (what systemd starts)",
        description="Run the gateway: connectors, store and the Haystack HTTP API. Notifies "
        "systemd (Type=notify, watchdog); SIGHUP re-reads points and maps, SIGTERM stops.",
    )
    serve.add_argument(
        "--stop-deadline",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="longest graceful stop after SIGTERM (default: %(default)s)",
    )
    serve.set_defaults(handler=_serve)

    from gateway.runtime import demo as demo_module

    demo = commands.add_parser(
        "demo",
        help="simulated devices and a gateway over them (Ctrl-C stops)",
        description=demo_module.DESCRIPTION,
    )
    demo_module.add_arguments(demo)
    demo.set_defaults(handler=_demo)

    check = commands.add_parser(
        "check-config",
        parents=[common],
        help="check the configuration and print every problem",
        description="Read gateway.toml, points/*.trio and maps/*.csv and print every problem "
        "with its file, line and key. Exit status 0 when clean, 1 otherwise.",
    )
    check.add_argument(
        "--no-tls-files",
        action="store_true",
        help="do not check that the TLS files exist and match (e.g. before `certs`)",
    )
    check.set_defaults(handler=_check_config)

    cli_users.add_parser(commands, common)
    cli_certs.add_parser(commands, common)
    cli_learn.add_parser(commands, common)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import trio

    from gateway.runtime.cli_serve import configure_logging, run_service

    configure_logging()
    return trio.run(run_service, args.config_dir, None, args.stop_deadline)


def _demo(args: argparse.Namespace) -> int:
    from gateway.runtime.demo import run_from_args

    return run_from_args(args)


def _check_config(args: argparse.Namespace) -> int:
    config_dir: Path = args.config_dir
    if not config_dir.is_dir():
        print(f"hs-gateway: {config_dir} is not a directory", file=sys.stderr)
        return 1
    config, problems = check_config(config_dir, check_tls_files=not args.no_tls_files)
    for problem in problems:
        print(problem)
    if problems:
        count = len(problems)
        print(f"{plural(count, 'problem')} in {config_dir}", file=sys.stderr)
        return 1
    db = config.database
    counts = [
        plural(len(db.connectors), "connector"),
        plural(len(db.points), "point"),
        plural(len(db.of_type("site")), "site"),
        plural(len(db.of_type("equip")), "equip"),
        plural(len(db.tunings), "tuning"),
        plural(len({id(m) for m in db.register_maps.values()}), "register map"),
    ]
    print(f"{config_dir}: OK: {', '.join(counts)}")
    return 0


def plural(count: int, word: str) -> str:
    """``1 point``, ``2 points``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
