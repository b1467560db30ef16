"""Every standard op over real HTTP through Hypercorn, in every format, over both adapters."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from gateway.haystack import MARKER, Col, Grid, Number, Ref, Symbol
from gateway.haystack.codecs import decode, encode, json4_his
from gateway.haystack.codecs.zinc import encode_val
from gateway.haystack.codecs.zinc_his import read_his_write
from gateway.haystack.tz import hs_tz
from gateway.ops import HaystackOps, action
from gateway.storage.base import StorageAdapter
from gateway.storage.memory import InMemoryAdapter
from gateway.storage.sqlite import SQLiteAdapter
from gateway.web.app import create_app
from tests.web_harness import serve_app

NY = hs_tz("New_York")
ZINC = "text/zinc"
JSON4 = "application/json"
JSON3 = "application/vnd.haystack+json;version=3"
TRIO = "text/trio"
READ_FORMATS = [ZINC, JSON4, JSON3, TRIO]


def records() -> list[dict[str, Any]]:
    """A small site: 2 sites, 3 equips, points of several kinds."""
    recs: list[dict[str, Any]] = [
        {"id": Ref("s1", "Site One"), "dis": "Site One", "site": MARKER, "tz": "New_York"},
        {"id": Ref("s2"), "dis": "Site Two", "site": MARKER, "tz": "New_York"},
        {"id": Ref("e1"), "dis": "AHU-1", "equip": MARKER, "ahu": MARKER, "siteRef": Ref("s1")},
        {"id": Ref("e2"), "dis": "VAV-1", "equip": MARKER, "siteRef": Ref("s1")},
        {"id": Ref("e3"), "dis": "Meter", "equip": MARKER, "siteRef": Ref("s2")},
    ]
    for i in range(6):
        recs.append(
            {
                "id": Ref(f"t{i}"),
                "dis": f"Temp {i}",
                "point": MARKER,
                "sensor": MARKER,
                "temp": MARKER,
                "his": MARKER,
                "kind": "Number",
                "unit": "°F",
                "tz": "New_York",
                "siteRef": Ref("s1"),
                "equipRef": Ref("e1" if i < 3 else "e2"),
                "curVal": Number(70 + i, "°F"),
            }
        )
    recs += [
        {
            "id": Ref("sp"),
            "dis": "Setpoint",
            "point": MARKER,
            "sp": MARKER,
            "writable": MARKER,
            "his": MARKER,
            "kind": "Number",
            "unit": "°F",
            "tz": "New_York",
            "siteRef": Ref("s1"),
            "equipRef": Ref("e1"),
        },
        {
            "id": Ref("fan"),
            "dis": "Fan cmd",
            "point": MARKER,
            "cmd": MARKER,
            "writable": MARKER,
            "kind": "Bool",
            "tz": "New_York",
            "siteRef": Ref("s2"),
            "equipRef": Ref("e3"),
        },
    ]
    return recs


class ActionOps(HaystackOps):
    """A subclass with one action and an overridden about."""

    @action("bump")
    async def bump(self, rec: dict[str, Any], args: dict[str, Any]) -> Grid:
        return Grid.from_dict({"id": rec["id"], "by": args.get("by", Number(1))})

    async def about(self) -> Grid:
        grid = await super().about()
        return grid.with_rows([{**grid[0], "productName": "Custom"}])


@dataclass
class Server:
    url: str
    client: httpx.AsyncClient
    storage: StorageAdapter

    async def call(self, op: str, grid: Grid | None = None, mime: str = ZINC) -> Grid:
        body = encode(grid or Grid.empty(), mime)
        resp = await self.client.post(
            f"{self.url}/api/{op}",
            content=body,
            headers={"Content-Type": mime, "Accept": mime},
        )
        assert resp.status_code == 200, resp.text
        return decode(resp.content, mime)


def _make_storage(kind: str, tmp_path: Path) -> StorageAdapter:
    if kind == "memory":
        return InMemoryAdapter(records())
    return SQLiteAdapter(tmp_path / "gateway.db")


@pytest.fixture(params=["memory", "sqlite"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    storage = _make_storage(request.param, tmp_path)
    if request.param == "sqlite":
        await storage.open()
        await storage.add_records(records())
        await storage.aclose()
        storage = SQLiteAdapter(tmp_path / "gateway.db")  # the app opens it
    app = create_app(ActionOps(storage, tz="New_York"))
    async with serve_app(app) as url, httpx.AsyncClient(timeout=10) as client:
        yield Server(url, client, storage)


def _one(grid: Grid) -> dict[str, Any]:
    assert not grid.is_error, grid.meta.get("dis")
    assert len(grid) == 1
    return grid[0]


# -- server information -----------------------------------------------------------------


@pytest.mark.parametrize("mime", READ_FORMATS)
async def test_about_in_every_format(server: Server, mime: str) -> None:
    row = _one(await server.call("about", mime=mime))
    assert row["haystackVersion"] == "4.0"
    assert row["tz"] == "New_York"
    assert row["productName"] == "Custom"  # the subclass's override
    assert isinstance(row["serverTime"], dt.datetime)
    assert row["serverBootTime"] <= row["serverTime"]
    for col in ("serverName", "productUri", "productVersion", "vendorName", "vendorUri"):
        assert row.get(col) is not None, col


async def test_about_csv_export(server: Server) -> None:
    resp = await server.client.get(f"{server.url}/api/about", headers={"Accept": "text/csv"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    header, row = resp.text.splitlines()[:2]
    assert header.startswith("haystackVersion,tz,")
    assert row.startswith("4.0,New_York,")


async def test_ops_lists_what_is_implemented(server: Server) -> None:
    grid = await server.call("ops")
    names = {row["name"] for row in grid}
    assert {"about", "read", "hisRead", "pointWrite", "watchPoll", "invokeAction"} <= names
    read = next(r for r in grid if r["name"] == "read")
    assert read["def"] == Symbol("op:read") and read["noSideEffects"] is MARKER
    assert all(r["summary"] for r in grid)


async def test_formats(server: Server) -> None:
    grid = await server.call("formats")
    by_mime = {r["mime"]: r for r in grid}
    assert by_mime["text/zinc"]["receive"] is MARKER
    assert by_mime["text/csv"].get("receive") is None and by_mime["text/csv"]["send"] is MARKER


@pytest.mark.parametrize("op", ["defs", "libs", "filetypes"])
async def test_defs_family(server: Server, op: str) -> None:
    grid = await server.call(op)
    assert len(grid) > 0
    filtered = await server.call(op, Grid.from_dict({"filter": "def", "limit": Number(2)}))
    assert len(filtered) == 2
    assert filtered.meta.get("incomplete") is not None


async def test_defs_filter(server: Server) -> None:
    grid = await server.call("defs", Grid.from_dict({"filter": "def==^site"}))
    assert [r["def"] for r in grid] == [Symbol("site")]


# -- read and nav -----------------------------------------------------------------------


@pytest.mark.parametrize("mime", READ_FORMATS)
async def test_read_by_filter(server: Server, mime: str) -> None:
    grid = await server.call("read", Grid.from_dict({"filter": "point and temp"}), mime)
    assert sorted(r["id"].val for r in grid) == [f"t{i}" for i in range(6)]
    assert all(r["unit"] == "°F" and r["tz"] == "New_York" for r in grid)
    limited = await server.call("read", Grid.from_dict({"filter": "point", "limit": Number(3)}))
    assert len(limited) == 3


async def test_read_by_ref_path(server: Server) -> None:
    grid = await server.call("read", Grid.from_dict({"filter": 'siteRef->dis == "Site Two"'}))
    assert {r["id"].val for r in grid} == {"e3", "fan"}


async def test_read_by_ids_in_order_with_unknown(server: Server) -> None:
    ids = Grid(["id"], [{"id": Ref("t2")}, {"id": Ref("nope")}, {"id": Ref("s1")}])
    grid = await server.call("read", ids)
    assert len(grid) == 3
    assert grid[0]["id"] == Ref("t2")
    assert all(v is None for v in grid[1].values())
    assert grid[2]["dis"] == "Site One"


async def test_read_unknown_ids_only(server: Server) -> None:
    grid = await server.call("read", Grid(["id"], [{"id": Ref("x")}, {"id": Ref("y")}]))
    assert grid.col_names == ("id",) and len(grid) == 2


async def test_read_bad_filter_is_an_error_grid(server: Server) -> None:
    grid = await server.call("read", Grid.from_dict({"filter": "point and (temp"}))
    assert grid.is_error
    assert "filter" in grid.meta["dis"].lower() or ")" in grid.meta["dis"]


async def test_nav_tree(server: Server) -> None:
    root = await server.call("nav")
    assert {r["id"].val for r in root} == {"s1", "s2"}
    assert all(isinstance(r["navId"], Ref) for r in root)
    equips = await server.call("nav", Grid.from_dict({"navId": Ref("s1")}))
    assert {r["id"].val for r in equips} == {"e1", "e2"}
    points = await server.call("nav", Grid.from_dict({"navId": Ref("e1")}))
    assert {r["id"].val for r in points} == {"t0", "t1", "t2", "sp"}
    assert all(r.get("navId") is None for r in points)


# -- history ------------------------------------------------------------------------------


def _his_grid(point: str, samples: list[tuple[dt.datetime, Any]]) -> Grid:
    return Grid(["ts", "val"], [{"ts": t, "val": v} for t, v in samples], {"id": Ref(point)})


async def test_his_write_then_read_single(server: Server) -> None:
    day = dt.datetime(2024, 3, 1, tzinfo=NY)
    samples = [(day + dt.timedelta(hours=h), Number(60 + h, "°F")) for h in range(30)]
    # out of order, with a duplicate timestamp whose later value wins
    shuffled = samples[10:] + samples[:10] + [(samples[5][0], Number(99))]
    assert not (await server.call("hisWrite", _his_grid("t0", shuffled))).is_error
    grid = await server.call("hisRead", Grid.from_dict({"id": Ref("t0"), "range": "2024-03-01"}))
    assert grid.meta["id"] == Ref("t0") and grid.meta["id"].dis == "Temp 0"
    assert grid.meta["hisStart"] == day
    assert grid.meta["hisEnd"] == day + dt.timedelta(days=1)
    assert [r["ts"] for r in grid] == [t for t, _ in samples[:24]]
    assert grid[5]["val"] == Number(99, "°F")
    assert all(r["ts"].tzinfo == NY for r in grid)


async def test_his_write_of_columns_sorts_deduplicates_and_takes_the_unit(server: Server) -> None:
    # One zone and one unit: the request is read as columns (zinc_his), in any order, with
    # a repeated timestamp whose later value wins; unitless Numbers take the point's unit.
    day = dt.datetime(2024, 3, 5, tzinfo=NY)
    times = [day + dt.timedelta(hours=h) for h in range(6)]
    rows = "".join(f"{encode_val(t)},{v}\n" for t, v in zip(times[::-1], range(6), strict=True))
    rows += f"{encode_val(times[0])},99\n"
    body = f'ver:"3.0" id:@t5\nts,val\n{rows}'.encode()
    assert read_his_write(body) is not None
    resp = await server.client.post(
        f"{server.url}/api/hisWrite", content=body, headers={"Content-Type": ZINC}
    )
    assert resp.status_code == 200 and not decode(resp.content, ZINC).is_error, resp.text
    got = await server.call("hisRead", Grid.from_dict({"id": Ref("t5"), "range": "2024-03-05"}))
    assert [r["ts"] for r in got] == times
    assert [r["val"] for r in got] == [Number(v, "°F") for v in (99, 4, 3, 2, 1, 0)]
    # the same in the point's unit, then a unit the point does not have: an error grid that
    # names the row, as for any request
    body = f'ver:"3.0" id:@t5\nts,val\n{encode_val(times[0])},7°F\n'.encode()
    await server.client.post(
        f"{server.url}/api/hisWrite", content=body, headers={"Content-Type": ZINC}
    )
    got = await server.call("hisRead", Grid.from_dict({"id": Ref("t5"), "range": "2024-03-05"}))
    assert got[0]["val"] == Number(7, "°F")
    body = f'ver:"3.0" id:@t5\nts,val\n{encode_val(times[0])},7kW\n'.encode()
    resp = await server.client.post(
        f"{server.url}/api/hisWrite", content=body, headers={"Content-Type": ZINC}
    )
    error = decode(resp.content, ZINC)
    assert error.is_error and "row 0: unit kW" in error.meta["dis"], error.meta.get("dis")


@pytest.mark.parametrize("mime", [ZINC, JSON4, JSON3])
async def test_his_write_in_every_format_reads_back_the_same(server: Server, mime: str) -> None:
    # Zinc and Hayson go through their column readers, JSON v3 row by row. (Trio cannot carry
    # the grid meta id a hisWrite needs: see the next test.)
    day = dt.datetime(2024, 3, 6, tzinfo=NY)
    samples = [(day + dt.timedelta(minutes=15 * i), Number(i / 4, "°F")) for i in range(40)]
    body = encode(_his_grid("t4", samples), mime)
    if mime == JSON4:
        assert json4_his.read_his_write(body) is not None
    result = await server.call("hisWrite", _his_grid("t4", samples), mime=mime)
    assert not result.is_error, result.meta.get("dis")
    got = await server.call("hisRead", Grid.from_dict({"id": Ref("t4"), "range": "2024-03-06"}))
    assert [(r["ts"], r["val"]) for r in got] == samples


@pytest.mark.parametrize("accept", [TRIO, "text/csv"])
async def test_an_error_reads_as_an_error_in_formats_without_grid_meta(
    server: Server, accept: str
) -> None:
    body = encode(_his_grid("t4", [(dt.datetime(2024, 3, 6, tzinfo=NY), Number(1))]), TRIO)
    resp = await server.client.post(
        f"{server.url}/api/hisWrite",
        content=body,
        headers={"Content-Type": TRIO, "Accept": accept},
    )
    assert resp.status_code == 200
    assert "no id Ref" in resp.text and ("err\n" in resp.text or "err," in resp.text)
    if accept == TRIO:
        (rec,) = decode(resp.content, TRIO).rows
        assert rec["err"] is MARKER


async def test_his_read_ranges(server: Server) -> None:
    base = dt.datetime(2024, 3, 1, tzinfo=NY)
    samples = [(base + dt.timedelta(days=d), Number(d, "°F")) for d in range(10)]
    await server.call("hisWrite", _his_grid("t1", samples))

    async def span(range_text: str) -> list[float]:
        grid = await server.call("hisRead", Grid.from_dict({"id": Ref("t1"), "range": range_text}))
        assert not grid.is_error, grid.meta.get("dis")
        return [r["val"].val for r in grid]

    assert await span("2024-03-02,2024-03-04") == [1, 2, 3]
    assert await span("2024-03-02T00:00:00-05:00 New_York,2024-03-04T00:00:00-05:00 New_York") == [
        1,
        2,
    ]  # end exclusive
    assert await span("2024-03-08T00:00:00-05:00 New_York") == [7, 8, 9]


async def test_his_read_batch(server: Server) -> None:
    t = dt.datetime(2024, 3, 1, tzinfo=NY)
    await server.call("hisWrite", _his_grid("t2", [(t, Number(1, "°F"))]))
    await server.call(
        "hisWrite", _his_grid("t3", [(t, Number(2, "°F")), (t.replace(hour=1), Number(3, "°F"))])
    )
    req = Grid(["id"], [{"id": Ref("t2")}, {"id": Ref("t3")}], {"range": "2024-03-01"})
    grid = await server.call("hisRead", req)
    assert grid.col_names == ("ts", "v0", "v1")
    assert grid.cols[1].meta["id"] == Ref("t2")
    assert [(r.get("v0"), r.get("v1")) for r in grid] == [
        (Number(1, "°F"), Number(2, "°F")),
        (None, Number(3, "°F")),
    ]


async def test_his_write_batch(server: Server) -> None:
    t = dt.datetime(2024, 3, 2, tzinfo=NY)
    grid = Grid(
        [Col("ts"), Col("v0", {"id": Ref("t4")}), Col("v1", {"id": Ref("t5")})],
        [
            {"ts": t, "v0": Number(1), "v1": Number(2, "°F")},
            {"ts": t.replace(hour=2), "v1": Number(3)},
        ],
    )
    assert not (await server.call("hisWrite", grid)).is_error
    got = await server.call("hisRead", Grid.from_dict({"id": Ref("t5"), "range": "2024-03-02"}))
    assert [r["val"] for r in got] == [Number(2, "°F"), Number(3, "°F")]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (_his_grid("nope", [(dt.datetime(2024, 1, 1, tzinfo=NY), Number(1))]), "unknown"),
        (_his_grid("fan", [(dt.datetime(2024, 1, 1, tzinfo=NY), True)]), "not a history point"),
        (_his_grid("t0", [(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), Number(1))]), "UTC"),
        (_his_grid("t0", [(dt.datetime(2024, 1, 1, tzinfo=NY), Number(1, "°C"))]), "unit"),
        (_his_grid("t0", [(dt.datetime(2024, 1, 1, tzinfo=NY), "warm")]), "Str value"),
        (  # the zone is checked on every row, not only the first
            _his_grid(
                "t0",
                [
                    (dt.datetime(2024, 1, 1, tzinfo=NY), Number(1)),
                    (dt.datetime(2024, 1, 2, tzinfo=dt.UTC), Number(2)),
                ],
            ),
            "row 1: ts is in UTC",
        ),
    ],
)
async def test_his_write_errors(server: Server, grid: Grid, message: str) -> None:
    result = await server.call("hisWrite", grid)
    assert result.is_error and message in result.meta["dis"], result.meta.get("dis")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": Ref("t0"), "range": "someday"}, "cannot read"),
        ({"id": Ref("nope"), "range": "today"}, "unknown"),
        ({"id": Ref("s1"), "range": "today"}, "not a history point"),
    ],
)
async def test_his_read_errors(server: Server, row: dict[str, Any], message: str) -> None:
    result = await server.call("hisRead", Grid.from_dict(row))
    assert result.is_error and message in result.meta["dis"], result.meta.get("dis")


# -- pointWrite ---------------------------------------------------------------------------


def _write(level: int | None, val: Any = None, who: str = "tester", **extra: Any) -> Grid:
    row: dict[str, Any] = {"id": Ref("sp"), "who": who, **extra}
    if level is not None:
        row["level"] = Number(level)
        row["val"] = val
    return Grid(["id", "level", "val", "who", *extra], [row])


async def test_point_write_levels_and_relinquish(server: Server) -> None:
    assert not (await server.call("pointWrite", _write(16, Number(70)))).is_error
    assert not (await server.call("pointWrite", _write(8, Number(65, "°F")))).is_error
    array = await server.call("pointWrite", Grid.from_dict({"id": Ref("sp")}))
    assert len(array) == 17
    assert array[7]["val"] == Number(65, "°F") and array[7]["who"] == "tester"
    assert array[15]["val"] == Number(70, "°F")  # a unitless Number takes the point's unit
    assert array[7]["levelDis"].startswith("8")
    (rec,) = (await server.call("read", Grid.from_dict({"filter": "sp"}))).rows
    assert rec["writeVal"] == Number(65, "°F") and rec["writeLevel"] == Number(8)
    await server.call("pointWrite", _write(8, None))  # relinquish level 8
    (rec,) = (await server.call("read", Grid.from_dict({"filter": "sp"}))).rows
    assert rec["writeVal"] == Number(70, "°F") and rec["writeLevel"] == Number(16)


async def test_point_write_timed_override(server: Server) -> None:
    grid = _write(8, Number(72), duration=Number(30, "min"))
    assert not (await server.call("pointWrite", grid)).is_error
    array = await server.call("pointWrite", Grid.from_dict({"id": Ref("sp")}))
    expires = array[7]["expires"]
    assert isinstance(expires, Number) and 1700 < expires.val <= 1800


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (_write(8, "hot"), "Number"),
        (_write(8, Number(5, "kW")), "unit"),
        (_write(18, Number(5)), "level"),
        (_write(5, Number(5), duration=Number(1, "h")), "8"),
        (
            Grid.from_dict({"id": Ref("t0"), "level": Number(8), "val": Number(1), "who": "x"}),
            "writable",
        ),
        (
            Grid.from_dict({"id": Ref("nope"), "level": Number(8), "val": Number(1), "who": "x"}),
            "nope",
        ),
        (_write(8, Number(1), who=""), "who"),
    ],
)
async def test_point_write_errors(server: Server, grid: Grid, message: str) -> None:
    result = await server.call("pointWrite", grid)
    assert result.is_error and message in result.meta["dis"], result.meta.get("dis")


# -- watches ------------------------------------------------------------------------------


async def test_watch_sub_poll_unsub(server: Server) -> None:
    sub = Grid(["id"], [{"id": Ref("t0")}, {"id": Ref("t1")}, {"id": Ref("gone")}])
    sub = sub.with_meta(watchDis="test", lease=Number(1, "min"))
    opened = await server.call("watchSub", sub)
    watch_id = opened.meta["watchId"]
    assert opened.meta["lease"] == Number(60, "s")
    assert [r.get("id") for r in opened] == [Ref("t0"), Ref("t1"), None]
    poll = Grid.empty({"watchId": watch_id})
    assert len(await server.call("watchPoll", poll)) == 0  # nothing changed yet
    await server.storage.update_records([{"id": Ref("t1"), "curVal": Number(1, "°F")}])
    changed = await server.call("watchPoll", poll)
    assert [r["id"] for r in changed] == [Ref("t1")]
    assert len(await server.call("watchPoll", poll.with_meta(refresh=MARKER))) == 2
    unsub = Grid(["id"], [{"id": Ref("t1")}], {"watchId": watch_id})
    assert not (await server.call("watchUnsub", unsub)).is_error
    await server.call("watchUnsub", Grid.empty({"watchId": watch_id, "close": MARKER}))
    assert (await server.call("watchPoll", poll)).is_error  # the client must re-subscribe


async def test_watch_poll_unknown_is_error(server: Server) -> None:
    grid = await server.call("watchPoll", Grid.empty({"watchId": "w-unknown"}))
    assert grid.is_error


# -- actions and close --------------------------------------------------------------------


async def test_invoke_action(server: Server) -> None:
    req = Grid.from_dict({"by": Number(3)}, {"id": Ref("fan"), "action": "bump"})
    assert _one(await server.call("invokeAction", req))["by"] == Number(3)
    bad = Grid.from_dict({}, {"id": Ref("fan"), "action": "explode"})
    result = await server.call("invokeAction", bad)
    assert result.is_error and "explode" in result.meta["dis"]


async def test_close(server: Server) -> None:
    assert not (await server.call("close")).is_error


# -- HTTP rules ---------------------------------------------------------------------------


async def test_get_with_zinc_query_params(server: Server) -> None:
    resp = await server.client.get(f"{server.url}/api/read", params={"filter": "site"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/zinc")
    assert resp.headers["cache-control"] == "no-cache, no-store"
    assert len(decode(resp.content, ZINC)) == 2
    resp = await server.client.get(f"{server.url}/api/read", params={"id": "@t0"})
    assert decode(resp.content, ZINC)[0]["dis"] == "Temp 0"
    resp = await server.client.get(
        f"{server.url}/api/hisRead", params={"id": "@t0", "range": "2024-03-01"}
    )
    assert not decode(resp.content, ZINC).is_error  # a Date read back as the range


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/api/pointWrite", {}, 405),
        ("GET", "/api/hisWrite", {}, 405),
        ("GET", "/api/nosuchop", {}, 404),
        ("PUT", "/api/read", {}, 501),
        ("DELETE", "/api/about", {}, 501),
        ("GET", "/api/about", {"headers": {"Accept": "image/png"}}, 406),
        (
            "POST",
            "/api/read",
            {"content": b"filter\n", "headers": {"Content-Type": "application/xml"}},
            415,
        ),
        ("POST", "/api/read", {"content": b"ver:3\n", "headers": {"Content-Type": ZINC}}, 400),
        ("POST", "/api/read", {"content": b'ver:"3.0"\nfilter\n"site"\n'}, 400),
        ("POST", "/api/read", {"content": b"{nope", "headers": {"Content-Type": JSON4}}, 400),
    ],
)
async def test_http_errors(
    server: Server, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    resp = await server.client.request(method, server.url + path, **kwargs)
    assert resp.status_code == status, resp.text


async def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    app = create_app(storage=InMemoryAdapter(records()), max_body=1000)
    async with serve_app(app) as url, httpx.AsyncClient() as client:
        body = b'ver:"3.0"\nfilter\n"' + b"x" * 2000 + b'"\n'
        resp = await client.post(f"{url}/api/read", content=body, headers={"Content-Type": ZINC})
        assert resp.status_code == 413


@pytest.mark.parametrize("path", ["/api/about/", "/api/demo/about", "/api/demo/about/"])
async def test_project_segment_and_trailing_slash(server: Server, path: str) -> None:
    resp = await server.client.get(server.url + path)
    assert resp.status_code == 200
    assert decode(resp.content, ZINC)[0]["haystackVersion"] == "4.0"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "text/zinc"),
        ("*/*", "text/zinc"),
        ("application/json, */*", "text/zinc"),
        ("application/json", "application/json"),
        ("application/vnd.haystack+json", "application/vnd.haystack+json"),
        ("application/vnd.haystack+json;version=3", "application/vnd.haystack+json;version=3"),
        ("image/png, text/trio", "text/trio"),
        ("text/plain", "text/plain"),
    ],
)
async def test_accept_negotiation(server: Server, accept: str | None, content_type: str) -> None:
    headers = {"Accept": accept} if accept else {}
    resp = await server.client.get(f"{server.url}/api/about", headers=headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith(content_type)


async def test_app_takes_more_routes(tmp_path: Path) -> None:
    app = create_app(storage=InMemoryAdapter(records()))

    @app.route("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async with serve_app(app) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/health")).json() == {"status": "ok"}
        assert (await client.get(f"{url}/api/about")).status_code == 200


# -- restart ------------------------------------------------------------------------------


async def test_priority_arrays_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    first = SQLiteAdapter(path)
    await first.open()
    await first.add_records(records())
    await first.aclose()

    async def serve_and(fn: Callable[[Server], Any]) -> Any:
        app = create_app(storage=SQLiteAdapter(path), tz="New_York")
        async with serve_app(app) as url, httpx.AsyncClient() as client:
            return await fn(Server(url, client, app.extensions["haystack_ops"].storage))

    async def write(srv: Server) -> Grid:
        await srv.call("pointWrite", _write(1, Number(50), who="fire"))
        await srv.call("pointWrite", _write(8, Number(60), who="op", duration=Number(2, "h")))
        await srv.call("pointWrite", _write(16, Number(70), who="schedule"))
        await srv.call("pointWrite", _write(17, Number(72), who="default"))
        await srv.call("pointWrite", _write(1, None, who="fire"))  # relinquished
        return await srv.call("pointWrite", Grid.from_dict({"id": Ref("sp")}))

    async def read(srv: Server) -> tuple[Grid, dict[str, Any]]:
        array = await srv.call("pointWrite", Grid.from_dict({"id": Ref("sp")}))
        (rec,) = (await srv.call("read", Grid.from_dict({"filter": "sp"}))).rows
        return array, rec

    before = await serve_and(write)
    after, rec = await serve_and(read)
    assert [(r.get("val"), r.get("who")) for r in after] == [
        (r.get("val"), r.get("who")) for r in before
    ]
    assert after[7]["val"] == Number(60, "°F") and after[7]["expires"].val > 7000
    assert rec["writeVal"] == Number(60, "°F") and rec["writeLevel"] == Number(8)


# -- many clients at once --------------------------------------------------------------------


async def test_concurrent_clients_lose_no_sample_or_command(server: Server) -> None:
    """History writers, point writers, watches, readers and a driver's curVal updates, all at
    once over real HTTP: every answer is a grid, and every sample and command is kept."""
    day = dt.datetime(2024, 5, 1, tzinfo=NY)
    batches, per_batch = 8, 40

    def his_batch(writer: int, k: int) -> list[tuple[dt.datetime, Any]]:
        # four writers interleave their minutes on one point (the same history blocks)
        first = (k * per_batch) * 4 + writer
        return [
            (day + dt.timedelta(minutes=first + 4 * j), Number(writer * 1000 + k * 50 + j, "°F"))
            for j in range(per_batch)
        ]

    async def his_writer(writer: int) -> None:
        mime = (ZINC, JSON4)[writer % 2]
        for k in range(batches):
            result = await server.call("hisWrite", _his_grid("t0", his_batch(writer, k)), mime)
            assert not result.is_error, result.meta.get("dis")

    async def point_writer(level: int) -> None:
        for k in range(6):
            val = Number(level * 100 + k, "°F")
            result = await server.call("pointWrite", _write(level, val, who=f"w{level}"))
            assert not result.is_error, result.meta.get("dis")

    watched: list[set[str]] = []
    watchers_done = trio.Event()

    async def watcher() -> None:
        ids = Grid(["id"], [{"id": Ref(f"t{i}")} for i in range(6)], {"watchDis": "ui"})
        sub = await server.call("watchSub", ids, JSON4)
        assert not sub.is_error and len(sub) == 6
        seen: set[str] = set()
        for poll in range(400):  # until the driver's changes show (bounded)
            polled = await server.call("watchPoll", Grid.empty({"watchId": sub.meta["watchId"]}))
            assert not polled.is_error, polled.meta.get("dis")
            seen |= {row["id"].val for row in polled}
            if "t3" in seen and poll >= 3:
                break
            await trio.sleep(0.005)
        watched.append(seen)
        if len(watched) == 2:
            watchers_done.set()

    async def reader() -> None:
        for _ in range(10):
            grid = await server.call("read", Grid.from_dict({"filter": "point and temp"}))
            assert len(grid) == 6

    last = [-1]

    async def driver() -> None:  # a driver's polls, for as long as the watches look
        while not watchers_done.is_set() and last[0] < 5000:
            last[0] += 1
            await server.storage.update_records(
                [{"id": Ref("t3"), "curVal": Number(last[0], "°F")}]
            )
            await trio.sleep(0.002)

    async with trio.open_nursery() as nursery:
        for writer in range(4):
            nursery.start_soon(his_writer, writer)
        for level in (8, 9, 10):
            nursery.start_soon(point_writer, level)
        for _ in range(2):
            nursery.start_soon(watcher)
            nursery.start_soon(reader)
        nursery.start_soon(driver)

    expected = sorted(s for w in range(4) for k in range(batches) for s in his_batch(w, k))
    grid = await server.call("hisRead", Grid.from_dict({"id": Ref("t0"), "range": "2024-05-01"}))
    assert [(r["ts"], r["val"]) for r in grid] == expected  # all, in order, none twice
    array = await server.call("pointWrite", Grid.from_dict({"id": Ref("sp")}))
    assert [(r.get("val"), r.get("who")) for r in array][7:10] == [
        (Number(level * 100 + 5, "°F"), f"w{level}") for level in (8, 9, 10)
    ]
    (rec,) = (await server.call("read", Grid.from_dict({"filter": "sp"}))).rows
    assert rec["writeVal"] == Number(805, "°F") and rec["writeLevel"] == Number(8)
    assert all("t3" in seen for seen in watched)  # the driver's changes reached the watches
    (t3,) = (await server.call("read", Grid.from_dict({"filter": "id==@t3"}))).rows
    assert t3["curVal"] == Number(last[0], "°F")
