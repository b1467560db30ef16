"""What only the SQLite adapter does: persistence, crash safety, retention, migrations."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.auth.roles import Role
from gateway.auth.tokens import TokenRecord
from gateway.auth.users import create_user
from gateway.haystack.codecs.zinc import encode_val
from gateway.haystack.kinds import MARKER, NA, Number, Ref
from gateway.haystack.tz import hs_tz
from gateway.points.priority import PriorityArray
from gateway.storage.base import StorageError
from gateway.storage.sqlite import SQLiteAdapter
from gateway.storage.sqlite_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    migrate,
    schema_version,
    transaction,
)

from .conftest import tree

PARIS = hs_tz("Paris")
T0 = dt.datetime(2024, 3, 1, tzinfo=PARIS)
NOW = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[3]


class Clock:
    """Wall-clock seconds that a test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def his(
    start: dt.datetime, n: int, step: dt.timedelta, unit: str = "°C"
) -> list[tuple[dt.datetime, Number]]:
    return [(start + i * step, Number(i, unit)) for i in range(n)]


async def fill(store: SQLiteAdapter) -> PriorityArray:
    """Records, runtime tags, history, a priority array, a user and a token."""
    await store.add_records(tree())
    await store.update_records(
        [{"id": Ref("p2"), "writable": MARKER, "curVal": Number(20, "°C"), "curStatus": "ok"}]
    )
    await store.his_write(Ref("p1"), his(T0, 100, dt.timedelta(minutes=1)))
    (rec,) = await store.read_by_ids([Ref("p2")])
    assert rec is not None
    array = (
        PriorityArray.for_point(rec)
        .write(8, Number(22, "°C"), "alice", now=NOW, duration=Number(1, "h"))
        .write(17, Number(18, "°C"), "default", now=NOW)
    )
    await store.save_priority_array(Ref("p2"), array.to_records())
    await store.create_user(create_user("amy", "pw", Role.ADMIN, iterations=4096, now=5.0))
    await store.save_token(TokenRecord("abc", "amy", Role.ADMIN, 1.0, 99.0))
    return array


async def check_filled(store: SQLiteAdapter, array: PriorityArray) -> None:
    (rec,) = await store.read_by_ids([Ref("p2")])
    assert rec is not None and rec["writable"] is MARKER
    assert "curVal" not in rec and "curStatus" not in rec  # runtime tags are not persisted
    assert sorted(r["id"].val for r in await store.read_by_filter("point and temp and sensor")) == [
        "p1",
        "p3",
    ]
    assert await store.read_by_ids([Ref("s1")]) == [tree()[0]]
    got = await store.his_read(Ref("p1"))
    assert got == his(T0, 100, dt.timedelta(minutes=1))
    assert got[0][0].tzinfo is PARIS
    stored = await store.load_priority_arrays()
    assert PriorityArray.from_records(stored[Ref("p2")], rec) == array
    amy = await store.get_user("amy")
    assert amy is not None and amy.role is Role.ADMIN and amy.created == 5.0
    assert amy.credentials.verify_password("pw")
    assert await store.get_token("abc") == TokenRecord("abc", "amy", Role.ADMIN, 1.0, 99.0)


async def test_everything_but_runtime_tags_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = SQLiteAdapter(path)
    await store.open()
    array = await fill(store)
    await store.aclose()
    again = SQLiteAdapter(path)
    await again.open()
    try:
        await check_filled(again, array)
        # and the restored index works for changes
        await again.update_records([{"id": Ref("p1"), "sensor": None, "temp": MARKER}])
        await again.remove_records([Ref("p3")])
        assert [r["id"] for r in await again.read_by_filter("temp and sensor")] == [Ref("p1")]
    finally:
        await again.aclose()


async def test_runtime_tag_updates_do_not_write(tmp_path: Path) -> None:
    store = SQLiteAdapter(tmp_path / "gw.db")
    await store.open()
    try:
        await store.add_records(tree())
        db = store._db
        before = db.total_changes
        for i in range(20):
            await store.update_records([{"id": Ref("p1"), "curVal": Number(i, "°C")}])
        assert db.total_changes == before
        await store.update_records([{"id": Ref("p1"), "dis": "renamed"}])
        assert db.total_changes == before + 1
    finally:
        await store.aclose()


CRASHER = textwrap.dedent(
    """
    import os, signal, sys, trio
    sys.path.insert(0, {tests!r})
    from gateway.storage.sqlite import SQLiteAdapter
    from unit.storage.test_sqlite import fill

    async def main():
        store = SQLiteAdapter({path!r})
        await store.open()
        await fill(store)
        print("acknowledged", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no commit path, no atexit

    trio.run(main)
    """
)


async def test_acknowledged_writes_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    script = CRASHER.format(tests=str(ROOT / "tests"), path=str(path))
    with trio.fail_after(60):
        proc = await trio.run_process(
            [sys.executable, "-c", script],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=ROOT,
        )
    assert proc.returncode == -9, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "acknowledged"
    assert (tmp_path / "gw.db-wal").exists()  # the crash left the WAL behind
    store = SQLiteAdapter(path)
    await store.open()
    try:
        (rec,) = await store.read_by_ids([Ref("p2")])
        assert rec is not None
        array = (
            PriorityArray.for_point(rec)
            .write(8, Number(22, "°C"), "alice", now=NOW, duration=Number(1, "h"))
            .write(17, Number(18, "°C"), "default", now=NOW)
        )
        await check_filled(store, array)
    finally:
        await store.aclose()


async def test_pragmas_and_exclusive_lock(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = SQLiteAdapter(path)
    await store.open()
    try:
        db = store._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
        other = SQLiteAdapter(path, lock_timeout=0.05)
        with pytest.raises(StorageError, match="locked"):
            await other.open()
    finally:
        await store.aclose()
    with pytest.raises(StorageError, match="not open"):
        await store.his_sample_count()


async def test_open_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    con = sqlite3.connect(path, isolation_level=None)
    migrate(con)
    con.execute(
        "INSERT INTO schema_version VALUES (?, 0, 'from the future')", (SCHEMA_VERSION + 1,)
    )
    con.close()
    with pytest.raises(StorageError, match="newer"):
        await SQLiteAdapter(path).open()


async def test_migration_from_version_1(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA auto_vacuum = INCREMENTAL")
    assert migrate(con, target=1, now=1.0) == [1]
    assert schema_version(con) == 1
    con.execute("INSERT INTO rec VALUES ('old', '{id:@old dis:\"Old\" site}')")
    amy = create_user("amy", "pw", Role.ADMIN, iterations=4096)
    con.execute(
        "INSERT INTO user VALUES ('amy', 'admin', 1, ?, NULL, NULL)", (amy.credentials.to_text(),)
    )
    con.close()
    store = SQLiteAdapter(path)
    await store.open()
    try:
        assert await store.read_by_ids([Ref("old")]) == [
            {"id": Ref("old"), "dis": "Old", "site": MARKER}
        ]
        assert await store.get_user("amy") == amy
        await store.save_token(TokenRecord("t", "amy", Role.ADMIN, 0, 9))  # the v2 table
        assert await store.get_token("t") is not None
    finally:
        await store.aclose()
    con = sqlite3.connect(path)
    versions = con.execute(
        "SELECT version, summary FROM schema_version ORDER BY version"
    ).fetchall()
    con.close()
    assert versions == [(m.version, m.summary) for m in MIGRATIONS]
    assert versions[-1][0] == SCHEMA_VERSION == 3


async def test_migration_3_packs_the_old_history_into_blocks(tmp_path: Path) -> None:
    """A version-2 database's ``his`` rows (a row per sample) come back identical from blocks:
    numbers, others (Str, Bool, NA, another unit, NaN, infinities), several series, one of
    them spanning several blocks."""
    path = tmp_path / "gw.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA auto_vacuum = INCREMENTAL")
    assert migrate(con, target=2) == [1, 2]
    for rec in tree():
        con.execute("INSERT INTO rec VALUES (?, ?)", (rec["id"].val, encode_val(rec)))
    con.executemany(
        "INSERT INTO his_series (sid, point, tz, unit) VALUES (?, ?, ?, ?)",
        [(1, "p1", "Paris", "°C"), (2, "p3", "UTC", ""), (3, "p4", "Paris", None)],
    )
    minute = 60_000_000
    t0 = int(T0.timestamp()) * 1_000_000
    others = {
        7: ('"hello"', "hello"),
        8: ("T", True),
        9: ("F", False),
        250: ("NA", NA),
        251: ("68°F", Number(68, "°F")),
        479: ("NaN°C", Number(math.nan, "°C")),
        480: ("INF°C", Number(math.inf, "°C")),
        599: ("-INF", Number(-math.inf)),
    }
    rows = [
        (1, t0 + i * minute, None, others[i][0])
        if i in others
        else (1, t0 + i * minute, i / 4, None)
        for i in range(600)
    ]
    rows += [(2, t0 + i, float(i), None) for i in range(3)]  # unitless, a µs apart
    rows += [(3, t0 - minute, None, '"only text"')]
    con.executemany("INSERT INTO his VALUES (?, ?, ?, ?)", rows)
    con.close()

    store = SQLiteAdapter(path)
    await store.open()
    try:
        assert await store.his_sample_count() == 604
        got = await store.his_read(Ref("p1"))
        assert [ts for ts, _ in got] == [T0 + i * dt.timedelta(minutes=1) for i in range(600)]
        assert got[0][0].tzinfo is PARIS
        for i, (_, val) in enumerate(got):
            want = others[i][1] if i in others else Number(i / 4, "°C")
            if isinstance(want, Number) and math.isnan(want[0]):
                assert isinstance(val, Number) and math.isnan(val[0]) and val[1] == want[1]
            else:
                assert val == want
        assert await store.his_read(Ref("p3")) == [
            (T0.astimezone(dt.UTC) + dt.timedelta(microseconds=i), Number(i)) for i in range(3)
        ]
        assert await store.his_read(Ref("p4")) == [(T0 - dt.timedelta(minutes=1), "only text")]
        # the migrated blocks take appends like any others
        await store.his_write(Ref("p1"), his(T0 + dt.timedelta(hours=10), 5, dt.timedelta(hours=1)))
        assert len(await store.his_read(Ref("p1"))) == 605
    finally:
        await store.aclose()
    con = sqlite3.connect(path)
    try:
        assert (
            con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'his'"
            ).fetchall()
            == []
        )
        blocks = con.execute("SELECT sid, n FROM his_block ORDER BY sid, start_us").fetchall()
    finally:
        con.close()
    assert blocks == [(1, 240), (1, 240), (1, 120 + 5), (2, 3), (3, 1)]  # 5 appended


def db_bytes(con: sqlite3.Connection) -> int:
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    return int(pages * con.execute("PRAGMA page_size").fetchone()[0])


async def test_migration_3_does_not_copy_the_history(tmp_path: Path) -> None:
    """Old rows are deleted as they are packed, so the file does not grow by a second copy;
    under a quota the old file fitted, the migrated one fits at once and keeps everything."""
    path = tmp_path / "gw.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA auto_vacuum = INCREMENTAL")
    con.execute("PRAGMA journal_mode = WAL")
    migrate(con, target=2)
    for rec in tree():
        con.execute("INSERT INTO rec VALUES (?, ?)", (rec["id"].val, encode_val(rec)))
    con.execute("INSERT INTO his_series VALUES (1, 'p1', 'Paris', '°C')")
    t0 = int(T0.timestamp()) * 1_000_000
    n = 40_000
    with transaction(con):
        con.executemany(
            "INSERT INTO his VALUES (1, ?, ?, NULL)",
            [(t0 + i * 60_000_000, i / 8) for i in range(n)],
        )
    before = db_bytes(con)
    assert before > n * 16  # the old layout: ~26 bytes a sample
    migrate(con)
    grown = db_bytes(con) - before
    con.close()
    assert grown < n * 16 / 2  # a naive copy would add n * 16 bytes of blocks
    store = SQLiteAdapter(path, his_max_bytes=before)
    await store.open()
    try:
        assert await store.size_bytes() <= before
        assert await store.his_sample_count() == n
        got = await store.his_read(Ref("p1"), T0 + dt.timedelta(minutes=n - 2))
        assert [v for _, v in got] == [Number((n - 2) / 8, "°C"), Number((n - 1) / 8, "°C")]
    finally:
        await store.aclose()
    assert path.stat().st_size <= before


async def test_retention_by_age(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp() + 10 * 86400)
    path = tmp_path / "gw.db"
    store = SQLiteAdapter(path, his_retention_days=7, retention_interval=3600, clock=clock)
    await store.open()
    try:
        await store.add_records(tree())
        # one sample an hour for 10 days; the first 3 days are too old to be kept
        assert await store.his_write(Ref("p1"), his(T0, 240, dt.timedelta(hours=1))) == 240
        assert await store.his_write(Ref("p3"), his(T0, 240, dt.timedelta(hours=1))) == 240
        cutoff = T0 + dt.timedelta(days=3)
        for point in (Ref("p1"), Ref("p3")):
            span = await store.his_span(point)
            assert span is not None and span[0] == cutoff
        # time passes: the next write within the interval does not prune, a later one does
        clock.now += 1800
        await store.his_write(Ref("p1"), [(T0 + dt.timedelta(days=10), Number(0, "°C"))])
        assert (await store.his_span(Ref("p1")))[0] == cutoff  # type: ignore[index]
        clock.now += 86400
        # the cutoff moved by a day and 30 minutes: 25 samples of each point go
        assert await store.enforce_retention() == 2 * 25
        span = await store.his_span(Ref("p3"))
        assert span is not None and span[0] == cutoff + dt.timedelta(days=1, hours=1)
    finally:
        await store.aclose()
    # retention also runs at open
    clock.now += 2 * 86400
    again = SQLiteAdapter(path, his_retention_days=7, clock=clock)
    await again.open()
    try:
        span = await again.his_span(Ref("p3"))
        assert span is not None and span[0] == cutoff + dt.timedelta(days=3, hours=1)
    finally:
        await again.aclose()


async def test_retention_by_size_keeps_the_file_under_the_quota(tmp_path: Path) -> None:
    quota = 256 * 1024
    path = tmp_path / "gw.db"
    store = SQLiteAdapter(path, his_max_bytes=quota)
    await store.open()
    try:
        await store.add_records(tree())
        step = dt.timedelta(minutes=1)
        start = T0
        for _ in range(12):  # 24,000 samples: several times what fits
            for point in (Ref("p1"), Ref("p3")):
                await store.his_write(point, his(start, 1000, step))
                assert await store.size_bytes() <= quota
                assert path.stat().st_size <= quota
            start += 1000 * step
        kept = await store.his_sample_count()
        assert 2000 < kept < 24_000
        for point in (Ref("p1"), Ref("p3")):
            samples = await store.his_read(point)
            # the newest samples are all there; the oldest went first
            assert samples[-1][0] == start - step
            assert [ts for ts, _ in samples] == [
                start - step * i for i in range(len(samples), 0, -1)
            ]
            assert samples[0][0] > T0
        # records are untouched
        assert len(await store.read_by_filter("point")) == 6
    finally:
        await store.aclose()
    assert path.stat().st_size <= quota


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SQLiteAdapter(tmp_path / "a.db", his_max_bytes=1000)
    with pytest.raises(ValueError):
        SQLiteAdapter(tmp_path / "a.db", his_retention_days=0)
    with pytest.raises(ValueError):
        SQLiteAdapter(tmp_path / "a.db", synchronous="OFF")  # type: ignore[arg-type]


async def test_stored_records_that_cannot_be_read_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    con = sqlite3.connect(path, isolation_level=None)
    migrate(con)
    con.execute("INSERT INTO rec VALUES ('bad', '{id:@bad dis:\"unterminated}')")
    con.close()
    with pytest.raises(StorageError, match="bad"):
        await SQLiteAdapter(path).open()


async def test_a_cancelled_write_keeps_memory_and_disk_together(tmp_path: Path) -> None:
    """A cancel while waiting for the write lock changes nothing; a cancel once the write has
    begun (here: waiting for the SQLite worker) lets it finish, in memory and on disk."""
    path = tmp_path / "gw.db"
    store = SQLiteAdapter(path)
    await store.open()

    async def attempt(tag: str, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await store.update_records([{"id": Ref("p1"), tag: MARKER}])

    try:
        await store.add_records(tree())
        async with trio.open_nursery() as nursery:
            async with store._write_lock:  # another writer is busy
                scope = await nursery.start(attempt, "refused")
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
            async with store._limiter:  # the worker thread is busy
                scope = await nursery.start(attempt, "finished")
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        in_memory = (await store.read_by_ids([Ref("p1")]))[0]
    finally:
        await store.aclose()
    assert in_memory is not None
    assert "refused" not in in_memory and in_memory["finished"] is MARKER
    again = SQLiteAdapter(path)
    await again.open()
    try:
        assert (await again.read_by_ids([Ref("p1")]))[0] == in_memory
    finally:
        await again.aclose()


@pytest.mark.parametrize(
    ("column", "damage"),
    [("times", b"\x01\x02\x03"), ("vals", b""), ("others", "[1]"), ("others", "{bad")],
)
async def test_a_damaged_history_block_is_a_storage_error(
    tmp_path: Path, column: str, damage: bytes | str
) -> None:
    path = tmp_path / "site.db"
    store = SQLiteAdapter(path)
    await store.open()
    await store.add_records(tree())
    await store.his_write(Ref("p1"), his(T0, 10, dt.timedelta(minutes=1)))
    await store.aclose()
    con = sqlite3.connect(path)
    with con:
        con.execute(f"UPDATE his_block SET {column} = ?", (damage,))
    con.close()
    store = SQLiteAdapter(path)
    await store.open()
    try:
        with pytest.raises(StorageError, match="history block"):
            await store.his_read(Ref("p1"), None, None)
        # the rest of the store is still served
        (rec,) = await store.read_by_ids([Ref("p1")])
        assert rec is not None
    finally:
        await store.aclose()
