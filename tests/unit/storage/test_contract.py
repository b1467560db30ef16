"""The storage contract, run against both adapters (see conftest.py: ``store`` / ``loaded``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import pytest
import trio

from gateway.auth.errors import UnknownUserError, UserExistsError
from gateway.auth.roles import Role
from gateway.auth.tokens import BearerTokens, TokenPolicy, TokenRecord
from gateway.auth.users import create_user
from gateway.haystack.filter import parse_filter
from gateway.haystack.kinds import MARKER, NA, REMOVE, Coord, Number, Ref
from gateway.haystack.tz import hs_tz
from gateway.points.priority import PriorityArray
from gateway.storage.base import (
    DuplicateIdError,
    StorageAdapter,
    StorageError,
    UnknownIdError,
    UnknownWatchError,
)
from gateway.storage.common import IndexedAdapter
from gateway.storage.hiscolumns import HisColumns
from gateway.storage.memory import InMemoryAdapter
from gateway.storage.sqlite import SQLiteAdapter

from .conftest import tree

PARIS = hs_tz("Paris")
T0 = dt.datetime(2024, 3, 1, tzinfo=PARIS)
ITER = 4096


def ids(recs: list[dict[str, object]]) -> list[str]:
    return sorted(r["id"].val for r in recs)  # type: ignore[attr-defined]


def minutes(*offsets: int) -> list[dt.datetime]:
    return [T0 + dt.timedelta(minutes=m) for m in offsets]


async def test_both_adapters_implement_the_protocol(store: IndexedAdapter, tmp_path: Path) -> None:
    assert isinstance(store, StorageAdapter)
    # and mypy checks every signature structurally here
    adapters: list[StorageAdapter] = [InMemoryAdapter(), SQLiteAdapter(tmp_path / "x.db")]
    assert all(isinstance(a, StorageAdapter) for a in adapters)


# -- records -----------------------------------------------------------------------------------


async def test_read_by_ids_in_request_order_with_none_for_unknown(loaded: IndexedAdapter) -> None:
    got = await loaded.read_by_ids([Ref("p3"), Ref("nope"), Ref("s1"), Ref("p3")])
    assert [r["id"] if r else None for r in got] == [Ref("p3"), None, Ref("s1"), Ref("p3")]
    assert got[2] == tree()[0]
    assert got[2]["id"].dis == "Site 1"
    assert got[0] == got[3]


async def test_records_read_are_snapshots_never_changed_by_the_store(
    loaded: IndexedAdapter,
) -> None:
    # Reads hand out the store's own dicts (read-only for callers, see storage.base): an
    # update must install a new dict, never change the one a reader holds.
    (before,) = await loaded.read_by_ids([Ref("p3")])
    (listed,) = [r for r in await loaded.read_by_filter("point") if r["id"] == Ref("p3")]
    assert before is not None
    kept = dict(before)
    await loaded.update_records([{"id": Ref("p3"), "dis": "renamed", "curVal": Number(1)}])
    await loaded.update_records([{"id": Ref("p3"), "point": REMOVE}])
    assert before == kept and listed == kept  # what the readers hold did not move
    (after,) = await loaded.read_by_ids([Ref("p3")])
    assert after is not None and after["dis"] == "renamed" and "point" not in after
    assert after["curVal"] == Number(1)


async def test_add_refuses_duplicates_all_or_nothing(loaded: IndexedAdapter) -> None:
    with pytest.raises(DuplicateIdError):
        await loaded.add_records([{"id": Ref("p1"), "point": MARKER}])
    with pytest.raises(DuplicateIdError):
        await loaded.add_records([{"id": Ref("n1")}, {"id": Ref("n2")}, {"id": Ref("n1")}])
    assert await loaded.read_by_ids([Ref("n1"), Ref("n2")]) == [None, None]


@pytest.mark.parametrize(
    "bad",
    [
        {"dis": "no id"},
        {"id": "p9"},
        {"id": Ref("p9"), "Bad-Name": MARKER},
        {"id": Ref("p9"), "count": 3},
        {"id": Ref("p9"), "nested": [Number(1), {"deep": object()}]},
        {"id": Ref("p9"), "nested": {"Bad-Name": MARKER}},
    ],
    ids=["no id", "id not a Ref", "bad tag name", "int", "nested object", "nested name"],
)
async def test_add_refuses_bad_records(store: IndexedAdapter, bad: dict[str, object]) -> None:
    with pytest.raises(StorageError):
        await store.add_records([{"id": Ref("ok")}, bad])
    assert await store.read_by_ids([Ref("ok")]) == [None]


async def test_update_refuses_what_cannot_be_stored(loaded: IndexedAdapter) -> None:
    with pytest.raises(StorageError):
        await loaded.update_records([{"id": Ref("p1"), "dis": "x"}, {"id": Ref("p2"), "n": 1.5}])
    (rec,) = await loaded.read_by_ids([Ref("p1")])
    assert rec is not None and rec["dis"] == "e1 p1"


async def test_add_drops_null_tags(store: IndexedAdapter) -> None:
    await store.add_records([{"id": Ref("a"), "dis": "A", "gone": None, "removed": REMOVE}])
    assert await store.read_by_ids([Ref("a")]) == [{"id": Ref("a"), "dis": "A"}]


async def test_update_changes_removes_and_ignores_none(loaded: IndexedAdapter) -> None:
    await loaded.update_records(
        [{"id": Ref("p1"), "dis": "renamed", "sensor": REMOVE, "unit": None, "newTag": MARKER}]
    )
    (rec,) = await loaded.read_by_ids([Ref("p1")])
    assert rec is not None
    assert rec["dis"] == "renamed" and rec["newTag"] is MARKER
    assert "sensor" not in rec and rec["unit"] == "°C"
    # the tag index follows the change
    assert ids(await loaded.read_by_filter("temp and sensor")) == ["p3"]
    assert ids(await loaded.read_by_filter("newTag")) == ["p1"]


async def test_update_unknown_id_changes_nothing(loaded: IndexedAdapter) -> None:
    with pytest.raises(UnknownIdError):
        await loaded.update_records([{"id": Ref("p1"), "dis": "x"}, {"id": Ref("zz"), "a": "x"}])
    (rec,) = await loaded.read_by_ids([Ref("p1")])
    assert rec is not None and rec["dis"] == "e1 p1"
    with pytest.raises(StorageError):
        await loaded.update_records([{"dis": "no id"}])


async def test_update_same_id_twice_applies_in_order(loaded: IndexedAdapter) -> None:
    await loaded.update_records(
        [{"id": Ref("p1"), "a": MARKER, "b": MARKER}, {"id": Ref("p1"), "a": REMOVE, "c": "x"}]
    )
    (rec,) = await loaded.read_by_ids([Ref("p1")])
    assert rec is not None and "a" not in rec and rec["b"] is MARKER and rec["c"] == "x"
    assert await loaded.read_by_filter("a") == []
    assert ids(await loaded.read_by_filter("b and c")) == ["p1"]


async def test_remove_records(loaded: IndexedAdapter) -> None:
    await loaded.his_write(Ref("p1"), [(T0, Number(1, "°C"))])
    await loaded.remove_records([Ref("p1"), Ref("unknown")])
    assert await loaded.read_by_ids([Ref("p1")]) == [None]
    assert ids(await loaded.read_by_filter("temp and sensor")) == ["p3"]
    with pytest.raises(UnknownIdError):
        await loaded.his_read(Ref("p1"))
    # the id may be used again, without the old history
    await loaded.add_records([{"id": Ref("p1"), "point": MARKER}])
    assert await loaded.his_read(Ref("p1")) == []


# -- filters -----------------------------------------------------------------------------------


async def test_filter_read_uses_the_tag_index(loaded: IndexedAdapter) -> None:
    total = loaded.statistics().records
    assert total == 11
    assert ids(await loaded.read_by_filter("point and temp and sensor")) == ["p1", "p3"]
    # only the records holding all three tags were examined
    assert loaded.statistics().last_filter_candidates == 2
    assert ids(await loaded.read_by_filter("equip")) == ["e1", "e2", "e3"]
    assert loaded.statistics().last_filter_candidates == 3
    # no required tag: a full scan
    assert ids(await loaded.read_by_filter("not point")) == ["e1", "e2", "e3", "s1", "s2"]
    assert loaded.statistics().last_filter_candidates == total
    assert await loaded.read_by_filter("point and nosuchtag") == []


async def test_filter_read_with_limit(loaded: IndexedAdapter) -> None:
    assert len(await loaded.read_by_filter("point", limit=4)) == 4
    assert len(await loaded.read_by_filter("point", limit=100)) == 6
    assert await loaded.read_by_filter("point", limit=0) == []


async def test_filter_read_follows_paths(loaded: IndexedAdapter) -> None:
    assert ids(await loaded.read_by_filter('point and siteRef->geoCity == "Oslo"')) == [
        "p5",
        "p6",
    ]
    got = await loaded.read_by_filter('sensor and equipRef->siteRef->dis == "Site 1"')
    assert ids(got) == ["p1", "p3", "p4"]
    assert await loaded.read_by_filter('equipRef->missing->dis == "x"') == []
    # a parsed Filter works as well as its text
    assert ids(await loaded.read_by_filter(parse_filter("siteRef == @s2"))) == ["e3", "p5", "p6"]


async def test_filter_sees_runtime_tags(loaded: IndexedAdapter) -> None:
    await loaded.update_records(
        [
            {"id": Ref("p1"), "curVal": Number(21.5, "°C"), "curStatus": "ok"},
            {"id": Ref("p3"), "curVal": Number(18.0, "°C"), "curStatus": "ok"},
        ]
    )
    assert ids(await loaded.read_by_filter("curVal > 20°C")) == ["p1"]
    assert loaded.statistics().last_filter_candidates == 2


# -- nav ---------------------------------------------------------------------------------------


async def test_nav_levels(loaded: IndexedAdapter) -> None:
    root = await loaded.nav_children(None)
    assert [r["id"] for r in root] == [Ref("s1"), Ref("s2")]
    assert [r["navId"] for r in root] == [Ref("s1"), Ref("s2")]
    equips = await loaded.nav_children(Ref("s1"))
    assert [(r["dis"], r["navId"]) for r in equips] == [("AHU-1", Ref("e1")), ("AHU-2", Ref("e2"))]
    # Haystack 3 clients send the navId as a Str
    assert await loaded.nav_children("@s1") == equips
    assert await loaded.nav_children("s1") == equips
    points = await loaded.nav_children(Ref("e1"))
    assert [r["id"] for r in points] == [Ref("p1"), Ref("p2")]
    assert all("navId" not in r for r in points)
    assert await loaded.nav_children(Ref("p1")) == []
    assert await loaded.nav_children(Ref("nowhere")) == []


async def test_nav_root_without_sites(loaded: IndexedAdapter) -> None:
    await loaded.remove_records([Ref("s1"), Ref("s2")])
    assert [r["id"] for r in await loaded.nav_children(None)] == [Ref("e1"), Ref("e2"), Ref("e3")]
    await loaded.remove_records([Ref("e1"), Ref("e2"), Ref("e3")])
    root = await loaded.nav_children(None)
    assert ids(root) == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert all("navId" not in r for r in root)


# -- history -----------------------------------------------------------------------------------


async def test_his_write_sorts_and_deduplicates(loaded: IndexedAdapter) -> None:
    t = minutes(0, 1, 2, 3)
    samples = [
        (t[2], Number(2, "°C")),
        (t[0], Number(0, "°C")),
        (t[3], Number(3, "°C")),
        (t[1].astimezone(dt.UTC), Number(9, "°C")),  # an instant is the key, whatever the zone
        (t[2], Number(22, "°C")),  # the same instant again: the last one wins
        (t[1], None),  # null: skipped
        (t[1], Number(1, "°C")),
    ]
    assert await loaded.his_write(Ref("p1"), samples) == 4
    got = await loaded.his_read(Ref("p1"))
    assert got == [
        (t[0], Number(0, "°C")),
        (t[1], Number(1, "°C")),
        (t[2], Number(22, "°C")),
        (t[3], Number(3, "°C")),
    ]
    # read back in the zone of the write (the point's)
    assert {ts.tzinfo for ts, _ in got} == {PARIS}
    # a later write replaces samples and inserts between them
    await loaded.his_write(
        Ref("p1"), [(t[1], Number(11, "°C")), (T0 + dt.timedelta(seconds=90), Number(1.5, "°C"))]
    )
    assert [v for _, v in await loaded.his_read(Ref("p1"))] == [
        Number(0, "°C"),
        Number(11, "°C"),
        Number(1.5, "°C"),
        Number(22, "°C"),
        Number(3, "°C"),
    ]


async def test_his_ranges_are_start_inclusive_end_exclusive(loaded: IndexedAdapter) -> None:
    t = minutes(*range(10))
    await loaded.his_write(Ref("p1"), [(ts, Number(i, "°C")) for i, ts in enumerate(t)])
    await loaded.his_write(Ref("p3"), [(ts, Number(100 + i, "°C")) for i, ts in enumerate(t)])

    async def vals(start: dt.datetime | None, end: dt.datetime | None) -> list[float]:
        return [v.val for _, v in await loaded.his_read(Ref("p1"), start, end)]

    assert await vals(t[2], t[5]) == [2, 3, 4]
    assert await vals(t[2] + dt.timedelta(microseconds=1), t[5]) == [3, 4]
    assert await vals(None, t[1]) == [0]
    assert await vals(t[8], None) == [8, 9]
    assert await vals(t[5], t[5]) == []
    assert await vals(t[6], t[2]) == []
    assert await vals(None, None) == list(range(10))
    # other points are unaffected
    assert [v.val for _, v in await loaded.his_read(Ref("p3"), t[0], t[2])] == [100, 101]
    assert await loaded.his_read(Ref("p4")) == []
    assert await loaded.his_span(Ref("p1")) == (t[0], t[9])
    assert await loaded.his_span(Ref("p4")) is None


async def test_his_keeps_every_kind_exactly(loaded: IndexedAdapter) -> None:
    t = minutes(*range(8))
    samples = [
        (t[0], Number(1.25, "°C")),
        (t[1], Number(2.5, "°F")),  # another unit than the series: kept as given
        (t[2], Number(3)),
        (t[3], Number(math.nan, "°C")),
        (t[4], Number(math.inf, "°C")),
        (t[4] + dt.timedelta(seconds=1), Number(-math.inf, "°F")),
        (t[4] + dt.timedelta(seconds=2), Number(math.nan)),
        (t[5], True),
        (t[6], NA),
        (t[7], "text"),
    ]
    await loaded.his_write(Ref("p2"), samples)
    got = await loaded.his_read(Ref("p2"))
    assert got == samples
    await loaded.his_write(Ref("p6"), [(t[0], Coord(45.5, 4.8)), (t[1], False)])
    assert [v for _, v in await loaded.his_read(Ref("p6"))] == [Coord(45.5, 4.8), False]


async def test_his_timestamps_keep_microseconds_and_dst(loaded: IndexedAdapter) -> None:
    # 02:30 happens twice in Paris on 2023-10-29; fold tells them apart
    first = dt.datetime(2023, 10, 29, 2, 30, 0, 123456, tzinfo=PARIS)
    second = first.replace(fold=1)
    await loaded.his_write(Ref("p1"), [(second, Number(2, "°C")), (first, Number(1, "°C"))])
    got = await loaded.his_read(Ref("p1"))
    assert [ts.utcoffset() for ts, _ in got] == [dt.timedelta(hours=2), dt.timedelta(hours=1)]
    assert [ts.microsecond for ts, _ in got] == [123456, 123456]
    assert [v.val for _, v in got] == [1, 2]


async def test_his_large_out_of_order_merge(loaded: IndexedAdapter) -> None:
    await loaded.his_write(
        Ref("p1"), [(T0 + dt.timedelta(minutes=2 * i), Number(i)) for i in range(300)]
    )
    # odd minutes in between, and replacements, in one big batch (reverse order)
    batch = [(T0 + dt.timedelta(minutes=m), Number(-m)) for m in reversed(range(100, 300))]
    await loaded.his_write(Ref("p1"), batch)
    got = await loaded.his_read(Ref("p1"))
    keys = [ts for ts, _ in got]
    assert keys == sorted(set(keys)) and len(got) == 300 + 100
    by_minute = {int((ts - T0).total_seconds() // 60): v.val for ts, v in got}
    assert by_minute[0] == 0 and by_minute[98] == 49 and by_minute[100] == -100
    assert by_minute[101] == -101 and by_minute[598] == 299


async def test_his_refuses_unknown_points_and_naive_times(loaded: IndexedAdapter) -> None:
    with pytest.raises(UnknownIdError):
        await loaded.his_write(Ref("zz"), [(T0, Number(1))])
    with pytest.raises(UnknownIdError):
        await loaded.his_read(Ref("zz"))
    with pytest.raises(UnknownIdError):
        await loaded.his_span(Ref("zz"))
    with pytest.raises(StorageError):
        await loaded.his_write(Ref("p1"), [(dt.datetime(2024, 1, 1), Number(1))])
    with pytest.raises(StorageError):
        await loaded.his_read(Ref("p1"), dt.datetime(2024, 1, 1))
    with pytest.raises(StorageError):
        await loaded.his_write(Ref("p1"), [(T0, 1)])  # an int is not a Haystack value
    assert await loaded.his_write(Ref("p1"), []) == 0


# -- priority arrays ---------------------------------------------------------------------------


async def test_priority_arrays(loaded: IndexedAdapter) -> None:
    await loaded.update_records([{"id": Ref("p2"), "writable": MARKER}])
    (rec,) = await loaded.read_by_ids([Ref("p2")])
    assert rec is not None
    now = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
    array = (
        PriorityArray.for_point(rec)
        .write(8, Number(21, "°C"), "alice", now=now, duration=Number(30, "min"))
        .write(16, Number(19), "schedule", now=now)
        .write(17, Number(18, "°C"), "default", now=now)
        .relinquish(10, "bob", now=now)
    )
    await loaded.save_priority_array(Ref("p2"), array.to_records())
    stored = await loaded.load_priority_arrays()
    assert list(stored) == [Ref("p2")]
    assert PriorityArray.from_records(stored[Ref("p2")], rec) == array
    # overwritten, then deleted by an empty list
    smaller = PriorityArray.for_point(rec).write(17, Number(18, "°C"), "default", now=now)
    await loaded.save_priority_array(Ref("p2"), smaller.to_records())
    stored = await loaded.load_priority_arrays()
    assert PriorityArray.from_records(stored[Ref("p2")], rec) == smaller
    await loaded.save_priority_array(Ref("p2"), [])
    assert await loaded.load_priority_arrays() == {}
    with pytest.raises(UnknownIdError):
        await loaded.save_priority_array(Ref("zz"), smaller.to_records())


async def test_removing_a_point_removes_its_array(loaded: IndexedAdapter) -> None:
    levels = [{"level": Number(17), "val": Number(1), "who": "x", "written": T0}]
    await loaded.save_priority_array(Ref("p5"), levels)
    assert (await loaded.load_priority_arrays())[Ref("p5")] == levels
    await loaded.remove_records([Ref("p5")])
    assert await loaded.load_priority_arrays() == {}


# -- watches -----------------------------------------------------------------------------------


async def test_watch_reports_only_changes(loaded: IndexedAdapter) -> None:
    info = await loaded.watch_sub(None, "ui", [Ref("s1"), Ref("p1"), Ref("p3"), Ref("zz")], 60, 0)
    assert info.watch_id.startswith("w-") and info.dis == "ui" and info.lease == 60
    assert info.ids == [Ref("s1"), Ref("p1"), Ref("p3")]
    assert info.ids[0].dis == "Site 1"  # canonical: the record's own id
    assert await loaded.watch_poll(info.watch_id, False, 1) == []
    # a runtime tag change
    await loaded.update_records([{"id": Ref("p1"), "curVal": Number(20, "°C")}])
    assert ids(await loaded.watch_poll(info.watch_id, False, 2)) == ["p1"]
    assert await loaded.watch_poll(info.watch_id, False, 3) == []
    # an update that changes nothing is no change
    await loaded.update_records([{"id": Ref("p1"), "curVal": Number(20, "°C")}])
    assert await loaded.watch_poll(info.watch_id, False, 4) == []
    # a history write and a config change
    await loaded.his_write(Ref("p3"), [(T0, Number(1, "°C"))])
    await loaded.update_records([{"id": Ref("s1"), "dis": "HQ"}, {"id": Ref("p2"), "x": MARKER}])
    got = await loaded.watch_poll(info.watch_id, False, 5)
    assert ids(got) == ["p3", "s1"]
    assert next(r for r in got if r["id"] == Ref("s1"))["dis"] == "HQ"
    # refresh returns everything
    assert ids(await loaded.watch_poll(info.watch_id, True, 6)) == ["p1", "p3", "s1"]
    assert await loaded.watch_poll(info.watch_id, False, 7) == []


async def test_watch_add_unsub_and_close(loaded: IndexedAdapter) -> None:
    info = await loaded.watch_sub(None, None, [Ref("p1")], 60, 0)
    added = await loaded.watch_sub(info.watch_id, None, [Ref("p2"), Ref("p1")], 30, 1)
    assert added.watch_id == info.watch_id and added.lease == 30
    assert added.ids == [Ref("p1"), Ref("p2")]
    await loaded.update_records([{"id": Ref(p), "curVal": Number(1, "°C")} for p in ("p1", "p2")])
    await loaded.watch_unsub(info.watch_id, [Ref("p1")])
    assert ids(await loaded.watch_poll(info.watch_id, False, 2)) == ["p2"]
    await loaded.watch_unsub("w-unknown", [Ref("p2")])  # ignored
    await loaded.watch_unsub(info.watch_id, None)
    with pytest.raises(UnknownWatchError):
        await loaded.watch_poll(info.watch_id, False, 3)
    with pytest.raises(UnknownWatchError):
        await loaded.watch_sub(info.watch_id, None, [Ref("p1")], 60, 3)
    await loaded.watch_unsub(info.watch_id, None)  # closing twice is fine


async def test_watch_lease_expires_and_is_renewed(loaded: IndexedAdapter) -> None:
    info = await loaded.watch_sub(None, "x", [Ref("p1")], 1e9, 0)
    assert info.lease == 3600  # clamped to the maximum
    short = await loaded.watch_sub(None, "y", [Ref("p1")], 10, 0)
    assert short.lease == 10
    await loaded.watch_poll(short.watch_id, False, 9)  # renews until 19
    await loaded.watch_poll(short.watch_id, False, 18)  # renews until 28
    with pytest.raises(UnknownWatchError):
        await loaded.watch_poll(short.watch_id, False, 28)
    with pytest.raises(UnknownWatchError):  # expired watches are gone for good
        await loaded.watch_poll(short.watch_id, False, 0)
    assert await loaded.watch_poll(info.watch_id, False, 3000) == []


async def test_watch_drops_removed_records(loaded: IndexedAdapter) -> None:
    info = await loaded.watch_sub(None, "x", [Ref("p1"), Ref("p2")], 60, 0)
    await loaded.remove_records([Ref("p1")])
    assert await loaded.watch_poll(info.watch_id, True, 1) != []
    again = await loaded.watch_sub(info.watch_id, None, [], 60, 2)
    assert again.ids == [Ref("p2")]


# -- users and tokens --------------------------------------------------------------------------


async def test_user_store(store: IndexedAdapter) -> None:
    bob = create_user("bob", "pw", iterations=ITER, now=1.0)
    await store.create_user(bob)
    with pytest.raises(UserExistsError):
        await store.create_user(bob)
    await store.create_user(create_user("amy", "pw", Role.ADMIN, iterations=ITER))
    assert [u.username for u in await store.list_users()] == ["amy", "bob"]
    assert await store.get_user("bob") == bob
    assert await store.get_user("nobody") is None
    assert await store.count_admins() == 1
    await store.update_user(dataclasses.replace(bob, role=Role.ADMIN))
    assert await store.count_admins() == 2
    await store.update_user(dataclasses.replace(bob, role=Role.ADMIN, enabled=False))
    assert await store.count_admins() == 1
    with pytest.raises(UnknownUserError):
        await store.update_user(create_user("ghost", "pw", iterations=ITER))
    assert await store.delete_user("bob")
    assert not await store.delete_user("bob")
    assert [u.username for u in await store.list_users()] == ["amy"]


async def test_token_store(store: IndexedAdapter) -> None:
    recs = [
        TokenRecord(f"h{i}", "bob" if i % 2 else "amy", Role.VIEWER, 0, 100 + i) for i in range(6)
    ]
    for rec in recs:
        await store.save_token(rec)
    assert await store.count_tokens() == 6
    assert await store.get_token("h3") == recs[3]
    assert await store.get_token("nope") is None
    await store.renew_token("h0", 500)
    await store.renew_token("nope", 500)  # ignored
    assert (await store.get_token("h0")).expires == 500  # type: ignore[union-attr]
    assert await store.revoke_token("h5") and not await store.revoke_token("h5")
    assert await store.revoke_user_tokens("bob") == 2  # h1, h3
    assert sorted([h for h in ("h0", "h2", "h4") if await store.get_token(h)]) == ["h0", "h2", "h4"]
    assert await store.purge_expired_tokens(103) == 1  # h2 (expires 102)
    assert await store.evict_soonest_tokens(1) == 1  # h4 (104) before h0 (500)
    assert await store.get_token("h0") is not None and await store.count_tokens() == 1
    assert await store.evict_soonest_tokens(0) == 0


async def test_bearer_tokens_over_the_store(store: IndexedAdapter) -> None:
    tokens = BearerTokens(store, TokenPolicy(lifetime=100, max_tokens=2))
    token, record = await tokens.issue("bob", Role.OPERATOR, now=0)
    assert (await tokens.check(token, now=50)) is not None
    await tokens.issue("amy", Role.VIEWER, now=1)
    await tokens.issue("eve", Role.VIEWER, now=2)  # full: the soonest to expire goes
    assert await store.count_tokens() == 2
    assert await tokens.check(token, now=200) is None
    assert await store.get_token(record.token_hash) is None


async def test_his_read_columns_match_his_read(loaded: IndexedAdapter) -> None:
    t = minutes(*range(6))
    samples = [
        (t[0], Number(1.25, "°C")),
        (t[1], Number(2.5, "°F")),
        (t[2], True),
        (t[3], Number(math.nan, "°C")),
        (t[4], Number(4, "°C")),
        (t[5], NA),
    ]
    await loaded.his_write(Ref("p2"), samples)
    cols = await loaded.his_read_columns(Ref("p2"))
    assert isinstance(cols, HisColumns) and len(cols) == 6
    assert cols.unit == "°C" and cols.tz is PARIS
    assert list(cols) == cols.samples() == await loaded.his_read(Ref("p2")) == samples
    assert cols.timestamps() == t and cols.values() == [v for _, v in samples]
    assert cols.times[4] == t[4].timestamp() and cols.nums[4] == 4.0
    assert cols[1] == samples[1] and cols[-1] == samples[-1]
    assert cols[2:5] == samples[2:5]
    part = await loaded.his_read_columns(Ref("p2"), t[1], t[3])
    assert part.samples() == samples[1:3]
    numbers = await loaded.his_read_columns(Ref("p2"), t[4], t[5])
    assert not numbers.others and list(numbers.nums) == [4.0]
    # no history: empty, in the point's zone
    empty = await loaded.his_read_columns(Ref("p4"))
    assert len(empty) == 0 and empty.tz is PARIS and empty.samples() == []
    with pytest.raises(UnknownIdError):
        await loaded.his_read_columns(Ref("zz"))


# -- concurrency -------------------------------------------------------------------------------


async def test_concurrent_updates_lose_nothing(loaded: IndexedAdapter) -> None:
    async def set_tag(i: int) -> None:
        await loaded.update_records([{"id": Ref("p1"), f"tag{i}": Number(i)}])
        await loaded.update_records([{"id": Ref("p1"), "curVal": Number(i, "°C")}])

    async def write_his(i: int) -> None:
        await loaded.his_write(Ref("p1"), [(T0 + dt.timedelta(minutes=i), Number(i, "°C"))])

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(set_tag, i)
            nursery.start_soon(write_his, i)
    (rec,) = await loaded.read_by_ids([Ref("p1")])
    assert rec is not None
    assert all(rec[f"tag{i}"] == Number(i) for i in range(20))
    assert len(await loaded.his_read(Ref("p1"))) == 20
    assert ids(await loaded.read_by_filter("tag7 and tag13 and curVal")) == ["p1"]
