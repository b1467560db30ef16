"""The in-memory record table and the watch registry, without an adapter around them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.haystack.filter import parse_filter
from gateway.haystack.kinds import MARKER, REMOVE, Number, Ref, Value
from gateway.storage.base import UnknownWatchError
from gateway.storage.index import RecordIndex, _mask_of, _only_tags, _slots_of, same_value
from gateway.storage.watches import DEFAULT_LEASE, MIN_LEASE, WatchRegistry

TAGS = ["site", "equip", "point", "temp", "sensor", "curVal", "dis"]
FILTERS = [
    "point",
    "point and temp and sensor",
    "(point and temp) and sensor",
    "temp or sensor",
    "not point",
    "curVal > 5",
    "point and siteRef->site",
    'siteRef->dis == "s1"',
    "equip and not sensor",
]


@given(st.sets(st.integers(0, 5000)))
def test_bitmaps_round_trip(slots: set[int]) -> None:
    assert _slots_of(_mask_of(sorted(slots))) == sorted(slots)


def test_same_value_is_strict() -> None:
    assert same_value(Ref("a", "x"), Ref("a", "x"))
    assert not same_value(Ref("a", "x"), Ref("a", "y"))  # a dis change is a change
    assert not same_value(True, Number(1))
    assert same_value(Number(math.nan), Number(math.nan))
    assert not same_value("1", Number(1))


def _tags(draw: st.DrawFn) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for name in draw(st.sets(st.sampled_from(TAGS))):
        if name == "curVal":
            out[name] = Number(draw(st.integers(0, 10)))
        elif name == "dis":
            out[name] = draw(st.sampled_from(["s1", "s2"]))
        else:
            out[name] = MARKER
    if draw(st.booleans()):
        out["siteRef"] = Ref(f"r{draw(st.integers(0, 9))}")
    return out


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, int, dict[str, Value]]]:
    ops = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["add", "update", "remove"]))
        tags = _tags(draw)
        if kind == "update":
            for name in draw(st.sets(st.sampled_from(TAGS))):
                tags[name] = REMOVE
        ops.append((kind, draw(st.integers(0, 9)), tags))
    return ops


@settings(max_examples=60, deadline=None)
@given(operations())
def test_index_reads_agree_with_a_full_scan(ops: list[tuple[str, int, dict[str, Value]]]) -> None:
    index = RecordIndex()
    truth: dict[str, dict[str, Value]] = {}
    for kind, n, tags in ops:
        key = f"r{n}"
        if kind == "add" and key not in truth:
            rec = {"id": Ref(key), **tags}
            index.apply_add(index.prepare_add([rec]))
            truth[key] = rec
        elif kind == "update" and key in truth:
            index.apply_update(index.prepare_update([{"id": Ref(key), **tags}]))
            new = dict(truth[key])
            for name, val in tags.items():
                if val is REMOVE:
                    new.pop(name, None)
                else:
                    new[name] = val
            truth[key] = new
        elif kind == "remove":
            index.apply_remove(index.known([Ref(key)]))
            truth.pop(key, None)
    assert len(index) == len(truth)
    assert {r["id"].val: r for r in index.records()} == truth

    def resolve(ref: Ref) -> dict[str, Value] | None:
        return truth.get(ref.val)

    for text in FILTERS:
        flt = parse_filter(text)
        expected = sorted(k for k, rec in truth.items() if flt.matches(rec, resolve))
        found = index.read_by_filter(text)
        got = sorted(r["id"].val for r in found)
        assert got == expected, text
        narrowed = index.statistics().last_filter_candidates
        if flt.required_tags():
            holders = [r for r in truth.values() if flt.required_tags() <= r.keys()]
            assert narrowed == len(holders)
        assert index.read_by_filter(text, 2) == found[:2], text  # the limit keeps the order


@pytest.mark.parametrize(
    ("text", "only_tags"),
    [
        ("point", True),
        ("point and temp and sensor", True),
        ("(point and temp) and sensor", True),
        ("siteRef->site", False),  # a path needs the predicate
        ("point and not sensor", False),
        ("point or sensor", False),
        ("point and curVal > 5", False),
    ],
)
def test_tag_only_filters_are_answered_by_the_bitmaps(text: str, only_tags: bool) -> None:
    assert _only_tags(parse_filter(text)) is only_tags


def test_tag_only_reads_skip_freed_slots_and_hand_out_the_stored_records() -> None:
    index = RecordIndex()
    index.apply_add(index.prepare_add([{"id": Ref(f"p{i}"), "point": MARKER} for i in range(5)]))
    index.apply_remove(["p1", "p3"])
    got = index.read_by_filter("point")
    assert [r["id"].val for r in got] == ["p0", "p2", "p4"]
    assert got[0] is index.get("p0")  # no copy
    assert index.read_by_filter("point", 0) == []
    assert [r["id"].val for r in index.read_by_filter("point", 1)] == ["p0"]


def test_change_versions() -> None:
    index = RecordIndex()
    index.apply_add(index.prepare_add([{"id": Ref("a")}, {"id": Ref("b")}]))
    va, vb = index.version_of("a"), index.version_of("b")
    assert va is not None and vb is not None and index.version == max(va, vb)
    assert index.prepare_update([{"id": Ref("a"), "x": None}]) == []  # nothing to change
    index.apply_update(index.prepare_update([{"id": Ref("a"), "curVal": Number(1)}]))
    assert index.version_of("a") == index.version > vb
    index.touch("b")
    assert index.version_of("b") == index.version
    assert index.versions_of(["b", "zz", "a"]) == [
        index.version_of("b"),
        None,
        index.version_of("a"),
    ]
    index.apply_remove(["a"])
    assert index.version_of("a") is None
    change = index.prepare_update([{"id": Ref("b"), "curVal": Number(1)}])[0]
    assert not change.persistent  # only a runtime tag
    change = index.prepare_update([{"id": Ref("b"), "dis": "B"}])[0]
    assert change.persistent


def test_shared_values() -> None:
    index = RecordIndex()
    index.apply_add(
        index.prepare_add(
            [
                {"id": Ref(f"p{i}"), "siteRef": Ref("s" + "1"), "kind": "".join(["Num", "ber"])}
                for i in range(3)
            ]
        )
    )
    recs = list(index.records())
    assert recs[0]["siteRef"] is recs[1]["siteRef"] is recs[2]["siteRef"]
    assert recs[0]["kind"] is recs[2]["kind"]


# -- watch registry ----------------------------------------------------------------------------


def registry(max_lease: float = 600) -> tuple[WatchRegistry, dict[str, int]]:
    versions = {"a": 1, "b": 2}
    return WatchRegistry(versions.get, max_lease=max_lease), versions


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        (None, DEFAULT_LEASE),
        (math.nan, DEFAULT_LEASE),
        (-5, DEFAULT_LEASE),
        (0, DEFAULT_LEASE),
        (0.1, MIN_LEASE),
        (120, 120),
        (1e9, 600),
        (math.inf, DEFAULT_LEASE),
    ],
)
def test_lease_grants(asked: float | None, granted: float) -> None:
    reg, _ = registry()
    assert reg.grant(asked) == granted


def test_registry_expiry_frees_watches() -> None:
    reg, versions = registry()
    w1 = reg.sub(None, None, ["a", "b", "zz"], 10, 0)
    reg.sub(None, "other", ["a"], 100, 0)
    assert w1.watch_id != "" and w1.dis == w1.watch_id and list(w1.seen) == ["a", "b"]
    assert len(reg) == 2
    assert reg.expire(10) == 1 and len(reg) == 1
    with pytest.raises(UnknownWatchError):
        reg.get(w1.watch_id, 10)
    with pytest.raises(ValueError):
        WatchRegistry(versions.get, max_lease=0)


def test_registry_poll() -> None:
    reg, versions = registry()
    watch = reg.sub(None, "x", ["a", "b"], 60, 0)
    assert reg.poll(watch.watch_id, False, 1) == []
    versions["b"] = 5
    assert reg.poll(watch.watch_id, False, 2) == ["b"]
    assert reg.poll(watch.watch_id, False, 3) == []
    del versions["a"]  # removed from the store
    assert reg.poll(watch.watch_id, True, 4) == ["b"]
    assert list(reg.get(watch.watch_id, 4).seen) == ["b"]


def test_registry_skips_the_records_while_the_store_is_unchanged() -> None:
    versions = {"a": 1, "b": 2, "c": 3}
    store = [3]
    looked: list[str] = []

    def version_of(key: str) -> int | None:
        looked.append(key)
        return versions.get(key)

    reg = WatchRegistry(version_of, store_version=lambda: store[0])
    watch = reg.sub(None, "x", ["a", "b"], 60, 0)
    looked.clear()
    assert reg.poll(watch.watch_id, False, 1) == []
    assert looked == []  # the store's version said it all
    versions["b"] = store[0] = 4
    assert reg.poll(watch.watch_id, False, 2) == ["b"]
    assert sorted(looked) == ["a", "b"]
    looked.clear()
    assert reg.poll(watch.watch_id, False, 3) == [] and looked == []
    # A change to a watched record, then more records added to the watch: the next poll
    # still reports the change (adding does not count as having compared).
    versions["a"] = store[0] = 5
    reg.sub(watch.watch_id, None, ["c"], 60, 4)
    assert reg.poll(watch.watch_id, False, 5) == ["a"]
    assert reg.poll(watch.watch_id, True, 6) == ["a", "b", "c"]  # refresh looks anyway
    # A removal raises the store's version too: the record leaves the watch.
    del versions["c"]
    store[0] = 6
    assert reg.poll(watch.watch_id, False, 7) == []
    assert list(reg.get(watch.watch_id, 7).seen) == ["a", "b"]


def test_known_keys_keep_request_order_once_and_skip_the_rest() -> None:
    index = RecordIndex()
    index.apply_add(index.prepare_add([{"id": Ref(k)} for k in "abc"]))
    refs = [Ref("c"), Ref("zz"), Ref("a", "A"), Ref("c")]
    assert index.known(refs) == ["c", "a"]
    mixed: list[object] = [Ref("b"), "a", None, Ref("a")]
    assert index.known(mixed) == ["b", "a"]  # type: ignore[arg-type]
    assert index.known(iter(refs)) == ["c", "a"]
    assert index.known([]) == []
