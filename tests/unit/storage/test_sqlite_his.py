"""The SQLite history's blocks, on real files: appends, merges, others, ranges, retention,
quota, and a model check against a dict over random writes, reads and prunes."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.haystack.kinds import NA, Number, Value
from gateway.storage.history import MAX_US, MIN_US, PreparedSamples, to_us
from gateway.storage.sqlite_his import BLOCK_SAMPLES, SQLiteHistory
from gateway.storage.sqlite_schema import migrate, transaction

UTC = dt.UTC
T0 = to_us(dt.datetime(2024, 3, 1, tzinfo=UTC))
MIN = 60_000_000  # one minute, in keys
BLOCK = 4


def connect(path: Path) -> sqlite3.Connection:
    """A connection set up as the adapter's (NORMAL: no fsync per test transaction)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA auto_vacuum = INCREMENTAL")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    migrate(con)
    return con


class Clock:
    """Wall-clock seconds that a test moves."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_history(
    con: sqlite3.Connection,
    clock: Callable[[], float] | None = None,
    *,
    retention_days: float | None = None,
    max_bytes: int | None = None,
    block_samples: int = BLOCK,
) -> SQLiteHistory:
    his = SQLiteHistory(
        con,
        clock=clock or Clock(),
        retention_days=retention_days,
        max_bytes=max_bytes,
        retention_interval=1e9,  # only explicit prunes (and the first write's) in these tests
        block_samples=block_samples,
    )
    his.load()
    return his


@pytest.fixture
def con(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    con = connect(tmp_path / "gw.db")
    try:
        yield con
    finally:
        con.close()


@pytest.fixture
def history(con: sqlite3.Connection) -> SQLiteHistory:
    return open_history(con)


def batch(samples: dict[int, Value]) -> PreparedSamples:
    keys = sorted(samples)
    return PreparedSamples(keys, [samples[k] for k in keys], UTC)


def kw(*minutes: int, unit: str = "kW", base: float = 0) -> dict[int, Value]:
    """Samples at ``T0 + minutes``, valued ``base + minute``."""
    return {T0 + m * MIN: Number(base + m, unit) for m in minutes}


def blocks(con: sqlite3.Connection, point: str) -> list[tuple[int, int, int]]:
    """``(first minute, last minute, n)`` of a point's blocks, checking each one's shape."""
    rows = con.execute(
        "SELECT b.start_us, b.end_us, b.n, length(b.times), length(b.vals) FROM his_block b"
        " JOIN his_series s USING (sid) WHERE s.point = ? ORDER BY b.start_us",
        (point,),
    ).fetchall()
    for (_, end, *_), (start, *_) in itertools.pairwise(rows):
        assert end < start  # blocks never overlap
    for start, end, n, times, vals in rows:
        assert start <= end and times == vals == 8 * n and n >= 1
    return [((s - T0) // MIN, (e - T0) // MIN, n) for s, e, n, _, _ in rows]


def stored(
    his: SQLiteHistory, point: str, start: int = MIN_US, end: int = MAX_US
) -> dict[int, Value]:
    """A point's samples as ``{key: value}``, read both ways (they must agree, in order)."""
    rows = his.read(point, start, end)
    columns = his.read_columns(point, start, end)
    assert (list(columns) if columns is not None else []) == rows
    keys = [to_us(ts) for ts, _ in rows]
    assert keys == sorted(set(keys))
    return {to_us(ts): v for ts, v in rows}


def norm(samples: dict[int, Value]) -> dict[int, object]:
    """NaN made comparable."""
    return {
        k: ("NaN", v[1]) if isinstance(v, Number) and math.isnan(v[0]) else v
        for k, v in samples.items()
    }


def test_appends_fill_the_last_block_then_start_a_new_one(
    con: sqlite3.Connection, history: SQLiteHistory
) -> None:
    history.write("p", batch(kw(0)))
    history.write("p", batch(kw(1, 2)))
    assert blocks(con, "p") == [(0, 2, 3)]
    rowid = con.execute("SELECT rowid FROM his_block").fetchone()
    history.write("p", batch(kw(3)))  # fills it, in place
    assert blocks(con, "p") == [(0, 3, 4)]
    assert con.execute("SELECT rowid FROM his_block").fetchone() == rowid
    history.write("p", batch(kw(4)))  # a full block is left alone
    history.write("p", batch(kw(5, 6, 7, 8, 9)))
    assert blocks(con, "p") == [(0, 3, 4), (4, 7, 4), (8, 9, 2)]
    assert stored(history, "p") == kw(*range(10))
    assert history.count() == 10


def test_a_batch_overwrites_inside_and_across_blocks(
    con: sqlite3.Connection, history: SQLiteHistory
) -> None:
    history.write("p", batch(kw(*range(0, 24, 2))))  # 0, 2, ... 22: three full blocks
    assert blocks(con, "p") == [(0, 6, 4), (8, 14, 4), (16, 22, 4)]
    history.write("p", batch(kw(2, base=100)))  # one sample inside a block
    assert blocks(con, "p") == [(0, 6, 4), (8, 14, 4), (16, 22, 4)]
    # replace samples either side of two block boundaries and insert new ones between
    history.write("p", batch(kw(5, 6, 7, 8, 15, 16, base=1000)))
    want = kw(*range(0, 24, 2)) | kw(2, base=100) | kw(5, 6, 7, 8, 15, 16, base=1000)
    assert stored(history, "p") == want
    assert sum(n for _, _, n in blocks(con, "p")) == len(want) == history.count() == 15
    # a range cut out of the middle, after the rewrite
    assert stored(history, "p", T0 + 6 * MIN, T0 + 16 * MIN) == {
        k: v for k, v in want.items() if T0 + 6 * MIN <= k < T0 + 16 * MIN
    }


def test_a_batch_before_and_around_the_first_block(
    con: sqlite3.Connection, history: SQLiteHistory
) -> None:
    history.write("p", batch(kw(10, 11, 12, 13, 14)))
    history.write("p", batch(kw(1, 2)))  # entirely before
    assert blocks(con, "p") == [(1, 2, 2), (10, 13, 4), (14, 14, 1)]
    history.write("p", batch(kw(0, 3, 11, base=50)))  # spans before, into, past blocks
    assert blocks(con, "p")[0][0] == 0
    assert stored(history, "p") == kw(1, 2, 10, 12, 13, 14) | kw(0, 3, 11, base=50)
    history.write("p", batch(kw(5)))  # into the gap between two blocks: joins the one before
    assert stored(history, "p") == kw(1, 2, 5, 10, 12, 13, 14) | kw(0, 3, 11, base=50)
    assert history.count() == 10


def test_a_sparse_batch_rewrites_only_the_blocks_it_falls_into(
    con: sqlite3.Connection, history: SQLiteHistory
) -> None:
    history.write("p", batch(kw(*range(40))))  # ten full blocks
    query = "SELECT rowid, start_us, times, vals FROM his_block ORDER BY start_us"
    before = con.execute(query).fetchall()
    changes = con.total_changes
    history.write("p", batch(kw(1, 38, base=100)))
    after = con.execute(query).fetchall()
    assert con.total_changes - changes == 2  # two rows updated in place
    assert after[1:-1] == before[1:-1]
    assert [r[:2] for r in after] == [r[:2] for r in before] and after[0] != before[0]
    assert stored(history, "p") == kw(*range(40)) | kw(1, 38, base=100)


OTHERS: dict[int, Value] = {
    T0 + 1 * MIN: 'text with "quotes" and ü and a\nnewline',
    T0 + 2 * MIN: True,
    T0 + 3 * MIN: False,
    T0 + 4 * MIN: NA,
    T0 + 5 * MIN: Number(68.0, "°F"),
    T0 + 6 * MIN: Number(math.nan, "kW"),
    T0 + 7 * MIN: Number(math.inf, "kW"),
    T0 + 8 * MIN: Number(-math.inf),
    T0 + 9 * MIN: Number(7.5),  # unitless: another unit than kW
}


def test_other_samples_survive_writes_and_merges(tmp_path: Path) -> None:
    con = connect(tmp_path / "gw.db")
    history = open_history(con)
    history.write("p", batch(kw(0, 10, 11)))  # kW becomes the series unit
    history.write("p", batch(OTHERS))
    want = norm(kw(0, 10, 11) | OTHERS)
    assert norm(stored(history, "p")) == want
    # a merge rewrites the blocks holding others: their indexes move, their values stay
    history.write("p", batch(kw(2, 6, 12, base=100) | {T0 - MIN: NA}))
    want = norm(kw(0, 10, 11) | OTHERS | kw(2, 6, 12, base=100) | {T0 - MIN: NA})
    assert norm(stored(history, "p")) == want
    columns = history.read_columns("p", MIN_US, MAX_US)
    assert columns is not None and columns.unit == "kW"
    # NA, the text, False, NA, °F, -INF, unitless (INF in kW is a number, as 2 and 6 now are)
    assert sorted(columns.others) == [0, 2, 4, 5, 6, 9, 10]
    con.close()
    # and after a restart
    con = connect(tmp_path / "gw.db")
    try:
        assert norm(stored(open_history(con), "p")) == want
    finally:
        con.close()


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        (3, 9, [3, 4, 5, 6, 7, 8]),  # cuts the first and the third block
        (4, 8, [4, 5, 6, 7]),  # exactly one block: start inclusive, end exclusive
        (5, 6, [5]),
        (5, 5, []),
        (-10, 1, [0]),
        (11, 20, [11]),
        (12, 20, []),
        (-20, -10, []),
    ],
)
def test_ranges_cut_blocks_at_both_ends(
    con: sqlite3.Connection, history: SQLiteHistory, start: int, end: int, minutes: list[int]
) -> None:
    history.write("p", batch(kw(*range(12))))
    assert len(blocks(con, "p")) == 3
    assert stored(history, "p", T0 + start * MIN, T0 + end * MIN) == kw(*minutes)
    # a range that falls between samples (keys not on the minute)
    assert stored(history, "p", T0 + start * MIN - 1, T0 + end * MIN - 1) == kw(
        *[m for m in range(12) if start * MIN - 1 <= m * MIN < end * MIN - 1]
    )


def test_reads_of_unknown_points_and_empty_ranges(history: SQLiteHistory) -> None:
    assert history.read_columns("nope", MIN_US, MAX_US) is None
    assert history.read("nope", MIN_US, MAX_US) == []
    assert history.span("nope") is None
    history.write("p", batch(kw(3, 4, 5, 6, 7)))
    span = history.span("p")
    assert span == (
        dt.datetime(2024, 3, 1, 0, 3, tzinfo=UTC),
        dt.datetime(2024, 3, 1, 0, 7, tzinfo=UTC),
    )
    empty = history.read_columns("p", T0, T0 + 3 * MIN)
    assert empty is not None and len(empty) == 0 and empty.unit == "kW"


def test_retention_by_age_cuts_a_block_in_the_middle(con: sqlite3.Connection) -> None:
    clock = Clock()
    history = open_history(con, clock, retention_days=1)
    history.write("p", batch(kw(*range(10)) | {T0 + 4 * MIN + 1: "odd"}))
    history.write("q", batch(kw(*range(3))))
    assert blocks(con, "p") == [(0, 3, 4), (4, 6, 4), (7, 9, 3)]
    # the cutoff falls inside p's second block, after q's last sample
    now = (T0 + 5 * MIN) / 1e6 + 86400
    assert history.prune_age(now) == 6 + 3  # p: minutes 0-4 and 4m+1µs; q: all
    assert blocks(con, "p") == [(5, 6, 2), (7, 9, 3)]
    assert stored(history, "p") == kw(5, 6, 7, 8, 9)
    assert stored(history, "q") == {} and history.span("q") is None
    assert history.count() == 5
    # a write of samples already too old stores only the others
    clock.now = now
    history.write("p", batch(kw(1, 2, 10)))
    assert stored(history, "p") == kw(5, 6, 7, 8, 9, 10)


def test_quota_pruning_drops_the_oldest_blocks(tmp_path: Path) -> None:
    quota = 256 * 1024
    con = connect(tmp_path / "gw.db")
    history = open_history(con, max_bytes=quota, block_samples=BLOCK_SAMPLES)
    try:
        minute = 0
        for _ in range(20):  # 40,000 samples of 16 bytes: more than twice the quota
            for point in ("p", "q"):
                history.write(point, batch(kw(*range(minute, minute + 1000))))
                assert history.size_bytes() <= quota
            minute += 1000
        kept = history.count()
        assert 2000 < kept < 40_000
        for point in ("p", "q"):
            samples = stored(history, point)
            first = (min(samples) - T0) // MIN
            assert samples == kw(*range(first, minute))  # the newest, without a gap
            assert first > 0
        assert history.prune_to_size(0) == kept  # nothing left but the schema
        assert history.count() == 0 and history.span("p") is None
    finally:
        con.close()
    assert (tmp_path / "gw.db").stat().st_size <= quota


def test_delete_points_removes_their_blocks(
    con: sqlite3.Connection, history: SQLiteHistory
) -> None:
    history.write("p", batch(kw(*range(9))))
    history.write("q", batch(kw(*range(3))))
    with transaction(con):
        assert history.delete_points(["p", "nope"]) == ["p"]
    history.forget(["p"])
    assert history.read_columns("p", MIN_US, MAX_US) is None
    assert history.count() == 3 and stored(history, "q") == kw(0, 1, 2)


# -- a model check -------------------------------------------------------------------------

VALUES = st.one_of(
    st.integers(-5, 5).map(lambda i: Number(i / 2, "kW")),
    st.sampled_from(
        [
            Number(1.0, "°F"),
            Number(math.nan, "kW"),
            Number(math.inf, "kW"),
            Number(2.0),
            "a",
            "",
            True,
            NA,
        ]
    ),
)
KEYS = st.integers(0, 40).map(lambda m: T0 + m * MIN)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.dictionaries(KEYS, VALUES, min_size=1, max_size=12)),
        st.tuples(st.just("read"), KEYS, KEYS),
        st.tuples(st.just("prune"), KEYS),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, size=st.integers(1, 6))
def test_history_matches_a_dict(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[object, ...]], size: int
) -> None:
    path = tmp_path_factory.mktemp("model") / "gw.db"
    con = connect(path)
    history = open_history(con, retention_days=1, block_samples=size)
    model: dict[int, Value] = {}
    try:
        for op in ops:
            if op[0] == "write":
                samples = op[1]
                assert isinstance(samples, dict)
                history.write("p", batch(samples))
                model.update(samples)
            elif op[0] == "read":
                start, end = op[1], op[2]
                assert isinstance(start, int) and isinstance(end, int)
                want = {k: v for k, v in model.items() if start <= k < end}
                assert norm(stored(history, "p", start, end)) == norm(want)
            else:
                key = op[1]
                assert isinstance(key, int)
                now = key / 1e6 + 86400
                cutoff = int((now - 86400.0) * 1_000_000)  # the rule prune_age applies
                gone = [k for k in model if k < cutoff]
                assert history.prune_age(now) == len(gone)
                for k in gone:
                    del model[k]
            if model:
                assert all(n <= size for _, _, n in blocks(con, "p"))
                assert norm(stored(history, "p")) == norm(model)
            assert history.count() == len(model)
    finally:
        con.close()


def _floats(samples: dict[int, Value], unit: str | None) -> PreparedSamples:
    """A batch that also carries its values as a float column (a hisWrite read as columns)."""
    plain = batch(samples)
    nums = [v[0] for v in plain.vals]  # type: ignore[index]
    return PreparedSamples(plain.keys, plain.vals, plain.tz, nums, unit)


def test_a_float_column_is_stored_as_the_values_are(history: SQLiteHistory) -> None:
    history.write("p", _floats(kw(0, 1, 2), "kW"))  # the first write sets the unit
    history.write("p", _floats(kw(3, 4), "kW"))
    assert stored(history, "p") == kw(0, 1, 2, 3, 4)
    # another unit, a NaN, INF and -INF: sample by sample, as any batch (kept as they are)
    history.write("p", _floats(kw(5, unit="W"), "W"))
    odd = {T0 + 6 * MIN: Number(math.nan, "kW"), T0 + 7 * MIN: Number(math.inf, "kW")}
    odd[T0 + 8 * MIN] = Number(-math.inf, "kW")
    history.write("p", _floats(odd, "kW"))
    got = norm(stored(history, "p"))
    assert got == norm(kw(0, 1, 2, 3, 4) | kw(5, unit="W") | odd)
