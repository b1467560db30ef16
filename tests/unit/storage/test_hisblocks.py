"""History blocks: packing (little-endian), cutting into blocks, merging (against a dict)."""

from __future__ import annotations

import json
import math
import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.storage.hisblocks import (
    BLOCK_SAMPLES,
    Run,
    block_spans,
    cut_before,
    merge,
    pack,
    plan_write,
    unpack_others,
)

NAN = math.nan
Sample = tuple[float, str | None]  # a value, or NaN and the text of another kind


def run_of(samples: dict[int, Sample]) -> Run:
    run = Run()
    for i, k in enumerate(sorted(samples)):
        val, other = samples[k]
        run.keys.append(k)
        run.vals.append(NAN if other is not None else val)
        if other is not None:
            run.others[i] = other
    return run


def as_dict(run: Run) -> dict[int, Sample]:
    """A run back as ``{key: (value, other)}``, checking its invariants on the way."""
    assert len(run.keys) == len(run.vals)
    assert list(run.keys) == sorted(set(run.keys))
    assert all(0 <= i < len(run.keys) and math.isnan(run.vals[i]) for i in run.others)
    return {
        k: (NAN, run.others[i]) if i in run.others else (run.vals[i], None)
        for i, k in enumerate(run.keys)
    }


def same(a: dict[int, Sample], b: dict[int, Sample]) -> bool:
    """Equal, NaN included (a stored NaN always comes with its text)."""
    return a.keys() == b.keys() and all(
        a[k][1] == b[k][1] and (a[k][1] is not None or a[k][0] == b[k][0]) for k in a
    )


def test_a_packed_block_is_little_endian_and_reads_back() -> None:
    run = run_of({1: (1.5, None), 2**40: (NAN, '"x"'), -(2**62): (-2.0, None)})
    start, end, n, times, vals, others = pack(run, 0, 3)
    assert (start, end, n) == (-(2**62), 2**40, 3)
    assert struct.unpack("<3q", times) == (-(2**62), 1, 2**40)
    got = struct.unpack("<3d", vals)
    assert got[0] == -2.0 and got[1] == 1.5 and math.isnan(got[2])
    assert others is not None and json.loads(others) == {"2": '"x"'}
    back = Run()
    back.add_block(times, vals, others)
    assert same(as_dict(back), as_dict(run))


def test_a_block_without_others_stores_null() -> None:
    run = run_of({1: (1.0, None), 2: (NAN, "NA"), 3: (3.0, None)})
    assert pack(run, 0, 1)[5] is None  # the others of the run are outside this block
    assert pack(run, 1, 3)[5] == '{"0":"NA"}'  # indexes are the block's own


def test_blocks_append_with_shifted_others() -> None:
    run = run_of({k: (float(k), None) if k % 3 else (NAN, f"s{k}") for k in range(10)})
    rows = [pack(run, i, j) for i, j in block_spans(len(run), 4)]
    assert [(r[0], r[1], r[2]) for r in rows] == [(0, 3, 4), (4, 7, 4), (8, 9, 2)]
    back = Run()
    for row in rows:
        back.add_block(row[3], row[4], row[5])
    assert same(as_dict(back), as_dict(run))


@pytest.mark.parametrize(
    ("n", "size", "spans"),
    [
        (0, 4, []),
        (1, 4, [(0, 1)]),
        (4, 4, [(0, 4)]),
        (5, 4, [(0, 4), (4, 5)]),
        (9, 4, [(0, 4), (4, 8), (8, 9)]),
        (480, BLOCK_SAMPLES, [(0, 240), (240, 480)]),
    ],
)
def test_block_spans_fill_from_the_start(n: int, size: int, spans: list[tuple[int, int]]) -> None:
    assert block_spans(n, size) == spans


def test_a_block_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        Run().add_block(array("q", [1, 2]).tobytes(), array("d", [1.0]).tobytes(), None)
    with pytest.raises(ValueError, match="object"):
        unpack_others("[1]")


@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        # append, prepend, replace, interleave, straddle
        ([1, 2], [3, 4], [1, 2, 3, 4]),
        ([5, 6], [1, 2], [1, 2, 5, 6]),
        ([1, 2, 3], [2], [1, 2, 3]),
        ([1, 3, 5], [2, 4], [1, 2, 3, 4, 5]),
        ([2, 3, 4], [1, 3, 6], [1, 2, 3, 4, 6]),
        ([], [1], [1]),
        ([1], [], [1]),
    ],
)
def test_merge_keeps_order_and_new_values_win(
    old: list[int], new: list[int], want: list[int]
) -> None:
    merged = merge(
        run_of({k: (float(k), None) for k in old}), run_of({k: (-float(k), None) for k in new})
    )
    assert as_dict(merged) == {k: (-float(k) if k in new else float(k), None) for k in want}


def test_cut_before() -> None:
    run = run_of({1: (1.0, None), 2: (NAN, "T"), 3: (3.0, None)})
    assert same(as_dict(cut_before(run, 2)), {2: (NAN, "T"), 3: (3.0, None)})
    assert as_dict(cut_before(run, 0)) == as_dict(run)
    assert len(cut_before(run, 4)) == 0


# Stored blocks of a series (full at 4): 0-3 full, 10-12 not full, 20-23 full, 30-33 full.
STORED = [(0, 3, 4), (10, 12, 3), (20, 23, 4), (30, 33, 4)]


@pytest.mark.parametrize(
    ("keys", "segments"),
    [
        ([40], [([], 0, 1)]),  # after a full last block: a new block
        ([34, 35], [([], 0, 2)]),
        ([13], [([1], 0, 1)]),  # after a block that is not full: fills it
        ([2], [([0], 0, 1)]),  # inside
        ([-5, -1], [([], 0, 2)]),  # before every block
        ([-5, 1], [([0], 0, 2)]),  # before and into the first block
        ([-5, 5], [([], 0, 1), ([], 1, 2)]),  # before, and after a full block: it stays
        ([2, 31], [([0], 0, 1), ([3], 1, 2)]),  # two samples far apart: two blocks, not four
        ([2, 11, 21], [([0, 1, 2], 0, 3)]),  # neighbours merge as one segment
        ([5, 11], [([1], 0, 2)]),  # 0-3 is full and stays; 5 joins the rewrite of 10-12
        ([5, 13, 25], [([1], 0, 2), ([], 2, 3)]),
        ([11, 15, 21, 33], [([1, 2, 3], 0, 4)]),
    ],
)
def test_plan_write_rewrites_only_the_blocks_samples_fall_into(
    keys: list[int], segments: list[tuple[list[int], int, int]]
) -> None:
    # ``stored`` as the write's query gives it: from the last block starting at or before
    # the first key to the last starting at or before the last key.
    first = max([i for i, b in enumerate(STORED) if b[0] <= keys[0]], default=0)
    last = max([i for i, b in enumerate(STORED) if b[0] <= keys[-1]], default=-1)
    near = STORED[first : last + 1]
    got = [(s.blocks, s.lo, s.hi) for s in plan_write(near, keys, full=4)]
    assert got == [([b - first for b in bs], lo, hi) for bs, lo, hi in segments]


samples = st.dictionaries(
    st.integers(-50, 50),
    st.one_of(
        st.tuples(st.integers(-9, 9).map(float), st.none()),
        st.tuples(st.just(NAN), st.sampled_from(["T", "NA", '"a"', "NaN", "2kW"])),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(old=samples, new=samples, size=st.integers(1, 7))
def test_merge_and_block_round_trip_match_a_dict(
    old: dict[int, Sample], new: dict[int, Sample], size: int
) -> None:
    merged = merge(run_of(old), run_of(new))
    assert same(as_dict(merged), {**old, **new})
    back = Run()
    for i, j in block_spans(len(merged), size):
        start, end, n, times, vals, others = pack(merged, i, j)
        assert (start, end, n) == (merged.keys[i], merged.keys[j - 1], j - i) and n <= size
        back.add_block(times, vals, others)
    assert same(as_dict(back), {**old, **new})
