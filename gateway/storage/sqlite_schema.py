"""The SQLite schema of the gateway's store, as a list of migration steps.

``schema_version`` has one row per step applied (version, when, what), so a database tells its
own history. :func:`migrate` applies the missing steps in order, each in its own transaction
together with its version row: a crash between two steps leaves a database at a known version,
and the next start resumes. A database from newer software (a version above ``SCHEMA_VERSION``)
is refused rather than guessed at.

Steps are only ever appended. A released step never changes: a change to the schema is a new
step, and a test migrates a database made at version 1 up to the current one. A step may have
a Python part (``run``) after its statements, in the same transaction, to convert data.

Version 3 replaced the row-per-sample ``his(sid, ts, val, other)`` table (clustered by
``(sid, ts)``; ``val`` the float of a Number in the series unit, ``other`` the text of any other
sample) with blocks; its rows are converted series by series, in key order, deleted as they
are packed (the file never holds two copies of the history), and the table is dropped.

Tables (current version):

``rec(id, tags)``                 a record's persistent tags as a Zinc dict (runtime tags are
                                  never written)
``priority_array(point, levels)`` a point's levels as a Zinc list of dicts
``his_series(sid, point, tz, unit)``  one row per point with history: the integer key the
                                  samples use, the zone of the latest write, and the unit that
                                  numeric samples share (NULL: not set yet, '': unitless)
``his_block(sid, start_us, end_us, n, times, vals, others)``  samples in blocks of up to a
                                  few hundred consecutive samples of one point (version 3;
                                  layout in :mod:`gateway.storage.hisblocks`): keys of the
                                  first and last sample (microseconds since the epoch), how
                                  many, the packed keys and float values, and the text of the
                                  samples that are not a Number in the series unit (Bool, Str,
                                  NA, NaN...). A rowid table with the unique index
                                  ``(sid, start_us)``: a block is up to ~4 KB, which WITHOUT
                                  ROWID keeps in overflow pages (measured: 4 pages written per
                                  append into a block, against 1.03 here)
``user(username, ...)``           users with their SCRAM verifier (never a password)
``token(token_hash, ...)``        bearer-token sessions by SHA-256 (version 2)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from gateway.storage.base import StorageError
from gateway.storage.hisblocks import Run, pack

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
    """One schema step: the version it produces, what it does, its statements, and a Python
    part run after them (to convert data), if any."""

    version: int
    summary: str
    statements: tuple[str, ...]
    run: Callable[[sqlite3.Connection], None] | None = None


# Version 3's block size. Fixed here, so that the step never changes: the history reads blocks
# of any size, whatever BLOCK_SAMPLES becomes.
_V3_BLOCK_SAMPLES: Final = 240


def _his_rows_to_blocks(con: sqlite3.Connection) -> None:
    """Version 3: pack the rows of ``his`` into ``his_block``, series by series in key order;
    ``val`` becomes the value, ``other`` (NaN in the values) the sample's text.

    Rows are packed a chunk at a time and deleted once packed: the pages they free take the
    next chunk's blocks, so the file grows by about a chunk, not by a second copy of the
    history (a database kept under a size quota stays about under it). A chunk is a whole
    number of blocks, so that only a series' last block is not full.
    """
    nan = float("nan")
    chunk_rows = 64 * _V3_BLOCK_SAMPLES
    sid = con.execute("SELECT min(sid) FROM his").fetchone()[0]  # a probe of the primary key
    while sid is not None:
        while rows := con.execute(
            "SELECT ts, val, other FROM his WHERE sid = ? ORDER BY ts LIMIT ?", (sid, chunk_rows)
        ).fetchall():
            blocks = []
            for i in range(0, len(rows), _V3_BLOCK_SAMPLES):
                run = Run()
                for ts, val, other in rows[i : i + _V3_BLOCK_SAMPLES]:
                    if other is not None:
                        run.others[len(run.keys)] = other
                    run.keys.append(ts)
                    run.vals.append(nan if other is not None or val is None else val)
                blocks.append((sid, *pack(run, 0, len(run))))
            con.executemany(
                "INSERT INTO his_block (sid, start_us, end_us, n, times, vals, others)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                blocks,
            )
            con.execute("DELETE FROM his WHERE sid = ? AND ts <= ?", (sid, rows[-1][0]))
        sid = con.execute("SELECT min(sid) FROM his").fetchone()[0]
    con.execute("DROP TABLE his")


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
    Migration(
        3,
        "history in blocks of samples",
        (
            "CREATE TABLE his_block (sid INTEGER NOT NULL, start_us INTEGER NOT NULL,"
            " end_us INTEGER NOT NULL, n INTEGER NOT NULL, times BLOB NOT NULL,"
            " vals BLOB NOT NULL, others TEXT)",
            "CREATE UNIQUE INDEX his_block_start ON his_block (sid, start_us)",
        ),
        _his_rows_to_blocks,
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
            if step.run is not None:
                step.run(con)
            con.execute(
                "INSERT INTO schema_version (version, applied, summary) VALUES (?, ?, ?)",
                (step.version, time.time() if now is None else now, step.summary),
            )
        applied.append(step.version)
    return applied
