"""The codec entry point: the MIME table, encode/decode, and what each format can do."""

from __future__ import annotations

import datetime as dt
from array import array
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings

from gateway.haystack import Grid, Number, ParseError, Ref
from gateway.haystack.codecs import (
    FORMATS,
    UnsupportedFormatError,
    decode,
    encode,
    format_for,
)
from gateway.haystack.hisrows import HisRows
from gateway.haystack.kinds import Value
from gateway.haystack.tz import hs_tz
from tests.unit.haystack.strategies import grids


@pytest.mark.parametrize(
    ("mime", "name"),
    [
        ("text/zinc", "zinc"),
        ("text/zinc; charset=utf-8", "zinc"),
        ("TEXT/ZINC", "zinc"),
        ("text/plain", "zinc"),
        ("application/json", "json4"),
        ("application/json; charset=utf-8", "json4"),
        ("application/vnd.haystack+json", "json4"),
        ("application/vnd.haystack+json;version=4", "json4"),
        ("application/vnd.haystack+json; version=3", "json3"),
        ('application/vnd.haystack+json;version="3"', "json3"),
        ("text/trio", "trio"),
        ("text/csv", "csv"),
    ],
)
def test_mime_table(mime: str, name: str) -> None:
    fmt = format_for(mime)
    assert fmt is not None and fmt.name == name


@pytest.mark.parametrize(
    "mime", ["application/xml", "application/vnd.haystack+json;version=2", "", "text"]
)
def test_unknown_types(mime: str) -> None:
    assert format_for(mime) is None
    with pytest.raises(UnsupportedFormatError):
        encode(Grid.empty(), mime)
    with pytest.raises(UnsupportedFormatError):
        decode(b"", mime)


def test_csv_is_write_only() -> None:
    assert encode(Grid.from_dict({"a": Number(1)}), "text/csv").startswith(b"a")
    with pytest.raises(UnsupportedFormatError):
        decode(b"a\n1\n", "text/csv")


GRID = Grid.from_rows([{"id": Ref("a", "A"), "v": Number(1.5, "kW"), "s": "x, y"}])


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.can_read], ids=lambda f: f.name)
def test_each_readable_format_round_trips(fmt: object) -> None:
    mime = fmt.mime  # type: ignore[attr-defined]
    data = encode(GRID, mime)
    assert isinstance(data, bytes)
    got = decode(data, mime)
    if fmt.name == "trio":  # type: ignore[attr-defined]
        # Trio keeps no column order (Haxall's: id, name, dis, then sorted) and no grid meta
        assert got.to_dicts() == GRID.to_dicts()
        assert set(got.col_names) == set(GRID.col_names)
    else:
        assert got == GRID
    assert decode(data.decode("utf-8"), mime).to_dicts() == GRID.to_dicts()


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.can_read], ids=lambda f: f.name)
def test_malformed_input_is_a_parse_error(fmt: object) -> None:
    mime = fmt.mime  # type: ignore[attr-defined]
    for bad in (b"\xff\xfe", b"{[", b"ver:", b"a:\n  \n\x00"):
        try:
            decode(bad, mime)
        except ParseError as exc:
            assert exc.line >= 1
        else:  # some garbage is a valid (empty) Trio document; nothing else may happen
            assert fmt.name == "trio"  # type: ignore[attr-defined]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(grids())
def test_zinc_json4_json3_agree(grid: Grid) -> None:
    for mime in ("text/zinc", "application/json", "application/vnd.haystack+json;version=3"):
        assert decode(encode(grid, mime), mime) == grid, mime


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.can_write], ids=lambda f: f.name)
def test_encode_iter_gives_the_same_document(fmt: object) -> None:
    chunks = list(fmt.encode_iter(GRID))  # type: ignore[attr-defined]
    assert chunks and all(isinstance(c, bytes) for c in chunks)
    assert b"".join(chunks) == fmt.encode(GRID)  # type: ignore[attr-defined]


@dataclass
class _Samples:  # what a store hands to HisRows (see hisrows.SampleColumns)
    tz: dt.tzinfo
    unit: str | None
    times: array[float]
    nums: array[float]
    others: dict[int, Value] = field(default_factory=dict)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.can_write], ids=lambda f: f.name)
def test_encode_iter_streams_a_long_history(fmt: object) -> None:
    # A hisRead of 20,000 samples: Zinc and JSON v4 stream it in chunks of about 64 KiB.
    zone = hs_tz("New_York")
    start = dt.datetime(2024, 1, 1, tzinfo=zone).timestamp()
    times = array("d", [start + 60.0 * k for k in range(20_000)])
    nums = array("d", [k / 4 for k in range(20_000)])
    grid = Grid(["ts", "val"], HisRows(_Samples(zone, "kW", times, nums)), {"id": Ref("p")})
    chunks = list(fmt.encode_iter(grid))  # type: ignore[attr-defined]
    assert b"".join(chunks) == fmt.encode(grid)  # type: ignore[attr-defined]
    if fmt.name in ("zinc", "json4"):  # type: ignore[attr-defined]
        assert len(chunks) > 10 and max(map(len, chunks)) < 100_000
