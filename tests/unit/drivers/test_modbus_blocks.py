"""drivers.modbus.blocks: the block optimizer, table-driven, and block splitting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.blocks import Block, Span, optimize, split
from drivers.modbus.regmap import Table

H, IN, C, D = Table.HOLDING_REGISTER, Table.INPUT_REGISTER, Table.COIL, Table.DISCRETE_INPUT


def hr(name: str, start: int, count: int = 1) -> Span:
    return Span(H, start, count, name)


a, b, c, d, e, f = (hr(n, i) for i, n in enumerate("abcdef"))

# (spans, options, expected blocks as (table, start, count, [span keys]))
CASES = [
    ("empty", [], {}, []),
    ("contiguous", [a, b, c, d, e], {"gap": 0}, [(H, 0, 5, "abcde")]),
    ("a hole splits", [a, b, c, e, f], {"gap": 0}, [(H, 0, 3, "abc"), (H, 4, 2, "ef")]),
    ("gap 1 bridges the hole", [a, b, c, e, f], {"gap": 1}, [(H, 0, 6, "abcef")]),
    ("default gap bridges small holes", [a, hr("x", 5)], {}, [(H, 0, 6, "ax")]),
    ("beyond the default gap", [a, hr("x", 6)], {}, [(H, 0, 1, "a"), (H, 6, 1, "x")]),
    (
        "max 1",
        [a, b, c, d],
        {"gap": 0, "max_registers": 1},
        [(H, 0, 1, "a"), (H, 1, 1, "b"), (H, 2, 1, "c"), (H, 3, 1, "d")],
    ),
    (
        "input order does not matter",
        [c, a, b],
        {"gap": 0},
        [(H, 0, 3, "abc")],
    ),
    (
        "tables never mix, and come out in table order",
        [hr("h", 0), Span(C, 0, 1, "c"), Span(IN, 0, 1, "i"), Span(D, 0, 1, "d")],
        {"gap": 100},
        [(C, 0, 1, "c"), (D, 0, 1, "d"), (IN, 0, 1, "i"), (H, 0, 1, "h")],
    ),
    (
        "max includes the full size of the last span",
        [hr("i", 0), hr("j", 1, 4)],
        {"gap": 0, "max_registers": 2},
        [(H, 0, 1, "i"), (H, 1, 4, "j")],
    ),
    (
        "exactly max fits in one block",
        [hr("i", 0), hr("j", 1, 4)],
        {"gap": 0, "max_registers": 5},
        [(H, 0, 5, "ij")],
    ),
    (
        "a span inside the widest does not grow the block",
        [hr("i", 0), hr("j", 1, 4), hr("k", 1)],
        {"gap": 0, "max_registers": 5},
        [(H, 0, 5, "ijk")],
    ),
    (
        "shared addresses: size does not depend on order",
        [hr("b0", 100), hr("u4", 100, 2), hr("b1", 100), hr("d", 102)],
        {"gap": 0},
        [(H, 100, 3, ["u4", "b0", "b1", "d"])],
    ),
    (
        "a span larger than max gets its own block",
        [hr("f8", 10, 4)],
        {"max_registers": 1},
        [(H, 10, 4, ["f8"])],
    ),
    (
        "bits use the bit limit",
        [Span(C, 0, 1, "c0"), Span(C, 1999, 1, "c1999"), Span(C, 2000, 1, "c2000")],
        {"gap": 2000, "max_registers": 1},
        [(C, 0, 2000, ["c0", "c1999"]), (C, 2000, 1, ["c2000"])],
    ),
    (
        "register limit 100 by default",
        [hr("r0", 0), hr("r99", 99), hr("r100", 100)],
        {"gap": 100},
        [(H, 0, 100, ["r0", "r99"]), (H, 100, 1, ["r100"])],
    ),
]


@pytest.mark.parametrize(
    ("spans", "options", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_optimize(
    spans: list[Span], options: dict[str, int], expected: list[tuple[Table, int, int, str]]
) -> None:
    blocks = optimize(spans, **options)
    got = [(blk.table, blk.start, blk.count, [s.key for s in blk.spans]) for blk in blocks]
    assert got == [(t, s, n, list(keys)) for t, s, n, keys in expected]


def test_optimize_does_not_reorder_the_input() -> None:
    spans = [c, a, b]
    optimize(spans)
    assert spans == [c, a, b]


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="gap"):
        optimize([a], gap=-1)
    with pytest.raises(ValueError, match="max"):
        optimize([a], max_registers=0)


def test_slice_and_split() -> None:
    u4 = hr("u4", 100, 2)
    bit = hr("bit", 100)
    other_bit = hr("bit2", 100)
    tail = hr("tail", 103)
    (block,) = optimize([u4, bit, other_bit, tail], gap=1)
    assert (block.start, block.count) == (100, 4)
    data = [10, 11, 12, 13]
    assert block.slice(data, u4) == [10, 11]
    assert block.slice(data, tail) == [13]
    parts = split(block)
    assert [(p.start, p.count, [s.key for s in p.spans]) for p in parts] == [
        (100, 1, ["bit", "bit2"]),  # equal spans share one request
        (100, 2, ["u4"]),
        (103, 1, ["tail"]),
    ]


span_strategy = st.builds(
    Span,
    table=st.sampled_from(list(Table)),
    start=st.integers(0, 300),
    count=st.sampled_from([1, 2, 4]),
    key=st.uuids(),
)


@given(
    spans=st.lists(span_strategy, max_size=40),
    gap=st.integers(0, 10),
    max_registers=st.integers(1, 125),
)
def test_optimize_properties(spans: list[Span], gap: int, max_registers: int) -> None:
    blocks = optimize(spans, gap=gap, max_registers=max_registers, max_bits=50)
    # every span is read exactly once, by a block of its table that covers it
    assert sorted(str(s.key) for blk in blocks for s in blk.spans) == sorted(
        str(s.key) for s in spans
    )
    for blk in blocks:
        limit = 50 if blk.table.is_bit else max_registers
        assert all(s.table is blk.table for s in blk.spans)
        assert all(blk.start <= s.start and s.end <= blk.end for s in blk.spans)
        assert blk.start == min(s.start for s in blk.spans)
        assert blk.end == max(s.end for s in blk.spans)
        assert blk.count <= limit or len({(s.start, s.count) for s in blk.spans}) == 1
        assert isinstance(blk, Block)
