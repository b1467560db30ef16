"""Trio configuration files read record by record, with the line of every record and tag."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.haystack.codecs.trio import decode_records, encode_records
from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.runtime.config_trio import read_trio

DOC = """\
// A comment before the first record
id: @a
dis: First
site
---

// only a comment in this piece
-----
id: @b
doc:
  A multi-line text
  ---not a separator: it is indented
equip
nested: Zinc:
  [1, 2,
   3]
siteRef: @a
---
id: @c
point
kind: "Number"
"""


def test_records_carry_their_lines_and_tag_lines() -> None:
    records, problems = read_trio(DOC, "x.trio")
    assert problems == []
    assert [r.rec["id"] for r in records] == [Ref("a"), Ref("b"), Ref("c")]
    assert [r.line for r in records] == [2, 9, 19]
    b = records[1]
    assert b.tag_lines == {
        "id": 9,
        "doc": 10,
        "equip": 13,
        "nested": 14,
        "siteRef": 17,
    }
    assert b.rec["doc"] == "A multi-line text\n---not a separator: it is indented"
    assert b.rec["nested"] == [Number(1.0), Number(2.0), Number(3.0)]
    assert records[2].line_of("kind") == 21
    assert records[2].line_of("absent") == 19
    # The same records as the whole-document reader gives.
    assert [dict(r.rec) for r in records] == decode_records(DOC)


def test_a_bad_record_is_reported_at_its_file_line_and_the_rest_still_read() -> None:
    text = DOC.replace('kind: "Number"', 'kind: "Number')
    records, problems = read_trio(text, "x.trio")
    assert [r.rec["id"] for r in records] == [Ref("a"), Ref("b")]
    assert len(problems) == 1
    assert problems[0].file == "x.trio"
    assert problems[0].line == 21
    assert "cannot read Trio" in problems[0].message


def test_crlf_and_bom() -> None:
    text = "\ufeffid: @a\r\nsite\r\n---\r\nid: @b\r\nequip\r\n"
    records, problems = read_trio(text, "x.trio")
    assert problems == []
    assert [(r.rec["id"], r.line) for r in records] == [(Ref("a"), 1), (Ref("b"), 4)]


_NAME = st.from_regex(r"[a-z][a-zA-Z0-9]{0,6}", fullmatch=True)
_VALUE: st.SearchStrategy[Value] = st.one_of(
    st.just(MARKER),
    st.integers(-1000, 1000).map(lambda n: Number(float(n))),
    st.text(alphabet="ab -\n:", min_size=1, max_size=15).filter(lambda s: s.strip() == s),
)


@given(st.lists(st.dictionaries(_NAME, _VALUE, min_size=1, max_size=5), max_size=5))
def test_lines_agree_with_the_written_document(recs: list[dict[str, Value]]) -> None:
    text = encode_records(recs)
    records, problems = read_trio(text, "gen.trio")
    assert problems == []
    assert [dict(r.rec) for r in records] == decode_records(text)
    lines = text.split("\n")
    for rec in records:
        for tag, line in rec.tag_lines.items():
            assert lines[line - 1].startswith(tag)
            assert tag in rec.rec
