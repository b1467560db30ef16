"""The SQLite schema of the gateway's store, as a list of migration steps.

``schema_version`` has one row per step applied (version, when, what), so a database tells its
own history. :func:`migrate` applies the missing steps in order, each in its own transaction
together with its version row: a crash between two steps leaves a database at a known version,
and the next start resumes. A database from newer software (a version above ``SCHEMA_VERSION``)
is refused rather than guessed at.

Steps are only ever appended. A released step never changes: a change to the schema is a new
step, and a test migrates a database made at version 1 up to the current one.

Tables (current version):

``rec(id, tags)``                 a record's persistent tags as a Zinc dict (runtime tags are
                                  never written)
``priority_array(point, levels)`` a point's levels as a Zinc list of dicts
``his_series(sid, point, tz, unit)``  one row per point with history: the integer key the
                                  samples use, the zone of the latest write, and the unit that
                                  numeric samples share (NULL: not set yet, '': unitless)
``his(sid, ts, val, other)``      samples clustered by (point, time) (a WITHOUT ROWID table:
                                  the primary key is the storage order, so a range read is one
                                  sequential scan); ``ts`` in microseconds since the epoch,
                                  ``val`` the float of a Number in the series unit, ``other``
                                  the Zinc text of any other sample (Bool, Str, NA, NaN...)
``user(username, ...)``           users with their SCRAM verifier (never a password)
``token(token_hash, ...)``        bearer-token sessions by SHA-256 (version 2)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from gateway.storage.base import StorageError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "migrate",
    "schema_version",
    "transaction",
]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the version it produces, what it does, its statements."""

    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "records, priority arrays, history, users",
        (
            "CREATE TABLE rec (id TEXT PRIMARY KEY, tags TEXT NOT NULL) WITHOUT ROWID",
            "CREATE TABLE priority_array (point TEXT PRIMARY KEY, levels TEXT NOT NULL)"
            " WITHOUT ROWID",
            "CREATE TABLE his_series (sid INTEGER PRIMARY KEY, point TEXT NOT NULL UNIQUE,"
            " tz TEXT NOT NULL, unit TEXT)",
            "CREATE TABLE his (sid INTEGER NOT NULL, ts INTEGER NOT NULL, val REAL, other TEXT,"
            " PRIMARY KEY (sid, ts)) WITHOUT ROWID",
            "CREATE TABLE user (username TEXT PRIMARY KEY, role TEXT NOT NULL,"
            " enabled INTEGER NOT NULL, credentials TEXT NOT NULL, created REAL, updated REAL)"
            " WITHOUT ROWID",
        ),
    ),
    Migration(
        2,
        "bearer tokens survive a restart",
        (
            "CREATE TABLE token (token_hash TEXT PRIMARY KEY, username TEXT NOT NULL,"
            " role TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,"
            " scheme TEXT NOT NULL) WITHOUT ROWID",
            "CREATE INDEX token_username ON token (username)",
        ),
    ),
)

#: The version this software writes.
SCHEMA_VERSION: Final = MIGRATIONS[-1].version


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction on a connection in autocommit mode: committed or rolled back.

    ``BEGIN IMMEDIATE`` takes the write lock at once, so a transaction never fails half-way
    for want of it.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def schema_version(con: sqlite3.Connection) -> int:
    """The version of a database (0 for a new, empty one)."""
    exists = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(
    con: sqlite3.Connection,
    target: int = SCHEMA_VERSION,
    *,
    steps: Sequence[Migration] = MIGRATIONS,
    now: float | None = None,
) -> list[int]:
    """Bring a database (in autocommit mode) up to ``target``; the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
        " applied REAL NOT NULL, summary TEXT NOT NULL)"
    )
    current = schema_version(con)
    newest = steps[-1].version if steps else 0
    if current > newest:
        raise StorageError(
            f"the database has schema version {current}, newer than this software's {newest}"
        )
    applied: list[int] = []
    for step in steps:
        if step.version <= current or step.version > target:
            continue
        with transaction(con):
            for statement in step.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version (version, applied, summary) VALUES (?, ?, ?)",
                (step.version, time.time() if now is None else now, step.summary),
            )
        applied.append(step.version)
    return applied
