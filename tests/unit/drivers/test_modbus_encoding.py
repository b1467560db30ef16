"""drivers.modbus.encoding: every data type and order, both ways, plus scaling."""

from __future__ import annotations

import math
import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.encoding import (
    DataType,
    EncodingError,
    decode,
    encode,
    parse_data_type,
    parse_scale,
    set_bit,
)

# (data type, value, registers on the wire): checked both ways. Expected words are written
# out by hand from the byte order names (ABCD, DCBA, BADC, CDAB), not computed.
VECTORS: list[tuple[str, int | float, list[int]]] = [
    ("u1", 0xAB, [0x00AB]),
    ("u1leb", 0xAB, [0xAB00]),
    ("u1le", 0xAB, [0xAB00]),
    ("u1lew", 0xAB, [0x00AB]),
    ("s1", -1, [0x00FF]),
    ("s1", -128, [0x0080]),
    ("s1leb", -2, [0xFE00]),
    ("u2", 0x1234, [0x1234]),
    ("u2leb", 0x1234, [0x3412]),
    ("u2le", 0x1234, [0x3412]),
    ("u2lew", 0x1234, [0x1234]),
    ("s2", -2, [0xFFFE]),
    ("s2leb", -2, [0xFEFF]),
    ("s2", 32767, [0x7FFF]),
    ("u4", 0x01020304, [0x0102, 0x0304]),
    ("u4lew", 0x01020304, [0x0304, 0x0102]),
    ("u4leb", 0x01020304, [0x0201, 0x0403]),
    ("u4le", 0x01020304, [0x0403, 0x0201]),
    ("s4", -2, [0xFFFF, 0xFFFE]),
    ("s4lew", -2, [0xFFFE, 0xFFFF]),
    ("s4le", -2, [0xFEFF, 0xFFFF]),
    ("s4leb", -65536, [0xFFFF, 0x0000]),
    ("u8", 0x0102030405060708, [0x0102, 0x0304, 0x0506, 0x0708]),
    ("u8lew", 0x0102030405060708, [0x0708, 0x0506, 0x0304, 0x0102]),
    ("u8leb", 0x0102030405060708, [0x0201, 0x0403, 0x0605, 0x0807]),
    ("u8le", 0x0102030405060708, [0x0807, 0x0605, 0x0403, 0x0201]),
    ("s8", -3, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFD]),
    ("s8le", -3, [0xFDFF, 0xFFFF, 0xFFFF, 0xFFFF]),
    ("f4", 1.0, [0x3F80, 0x0000]),
    ("f4lew", 1.0, [0x0000, 0x3F80]),
    ("f4leb", 1.0, [0x803F, 0x0000]),
    ("f4le", 1.0, [0x0000, 0x803F]),
    ("f4", -2.5, [0xC020, 0x0000]),
    ("f8", 1.0, [0x3FF0, 0x0000, 0x0000, 0x0000]),
    ("f8lew", 1.0, [0x0000, 0x0000, 0x0000, 0x3FF0]),
    ("f8leb", 1.0, [0xF03F, 0x0000, 0x0000, 0x0000]),
    ("f8le", 1.0, [0x0000, 0x0000, 0x0000, 0xF03F]),
    ("f8", -0.1, [0xBFB9, 0x9999, 0x9999, 0x999A]),
]


@pytest.mark.parametrize(("name", "value", "regs"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vectors_decode(name: str, value: float, regs: list[int]) -> None:
    assert decode(parse_data_type(name), regs) == value


@pytest.mark.parametrize(("name", "value", "regs"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vectors_encode(name: str, value: float, regs: list[int]) -> None:
    assert encode(parse_data_type(name), value) == regs


def test_byte_types_ignore_the_other_byte_on_read() -> None:
    assert decode(parse_data_type("u1"), [0x12AB]) == 0xAB
    assert decode(parse_data_type("s1"), [0x12FF]) == -1
    assert decode(parse_data_type("u1leb"), [0xAB12]) == 0xAB


@pytest.mark.parametrize(
    ("name", "size", "kind"),
    [
        ("bit", 1, "Bool"),
        ("bit:15", 1, "Bool"),
        ("u1", 1, "Number"),
        ("s2lew", 1, "Number"),
        ("u4", 2, "Number"),
        ("f4le", 2, "Number"),
        ("s8", 4, "Number"),
        ("f8", 4, "Number"),
    ],
)
def test_sizes_and_kinds(name: str, size: int, kind: str) -> None:
    dt = parse_data_type(name)
    assert (dt.size, dt.kind, dt.name) == (size, kind, name)


@pytest.mark.parametrize(
    "text", ["", "u3", "f2", "f1", "x4", "u4be", "bit:16", "bit:-1", "bit:a", "U2", "u2 le"]
)
def test_bad_data_types(text: str) -> None:
    with pytest.raises(EncodingError):
        parse_data_type(text)


def test_bits() -> None:
    word = 0b1000_0000_0000_0101
    assert decode(parse_data_type("bit:0"), [word]) is True
    assert decode(parse_data_type("bit:1"), [word]) is False
    assert decode(parse_data_type("bit:15"), [word]) is True
    assert decode(parse_data_type("bit"), [1]) is True
    assert encode(parse_data_type("bit"), True) == [1]
    assert encode(parse_data_type("bit"), False) == [0]
    with pytest.raises(EncodingError, match="read-modify-write"):
        encode(parse_data_type("bit:3"), True)
    assert set_bit(0x0005, 1, True) == 0x0007
    assert set_bit(0x0005, 0, False) == 0x0004
    assert set_bit(0xFFFF, 15, False) == 0x7FFF
    with pytest.raises(EncodingError):
        set_bit(0, 16, True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("u1", 256),
        ("u1", -1),
        ("s1", 128),
        ("u2", 65536),
        ("s2", -32769),
        ("u4", -1),
        ("s4", 2**31),
        ("u8", 2**64),
        ("s8", -(2**63) - 1),
        ("u2", math.nan),
        ("s4", math.inf),
        ("f4", 1e39),
    ],
)
def test_out_of_range_writes_are_refused(name: str, value: float) -> None:
    with pytest.raises(EncodingError):
        encode(parse_data_type(name), value)


def test_integers_round_half_away_from_zero() -> None:
    dt = parse_data_type("s2")
    assert encode(dt, 2.5) == [3]
    assert encode(dt, -2.5) == [0xFFFD]
    assert encode(dt, 2.4999) == [2]


def test_wrong_register_count() -> None:
    with pytest.raises(EncodingError, match="needs 2 registers"):
        decode(parse_data_type("f4"), [1])


ORDERS = ["", "le", "leb", "lew"]
INT_TYPES = [f"{b}{n}{o}" for b in "us" for n in (1, 2, 4, 8) for o in ORDERS]


@pytest.mark.parametrize("name", INT_TYPES)
@given(data=st.data())
def test_integer_round_trip(name: str, data: st.DataObject) -> None:
    dt = parse_data_type(name)
    low, high = dt.int_range()
    value = data.draw(st.integers(low, high))
    regs = encode(dt, value)
    assert len(regs) == dt.size
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert decode(dt, regs) == value


@pytest.mark.parametrize("name", [n for n in INT_TYPES if not n.startswith(("u1", "s1"))])
@given(data=st.data())
def test_registers_round_trip_for_full_width_types(name: str, data: st.DataObject) -> None:
    dt = parse_data_type(name)
    regs = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=dt.size, max_size=dt.size))
    assert encode(dt, decode(dt, regs)) == regs


@pytest.mark.parametrize("order", ORDERS)
@given(value=st.floats(width=32, allow_nan=False))
def test_f4_round_trip(order: str, value: float) -> None:
    dt = parse_data_type("f4" + order)
    regs = encode(dt, value)
    read = decode(dt, regs)
    # the same binary32 (the same registers), read as its shortest decimal
    assert struct.pack(">f", read) == struct.pack(">f", value)
    assert encode(dt, read) == regs
    digits = _significant_digits(read)
    assert digits <= 9
    if digits > 1 and math.isfinite(read):
        shorter = float(f"{read:.{digits - 1}g}")
        assert _binary32(shorter) != struct.pack(">f", value)


def _significant_digits(val: float) -> int:
    mantissa = repr(abs(val)).split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) or 1


def _binary32(val: float) -> bytes:
    try:
        return struct.pack(">f", val)
    except OverflowError:
        return b""


@pytest.mark.parametrize(
    ("regs", "value", "text"),
    [
        ([0x4192, 0x8F5C], 18.32, "18.32"),  # what the device holds: 18.3199996948...
        ([0x41AA, 0x6666], 21.3, "21.3"),
        ([0x3DCC, 0xCCCD], 0.1, "0.1"),
        ([0x4192, 0x8ED8], 18.319748, "18.319748"),
        ([0x7F7F, 0xFFFF], 3.4028235e38, "3.4028235e+38"),  # the largest binary32
        ([0x0000, 0x0001], 1e-45, "1e-45"),  # the smallest
        ([0x8000, 0x0000], -0.0, "-0.0"),
    ],
)
def test_f4_reads_as_its_shortest_decimal(regs: list[int], value: float, text: str) -> None:
    read = decode(parse_data_type("f4"), regs)
    assert read == value
    assert repr(read) == text
    assert math.copysign(1.0, read) == math.copysign(1.0, value)


@pytest.mark.parametrize("order", ORDERS)
@given(value=st.floats(allow_nan=False))
def test_f8_round_trip(order: str, value: float) -> None:
    dt = parse_data_type("f8" + order)
    assert decode(dt, encode(dt, value)) == value


def test_nan_survives() -> None:
    for name in ("f4", "f8le"):
        dt = parse_data_type(name)
        result = decode(dt, encode(dt, math.nan))
        assert isinstance(result, float) and math.isnan(result)


SCALES = [
    ("*10", 7.0, 70.0),
    ("/1000", 1500.0, 1.5),
    ("+32768 /10", -32768.0, 0.0),
    ("+32768 /10", 0.0, 3276.8),
    ("-40 *0.5", 100.0, 30.0),
    ("*-1", 3.0, -3.0),
    ("/10 +5", 100.0, 15.0),
    ("* 2.5e1", 2.0, 50.0),
]


@pytest.mark.parametrize(("text", "raw", "value"), SCALES, ids=[s[0] for s in SCALES])
def test_scale_both_ways(text: str, raw: float, value: float) -> None:
    scale = parse_scale(text)
    assert scale.apply(raw) == pytest.approx(value)
    assert scale.inverse(value) == pytest.approx(raw)


@pytest.mark.parametrize(
    ("text", "raw", "text_read"),
    [
        ("*0.1", 3, "0.3"),  # 3 * 0.1 is 0.30000000000000004 in binary
        ("*0.1", 7, "0.7"),  # 0.7000000000000001
        ("*0.1 +0.2", 1, "0.3"),  # 0.30000000000000004
        ("/10", 221, "22.1"),
        ("/3", 1, "0.333333333333333"),
        ("/1000", 123456789012, "123456789.012"),
        ("*-1", 0, "-0.0"),
    ],
)
def test_scaled_values_read_without_binary_noise(text: str, raw: int, text_read: str) -> None:
    assert repr(parse_scale(text).apply(float(raw))) == text_read


@pytest.mark.parametrize("text", ["", "10", "*", "*x", "*0", "/0", "^2", "*1 2", "*inf"])
def test_bad_scales(text: str) -> None:
    with pytest.raises(EncodingError):
        parse_scale(text)


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from("*/+-"),
            st.floats(min_value=0.001, max_value=1000, allow_nan=False),
        ),
        min_size=1,
        max_size=4,
    ),
    raw=st.floats(min_value=-1e6, max_value=1e6),
)
def test_scale_inverse_undoes_apply(steps: list[tuple[str, float]], raw: float) -> None:
    scale = parse_scale(" ".join(f"{op}{k!r}" for op, k in steps))
    assert scale.inverse(scale.apply(raw)) == pytest.approx(
        raw, rel=1e-9, abs=_rounding(steps, raw)
    )


def _rounding(steps: list[tuple[str, float]], raw: float) -> float:
    """How far float rounding alone may move the round trip, in raw units.

    Each + or - rounds to the precision of the value it makes; the inverse carries that error
    back to raw units divided by the gain of the steps before it (``*0.001 *0.001 *0.001 +16``
    rounds at ~4e-15 of 16, which is ~4e-6 of a raw unit after dividing by 1e-9).
    """
    value, gain, bound = raw, 1.0, 1e-6
    for op, k in steps:
        if op in "*/":
            factor = k if op == "*" else 1 / k
            value, gain = value * factor, gain * factor
        else:
            value = value + k if op == "+" else value - k
            bound += 64 * sys.float_info.epsilon * max(abs(value), k) / gain
    # apply() gives its result to 15 significant digits: half a unit of the 15th, in raw units
    return bound + 5e-15 * abs(value) / gain


def test_datatype_is_a_value() -> None:
    assert parse_data_type("u4lew") == DataType("u4lew", "u", nbytes=4, word_swap=True)
