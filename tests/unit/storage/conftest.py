"""Fixtures: every contract test runs against an InMemoryAdapter and an SQLiteAdapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.haystack.kinds import MARKER, Number, Ref, Value
from gateway.storage.common import IndexedAdapter
from gateway.storage.memory import InMemoryAdapter
from gateway.storage.sqlite import SQLiteAdapter


def tree() -> list[dict[str, Value]]:
    """Two sites, three equips, six points (two of them temperature sensors with history)."""
    recs: list[dict[str, Value]] = [
        {"id": Ref("s1", "Site 1"), "site": MARKER, "dis": "Site 1", "geoCity": "Lyon"},
        {"id": Ref("s2"), "site": MARKER, "dis": "Site 2", "geoCity": "Oslo"},
        {"id": Ref("e1"), "equip": MARKER, "dis": "AHU-1", "siteRef": Ref("s1")},
        {"id": Ref("e2"), "equip": MARKER, "dis": "AHU-2", "siteRef": Ref("s1")},
        {"id": Ref("e3"), "equip": MARKER, "dis": "Boiler", "siteRef": Ref("s2")},
    ]
    points = [
        ("p1", "e1", "s1", ("temp", "sensor")),
        ("p2", "e1", "s1", ("temp", "sp")),
        ("p3", "e2", "s1", ("temp", "sensor")),
        ("p4", "e2", "s1", ("humidity", "sensor")),
        ("p5", "e3", "s2", ("temp", "cmd")),
        ("p6", "e3", "s2", ("flow", "sensor")),
    ]
    for pid, eid, sid, markers in points:
        rec: dict[str, Value] = {
            "id": Ref(pid),
            "point": MARKER,
            "dis": f"{eid} {pid}",
            "kind": "Number",
            "unit": "°C",
            "equipRef": Ref(eid),
            "siteRef": Ref(sid),
            "tz": "Paris",
            "his": MARKER,
            "precision": Number(1),
        }
        rec.update(dict.fromkeys(markers, MARKER))
        recs.append(rec)
    return recs


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IndexedAdapter]:
    """An opened, empty adapter of each kind."""
    adapter: IndexedAdapter
    if request.param == "memory":
        adapter = InMemoryAdapter()
    else:
        adapter = SQLiteAdapter(tmp_path / "gateway.db")
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.aclose()


@pytest.fixture
async def loaded(store: IndexedAdapter) -> IndexedAdapter:
    """The adapter holding :func:`tree`."""
    await store.add_records(tree())
    return store
