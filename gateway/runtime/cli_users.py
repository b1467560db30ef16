"""``hs-gateway user add|passwd|list|remove``: the users of the gateway's SQLite store.

Passwords are read from the terminal (twice, without echo) or, with ``--password-stdin``, as
one line from standard input (for scripts: ``printf '%s\\n' "$PW" | hs-gateway user add ...``);
never from the command line, where every user of the machine could read them.

The store is the file of ``[storage] path`` in gateway.toml (or ``--db``). The service holds
that file exclusively while it runs, so stop it first (``systemctl stop hs-gateway``) or manage
users through the users API of the running gateway. Run as root, these commands act as the
owner of the database's directory (the ``hs-gateway`` user on an appliance), so the files they
create stay usable by the service.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from gateway.auth.errors import UserError
from gateway.auth.roles import Role
from gateway.auth.users import change_password, create_user, ensure_admin_remains
from gateway.runtime.config import ConfigError, load_settings
from gateway.storage.base import StorageError
from gateway.storage.sqlite import SQLiteAdapter

__all__ = ["add_parser"]

_ROLES = [r.value for r in Role]


class UserCommandError(Exception):
    """A user command that cannot be done; the message is for the operator."""


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``user`` and its subcommands."""
    store_options = argparse.ArgumentParser(add_help=False, parents=[common])
    store_options.add_argument(
        "--db",
        type=Path,
        metavar="FILE",
        help="the SQLite database (default: [storage] path of gateway.toml)",
    )
    user = commands.add_parser(
        "user",
        help="add, change, list or remove users",
        description="Manage the users of the gateway's store (stop the service first).",
    )
    sub = user.add_subparsers(dest="user_command", metavar="<action>", required=True)

    add = sub.add_parser(
        "add",
        parents=[store_options],
        help="add a user",
        description="Add a user; the password is asked for (or read with --password-stdin).",
    )
    add.add_argument("username", help="1-64 characters of A-Z a-z 0-9 . _ @ -")
    add.add_argument(
        "--role",
        choices=_ROLES,
        default=Role.VIEWER.value,
        help="viewer (read), operator (+ writes), admin (+ users); default: %(default)s",
    )
    _password_option(add)
    add.set_defaults(handler=_run(_add))

    passwd = sub.add_parser(
        "passwd",
        parents=[store_options],
        help="set a user's password",
        description="Set a new password; the user's sessions are ended.",
    )
    passwd.add_argument("username")
    _password_option(passwd)
    passwd.set_defaults(handler=_run(_passwd))

    listing = sub.add_parser(
        "list", parents=[store_options], help="list users", description="List every user."
    )
    listing.set_defaults(handler=_run(_list))

    remove = sub.add_parser(
        "remove",
        parents=[store_options],
        help="remove a user",
        description="Remove a user and end their sessions (the last admin cannot go).",
    )
    remove.add_argument("username")
    remove.set_defaults(handler=_run(_remove))


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from standard input instead of the terminal",
    )


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise UserCommandError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise UserCommandError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UserCommandError("the passwords differ")
    return first


def _db_path(args: argparse.Namespace) -> tuple[Path, int]:
    """The database file and the PBKDF2 iterations of new passwords."""
    from gateway.auth.scram import DEFAULT_ITERATIONS

    if args.db is not None:
        return args.db, DEFAULT_ITERATIONS
    try:
        settings = load_settings(args.config_dir)
    except ConfigError as exc:
        raise UserCommandError(f"{exc}\n(or name the database with --db)") from None
    return settings.storage.path, settings.auth.iterations


def _act_as_owner(directory: Path) -> None:
    """As root, become the owner of the store's directory (so new files stay theirs)."""
    if os.geteuid() != 0:
        return
    try:
        info = directory.stat()
    except OSError:
        return
    if info.st_uid == 0:
        return
    os.setgroups([])
    os.setgid(info.st_gid)
    os.setuid(info.st_uid)


Action = Callable[[SQLiteAdapter, argparse.Namespace, int], Awaitable[None]]


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            path, iterations = _db_path(args)
            if not path.parent.is_dir():
                raise UserCommandError(f"{path.parent} does not exist")
            _act_as_owner(path.parent)
            trio.run(_with_store, action, args, path, iterations)
        except UserCommandError as exc:
            print(f"hs-gateway: {exc}", file=sys.stderr)
            return 1
        return 0

    return handler


async def _with_store(
    action: Action, args: argparse.Namespace, path: Path, iterations: int
) -> None:
    store = SQLiteAdapter(path)
    try:
        await store.open()
    except StorageError as exc:
        hint = ""
        if "locked" in str(exc):
            hint = " (the service is running: stop it first, or use the users API)"
        raise UserCommandError(f"{exc}{hint}") from None
    try:
        await action(store, args, iterations)
    except (UserError, StorageError) as exc:
        raise UserCommandError(str(exc)) from None
    finally:
        await store.aclose()


async def _add(store: SQLiteAdapter, args: argparse.Namespace, iterations: int) -> None:
    if await store.get_user(args.username) is not None:
        raise UserCommandError(f"user {args.username} exists (change the password: user passwd)")
    password = _read_password(args)
    user = await trio.to_thread.run_sync(
        lambda: create_user(
            args.username, password, Role(args.role), iterations=iterations, now=_now()
        )
    )
    await store.create_user(user)
    print(f"added {user.username} ({user.role.value})")


async def _passwd(store: SQLiteAdapter, args: argparse.Namespace, iterations: int) -> None:
    user = await store.get_user(args.username)
    if user is None:
        raise UserCommandError(f"no user {args.username}")
    password = _read_password(args)
    changed = await trio.to_thread.run_sync(
        lambda: change_password(user, password, iterations=iterations, now=_now())
    )
    await store.update_user(changed)
    ended = await store.revoke_user_tokens(user.username)
    print(f"password of {user.username} changed; {ended} sessions ended")


async def _list(store: SQLiteAdapter, args: argparse.Namespace, iterations: int) -> None:
    users = await store.list_users()
    if not users:
        print("no users (add one: hs-gateway user add <name> --role admin)")
        return
    width = max(len(u.username) for u in users)
    print(f"{'USER':<{width}}  {'ROLE':<8}  {'ENABLED':<7}  CREATED")
    for user in users:
        created = (
            dt.datetime.fromtimestamp(user.created, dt.UTC).strftime("%Y-%m-%d %H:%M")
            if user.created is not None
            else "-"
        )
        enabled = "yes" if user.enabled else "no"
        print(f"{user.username:<{width}}  {user.role.value:<8}  {enabled:<7}  {created}")


async def _remove(store: SQLiteAdapter, args: argparse.Namespace, iterations: int) -> None:
    user = await store.get_user(args.username)
    if user is None:
        raise UserCommandError(f"no user {args.username}")
    await ensure_admin_remains(store, user, None)
    await store.delete_user(user.username)
    ended = await store.revoke_user_tokens(user.username)
    print(f"removed {user.username}; {ended} sessions ended")


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()
