"""The hisWrite column reader gives exactly what the general Zinc reader gives, or steps aside."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import HealthCheck, given, settings

from gateway.haystack.codecs.zinc import decode_grid, encode_grid
from gateway.haystack.codecs.zinc_his import read_his_write
from gateway.haystack.hisinput import HisInput, keys_of_iso, to_key
from gateway.haystack.kinds import Number, Ref
from gateway.haystack.tz import hs_tz

from .strategies import assert_same_his_input, his_write_grids, mutations

# (from 1950: older local mean time offsets have seconds, which the reader leaves alone)
DOCS = his_write_grids(1950).map(encode_grid)  # client documents
_same = assert_same_his_input


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_a_client_document_is_read_as_the_general_reader_reads_it(doc: str) -> None:
    fast = read_his_write(doc)
    assert fast is not None, doc
    _same(fast, decode_grid(doc))
    assert read_his_write(doc.encode()) is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS.flatmap(lambda doc: mutations(doc.encode(), max_count=3)))
def test_a_damaged_document_is_read_the_same_or_left_to_the_general_reader(
    docs: list[bytes],
) -> None:
    for doc in docs:
        fast = read_his_write(doc)
        if fast is None:
            continue  # the general reader reads it or reports the error
        _same(fast, decode_grid(doc))


TS = "2024-03-01T00:00:00+01:00 Paris"


@pytest.mark.parametrize(
    "doc",
    [
        f'ver:"3.0" id:@p\nts,val\n{TS},N\n',  # a null
        f'ver:"3.0" id:@p\nts,val\n{TS},NaN\n',  # NaN
        f'ver:"3.0" id:@p\nts,val\n{TS},T\n',  # a Bool
        f'ver:"3.0" id:@p\nts,val\n{TS},1kW\n{TS},2W\n',  # two units
        f'ver:"3.0" id:@p\nts,val\n{TS},1\n2024-03-01T00:00:00Z UTC,2\n',  # two zones
        f'ver:"3.0" id:@p\nts,val,other\n{TS},1,2\n',  # another column
        f'ver:"3.0" id:@p\nts id:@q,val\n{TS},1\n',  # column meta
        f'ver:"3.0" id:@p\nts,val\n{TS},1_000\n',  # a number with an underscore
        f'ver:"3.0" id:@p\r\nts,val\r\n{TS},1\r\n',  # CR LF line ends
        f'ver:"3.0" id:@p\nts,val\n{TS},1\n\n{TS},2\n',  # a blank line
        f'ver:"3.0" id:@p\nts,val\n{TS},1\nrubbish\n',  # not a row
        'ver:"3.0" id:@p\nts,val\n2024-13-01T00:00:00+01:00 Paris,1\n',  # month 13
        'ver:"3.0" id:@p\nts,val\n2024-03-01T00:00:00+01:00 Nowhere,1\n',  # unknown zone
        'ver:"3.0" id:@p\nts,val\n2500-03-01T00:00:00+01:00 Paris,1\n',  # a far year
        f'ver:"9.9" id:@p\nts,val\n{TS},1\n',  # a bad version line
        f'ver:"3.0" g:<<\nver:"3.0"\nempty\n>>\nts,val\n{TS},1\n',  # a nested grid
        'ver:"3.0" id:@p\nts,val\n',  # no rows
        b'ver:"3.0" id:@p\nts,val\n' + TS.encode() + b",1\xff\n",  # not UTF-8
    ],
)
def test_other_documents_go_to_the_general_reader(doc: str | bytes) -> None:
    assert read_his_write(doc) is None


def test_rows_are_built_on_access() -> None:
    doc = f'ver:"3.0" id:@p\nts,val\n{TS},20.5°C\n2024-03-31T03:00:00+02:00 Paris,-1e3°C'
    grid = read_his_write(doc)
    assert grid is not None and isinstance(grid.rows, HisInput)
    assert grid.meta["id"] == Ref("p")
    rows = grid.rows
    assert len(rows) == 2 and rows.tz_name == "Paris" and rows.unit == "°C"
    assert rows[0] == {
        "ts": dt.datetime(2024, 3, 1, tzinfo=hs_tz("Paris")),
        "val": Number(20.5, "°C"),
    }
    assert rows[-1]["ts"].utcoffset() == dt.timedelta(hours=2)
    assert rows[1:] == [rows[1]]
    assert rows.numbers() == [Number(20.5, "°C"), Number(-1000.0, "°C")]
    with pytest.raises(IndexError):
        rows[2]
    assert list(rows) == [rows[0], rows[1]]
    assert not math.isnan(rows.nums[1])
    with pytest.raises(ValueError):
        HisInput([1], [], None, dt.UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-10T01:59:59-05:00",  # the last second of winter time in New_York
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T02:30:00-05:00",  # a wall time that does not exist there: the offset rules
        "1969-12-31T23:59:59+00:00",  # before the epoch
        "2024-03-01T00:00:00.5+01:00",  # a fraction (the aware path)
        "2024-03-01T00:00:00Z",
        "2024-03-01T05:30:00+05:30",
    ],
)
def test_iso_keys_match_aware_arithmetic(text: str) -> None:
    expected = to_key(dt.datetime.fromisoformat(text))
    assert keys_of_iso([text]) == [expected]
    assert keys_of_iso([text, "2024-03-01T00:00:00+01:00"])[0] == expected


@pytest.mark.parametrize(
    "texts",
    [
        ["2024-03-01T00:00:00"],  # no offset
        ["2024-03-01T00:00:00.12345"],  # 25 characters, but a fraction and no offset
        ["2024-03-01T00:00:00+01:00", "2024-13-01T00:00:00+01:00"],  # month 13
        ["2024-03-01T00:00:00+1:000"],  # not an offset
    ],
)
def test_iso_keys_refuse_what_is_not_an_instant(texts: list[str]) -> None:
    with pytest.raises(ValueError):
        keys_of_iso(texts)
