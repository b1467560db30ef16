"""Filter index helpers: required_tags, tag_names and required_values (tables + soundness)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.haystack import Number, Ref, Symbol
from gateway.haystack.filter import parse_filter

# -------------------------------------------------------------------------------------------
# Index helpers
# -------------------------------------------------------------------------------------------

INDEX_CASES: list[tuple[str, set[str], set[str]]] = [
    ("point and temp and sensor", {"point", "temp", "sensor"}, {"point", "temp", "sensor"}),
    ("not point", set(), {"point"}),
    ("a != 1", {"a"}, {"a"}),
    ("a < 1", {"a"}, {"a"}),
    ('siteRef->dis == "x"', {"siteRef"}, {"siteRef", "dis"}),
    ("not siteRef->site", set(), {"siteRef", "site"}),
    ("a or b", set(), {"a", "b"}),
    ("a and b or a and c", {"a"}, {"a", "b", "c"}),
    ("point and (temp or humidity)", {"point"}, {"point", "temp", "humidity"}),
    ("(a and b) or (a and not b)", {"a"}, {"a", "b"}),
    ("point and not writable", {"point"}, {"point", "writable"}),
]


@pytest.mark.parametrize(
    ("text", "required", "names"), INDEX_CASES, ids=[c[0] for c in INDEX_CASES]
)
def test_required_tags_and_tag_names(text: str, required: set[str], names: set[str]) -> None:
    f = parse_filter(text)
    assert f.required_tags() == frozenset(required)
    assert f.tag_names() == frozenset(names)


VALUE_CASES: list[tuple[str, dict[str, set[Any]]]] = [
    ("siteRef == @s1 and point", {"siteRef": {Ref("s1")}}),
    ("siteRef == @s1", {"siteRef": {Ref("s1")}}),
    ("siteRef != @s1", {}),
    ("siteRef->id == @s1", {}),
    ("siteRef == @a or siteRef == @b", {"siteRef": {Ref("a"), Ref("b")}}),
    ("siteRef == @a or point", {}),
    ("(a == 1 or a == 2) and a == 3", {"a": {Number(3)}}),  # the smaller set
    ("a == 1 and a == 2", {"a": {Number(1)}}),  # either is sound; never intersected
    ('a == 1 and b == "x"', {"a": {Number(1)}, "b": {"x"}}),
    ("(a == 1 and b == 2) or (a == 3 and c == 4)", {"a": {Number(1), Number(3)}}),
    ("def == ^point", {"def": {Symbol("point")}}),
]


@pytest.mark.parametrize(("text", "expected"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_required_values(text: str, expected: dict[str, set[Any]]) -> None:
    got = parse_filter(text).required_values()
    assert got == {k: frozenset(v) for k, v in expected.items()}


def test_required_values_are_sound_for_ref_lists() -> None:
    # both conjuncts hold for a Ref list, so the index hint must still admit the record
    f = parse_filter("airRef == @a and airRef == @b")
    rec = {"airRef": [Ref("a"), Ref("b")]}
    assert f.matches(rec)
    (vals,) = f.required_values().values()
    assert any(e in vals for e in rec["airRef"])
