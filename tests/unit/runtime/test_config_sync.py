"""Configuration records into the store: add, update tag by tag, remove; runtime tags stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.runtime.config_sync import sync_records
from gateway.storage.sqlite import SQLiteAdapter

SITE: dict[str, Value] = {"id": Ref("s"), "site": MARKER, "dis": "Site"}
POINT: dict[str, Value] = {
    "id": Ref("p"),
    "point": MARKER,
    "his": MARKER,
    "tz": "UTC",
    "kind": "Number",
    "unit": "kW",
    "siteRef": Ref("s"),
    "dis": "Power",
}
OTHER: dict[str, Value] = {"id": Ref("q"), "point": MARKER, "kind": "Bool", "siteRef": Ref("s")}


async def test_sync_adds_updates_and_removes(tmp_path: Path) -> None:
    store = SQLiteAdapter(tmp_path / "gw.db")
    await store.open()
    try:
        first = await sync_records(store, [SITE, POINT, OTHER])
        assert sorted(r.val for r in first.added) == ["p", "q", "s"]
        assert not first.updated and not first.removed

        # Runtime tags and history that the runners wrote must survive a reload.
        await store.update_records([{"id": Ref("p"), "curVal": Number(3.0, "kW")}])
        ts = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        await store.his_write(Ref("p"), [(ts, Number(1.0, "kW"))])

        changed = {k: v for k, v in POINT.items() if k != "dis"} | {"unit": "W", "sensor": MARKER}
        second = await sync_records(store, [SITE, changed])
        assert second.added == []
        assert second.updated == [Ref("p")]
        assert second.removed == [Ref("q")]
        (rec,) = await store.read_by_ids([Ref("p")])
        assert rec is not None
        assert rec["unit"] == "W"
        assert rec["sensor"] is MARKER
        assert "dis" not in rec
        assert rec["curVal"] == Number(3.0, "kW")
        assert await store.his_read(Ref("p")) == [(ts, Number(1.0, "kW"))]
        assert await store.read_by_ids([Ref("q")]) == [None]

        unchanged = await sync_records(store, [SITE, changed])
        assert not unchanged.changed
    finally:
        await store.aclose()


async def test_values_of_another_kind_count_as_changes(tmp_path: Path) -> None:
    store = SQLiteAdapter(tmp_path / "gw.db")
    await store.open()
    try:
        await sync_records(store, [{"id": Ref("x"), "n": Number(1.0)}])
        result = await sync_records(store, [{"id": Ref("x"), "n": True}])
        assert result.updated == [Ref("x")]
        (rec,) = await store.read_by_ids([Ref("x")])
        assert rec is not None and rec["n"] is True
    finally:
        await store.aclose()
