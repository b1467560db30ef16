"""The Hayson hisWrite column reader gives what the general reader gives, or steps aside."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings

from gateway.haystack.codecs.json4 import decode_grid, encode_grid
from gateway.haystack.codecs.json4_his import read_his_write
from gateway.haystack.kinds import Number, Ref
from gateway.haystack.tz import hs_tz

from .strategies import assert_same_his_input, his_write_grids, mutations

DOCS = his_write_grids(1901).map(encode_grid)  # client documents
_same = assert_same_his_input


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_a_client_document_is_read_as_the_general_reader_reads_it(doc: bytes) -> None:
    fast = read_his_write(doc)
    assert fast is not None, doc
    _same(fast, decode_grid(doc))
    assert read_his_write(doc.decode()) is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS.flatmap(lambda doc: mutations(doc, max_count=3)))
def test_a_damaged_document_is_read_the_same_or_left_to_the_general_reader(
    docs: list[bytes],
) -> None:
    for doc in docs:
        fast = read_his_write(doc)
        if fast is not None:
            _same(fast, decode_grid(doc))


TS = {"_kind": "dateTime", "val": "2024-03-01T00:00:00+01:00", "tz": "Paris"}
KW = {"_kind": "number", "val": 1.5, "unit": "kW"}


def _doc(rows: list[object], cols: object = None, **extra: object) -> str:
    cols = cols if cols is not None else [{"name": "ts"}, {"name": "val"}]
    meta = {"ver": "3.0", "id": {"_kind": "ref", "val": "p"}}
    return json.dumps({"_kind": "grid", "meta": meta, "cols": cols, "rows": rows, **extra})


def test_bare_numbers_and_number_objects() -> None:
    grid = read_his_write(_doc([{"ts": TS, "val": 2}, {"ts": TS, "val": 2.5}]))
    assert grid is not None and grid.meta["id"] == Ref("p")
    assert grid.rows[0]["val"] == Number(2.0) and grid.rows.unit is None
    grid = read_his_write(_doc([{"ts": TS, "val": KW}]))
    assert grid is not None and grid.rows[0]["val"] == Number(1.5, "kW")
    assert grid.rows[0]["ts"] == dt.datetime(2024, 3, 1, tzinfo=hs_tz("Paris"))


@pytest.mark.parametrize(
    "doc",
    [
        _doc([{"ts": TS, "val": None}]),  # a null
        _doc([{"ts": TS, "val": {"_kind": "number", "val": "NaN"}}]),  # NaN
        _doc([{"ts": TS, "val": True}]),  # a Bool
        _doc([{"ts": TS, "val": KW}, {"ts": TS, "val": {**KW, "unit": "W"}}]),  # two units
        _doc([{"ts": TS, "val": KW}, {"ts": {**TS, "tz": "UTC"}, "val": KW}]),  # two zones
        _doc([{"ts": {**TS, "tz": None}, "val": KW}]),  # no zone
        _doc([{"ts": {**TS, "val": "2024-03-01T00:00:00"}, "val": KW}]),  # no offset
        _doc([{"ts": {**TS, "val": "2500-03-01T00:00:00+01:00"}, "val": KW}]),  # a far year
        _doc([{"ts": {**TS, "val": "March"}, "val": KW}]),  # not a date
        _doc([{"ts": {**TS, "tz": "Nowhere"}, "val": KW}]),  # an unknown zone
        _doc([{"ts": TS, "val": KW, "x": 1}]),  # another cell
        _doc([{"ts": TS}]),  # a missing cell
        _doc([{"ts": TS, "val": KW}], [{"name": "ts"}, {"name": "val", "meta": {"id": "x"}}]),
        _doc([]),  # no rows
        _doc([{"ts": TS, "val": 10**400}]),  # too large for a float
        "[1, 2]",  # not a grid
        '{"_kind": "dict"}',
        "{not json",
    ],
)
def test_other_documents_go_to_the_general_reader(doc: str) -> None:
    assert read_his_write(doc) is None
