"""The role matrix, op by op, for a viewer, an operator and an admin, over real HTTP.

The expected least role of each request is written out here (issue 4's matrix), not computed
from ``gateway.auth.roles``, so a change to the matrix shows up as a failing row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.auth.authenticators import SimpleAuthenticator, StorageAuthenticator
from gateway.auth.roles import Role
from gateway.auth.scram import MIN_ITERATIONS
from gateway.auth.users import create_user
from gateway.haystack.codecs import ZINC
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import MARKER, Number, Ref
from gateway.haystack.tz import UTC
from gateway.ops import HaystackOps, custom_op
from gateway.storage.memory import InMemoryAdapter
from gateway.web.app import create_app
from gateway.web.security import AuthGate
from tests.web_harness import point_records, scram_login, serve_app

PASSWORD = "pa55word"
USERS = {Role.VIEWER: "vera", Role.OPERATOR: "otto", Role.ADMIN: "ada"}


class SiteOps(HaystackOps):
    @custom_op("restart", summary="An op the matrix does not name")
    async def restart(self, grid: Grid) -> Grid:
        return Grid.from_dict({"restarted": MARKER})


@dataclass(frozen=True)
class Call:
    """One request of the table: an op (GET with ``query`` or POST of ``grid``)."""

    name: str
    op: str
    least: Role
    grid: Grid | None = None
    query: dict[str, str] | None = None
    error_grid_expected: bool = False  # allowed, but the op itself answers with an error


def _now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


CALLS = [
    Call("about", "about", Role.VIEWER),
    Call("ops", "ops", Role.VIEWER),
    Call("formats", "formats", Role.VIEWER),
    Call("read", "read", Role.VIEWER, Grid.from_dict({"filter": "point"})),
    Call("read by GET", "read", Role.VIEWER, query={"filter": "point"}),
    Call("nav", "nav", Role.VIEWER, Grid.empty()),
    Call("hisRead", "hisRead", Role.VIEWER, Grid.from_dict({"id": Ref("power"), "range": "today"})),
    Call("defs", "defs", Role.VIEWER, query={}),
    Call("libs", "libs", Role.VIEWER, query={}),
    Call("filetypes", "filetypes", Role.VIEWER, query={}),
    Call(
        "watchSub",
        "watchSub",
        Role.VIEWER,
        Grid.from_rows([{"id": Ref("power")}], {"watchDis": "roles", "lease": Number(60, "s")}),
    ),
    Call("pointWrite read", "pointWrite", Role.VIEWER, Grid.from_dict({"id": Ref("setpoint")})),
    Call(
        "pointWrite write",
        "pointWrite",
        Role.OPERATOR,
        Grid.from_dict({"id": Ref("setpoint"), "level": Number(16), "val": Number(70, "°F")}),
    ),
    Call(
        "pointWrite relinquish",
        "pointWrite",
        Role.OPERATOR,
        Grid.from_dict({"id": Ref("setpoint"), "level": Number(16)}),
    ),
    Call(
        "hisWrite",
        "hisWrite",
        Role.OPERATOR,
        Grid.from_rows([{"ts": _now(), "val": Number(12.5, "kW")}], {"id": Ref("power")}),
    ),
    Call(
        "invokeAction",
        "invokeAction",
        Role.OPERATOR,
        Grid.empty({"id": Ref("setpoint"), "action": "noSuchAction"}),
        error_grid_expected=True,
    ),
    Call("custom op", "restart", Role.ADMIN, Grid.empty()),
]


@dataclass
class Session:
    url: str
    http: httpx.AsyncClient
    token: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"BEARER authToken={self.token}", "Accept": "text/zinc", **extra}

    async def call(self, call: Call) -> httpx.Response:
        url = f"{self.url}/api/{call.op}"
        if call.grid is None:
            return await self.http.get(url, params=call.query, headers=self.headers())
        body = ZINC.encode(call.grid)
        return await self.http.post(
            url, content=body, headers=self.headers(**{"Content-Type": "text/zinc"})
        )

    async def op(self, op: str, grid: Grid) -> Grid:
        r = await self.call(Call(op, op, Role.VIEWER, grid))
        assert r.status_code == 200, r.text
        return ZINC.decode(r.content)


@asynccontextmanager
async def running(role: Role) -> AsyncIterator[Session]:
    storage = InMemoryAdapter(point_records())
    for user_role, name in USERS.items():
        await storage.create_user(create_user(name, PASSWORD, user_role, iterations=MIN_ITERATIONS))
    gate = AuthGate.build(
        StorageAuthenticator(storage),
        user_store=storage,
        storage=storage,
        iterations=MIN_ITERATIONS,
    )
    app = create_app(SiteOps(storage), auth=gate)
    async with serve_app(app) as url, httpx.AsyncClient() as http:
        token = await scram_login(http, url + "/api/about", USERS[role], PASSWORD)
        yield Session(url, http, token)


@pytest.mark.parametrize("role", list(Role), ids=str)
async def test_each_op_for_each_role(role: Role) -> None:
    mismatches = []
    async with running(role) as session:
        for call in CALLS:
            r = await session.call(call)
            allowed = role.includes(call.least)
            grid = ZINC.decode(r.content)
            if allowed:
                ok = r.status_code == 200 and grid.is_error == call.error_grid_expected
            else:
                ok = r.status_code == 403 and grid.is_error and str(role) in grid.meta["dis"]
            if not ok:
                mismatches.append(f"{role} {call.name}: {r.status_code} {grid.meta.get('dis')}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("role", list(Role), ids=str)
async def test_watch_poll_unsub_and_close_are_viewer_ops(role: Role) -> None:
    async with running(role) as session:
        sub = await session.op(
            "watchSub", Grid.from_rows([{"id": Ref("power")}], {"watchDis": "w"})
        )
        watch_id = sub.meta["watchId"]
        poll = await session.op("watchPoll", Grid.empty({"watchId": watch_id, "refresh": MARKER}))
        assert not poll.is_error
        unsub = await session.op("watchUnsub", Grid.empty({"watchId": watch_id, "close": MARKER}))
        assert not unsub.is_error
        closed = await session.op("close", Grid.empty())
        assert not closed.is_error
        r = await session.http.get(f"{session.url}/api/about", headers=session.headers())
        assert r.status_code == 401  # close revoked the token


@pytest.mark.parametrize("role", list(Role), ids=str)
async def test_users_api_is_admin_only(role: Role) -> None:
    async with running(role) as session:
        r = await session.http.get(f"{session.url}/api/users", headers=session.headers())
        if role is Role.ADMIN:
            assert r.status_code == 200
            assert {u["username"] for u in r.json()["users"]} == set(USERS.values())
        else:
            assert r.status_code == 403
            assert r.json() == {"error": f"role {role} may not use the users API", "status": 403}
        create = await session.http.post(
            f"{session.url}/api/users",
            content=json.dumps({"username": "newbie", "password": "x" * 12}),
            headers=session.headers(**{"Content-Type": "application/json"}),
        )
        assert create.status_code == (201 if role is Role.ADMIN else 403)


async def test_without_a_user_store_configuration_decides_the_role() -> None:
    # A SimpleAuthenticator with a per-user role map; an unmapped user cannot exist here.
    storage = InMemoryAdapter(point_records())
    auth = SimpleAuthenticator(
        {"panel": PASSWORD, "boss": PASSWORD},
        role={"panel": Role.VIEWER, "boss": Role.OPERATOR},
        iterations=MIN_ITERATIONS,
    )
    app = create_app(storage=storage, authenticator=auth)
    write = Call(
        "write",
        "pointWrite",
        Role.OPERATOR,
        Grid.from_dict({"id": Ref("setpoint"), "level": Number(16), "val": Number(70, "°F")}),
    )
    async with serve_app(app) as url, httpx.AsyncClient() as http:
        statuses: dict[str, Any] = {}
        for user in ("panel", "boss"):
            token = await scram_login(http, url + "/api/about", user, PASSWORD)
            session = Session(url, http, token)
            statuses[user] = (await session.call(write)).status_code
        # no user store: no users API either ("users" is then just an unknown op)
        r = await http.get(url + "/api/users", headers=session.headers())
        assert r.status_code == 404
    assert statuses == {"panel": 403, "boss": 200}
