"""phable, a real third-party Haystack client, against the gateway over HTTPS.

phable is synchronous (urllib under the hood), so each client call runs in a worker thread
(``trio.to_thread.run_sync``) while the real Hypercorn serves the app on 127.0.0.1 with a
server certificate from the project's PKI. phable logs in with SCRAM (HELLO on ``/about``,
then ``BEARER authToken=``) and reads, hisReads and pointWrites.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.error import HTTPError

import phable
import pytest
import trio

from gateway.auth.authenticators import StorageAuthenticator
from gateway.auth.roles import Role
from gateway.auth.scram import MIN_ITERATIONS
from gateway.auth.users import create_user
from gateway.haystack.kinds import Number, Ref
from gateway.haystack.tz import UTC
from gateway.storage.memory import InMemoryAdapter
from gateway.web.app import create_app
from gateway.web.tls import TLSConfig, serve
from tests.web_harness import SitePki, make_site_pki, point_records, serve_app

T = TypeVar("T")
START = dt.datetime(2024, 3, 1, tzinfo=UTC)
SAMPLES = [(START + dt.timedelta(minutes=15 * i), Number(10.0 + i, "kW")) for i in range(8)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    return make_site_pki(tmp_path_factory.mktemp("phable"))


@dataclass
class Site:
    uri: str
    storage: InMemoryAdapter
    context: Any

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(partial(fn, *args))

    def open(self, username: str, password: str, content_type: str = "json") -> Any:
        return phable.HaystackClient.open(
            self.uri, username, password, content_type=content_type, ssl_context=self.context
        )


@asynccontextmanager
async def running(pki: SitePki, *, client_cert: bool = False) -> AsyncIterator[Site]:
    storage = InMemoryAdapter(point_records())
    for name, role in (("ops", Role.OPERATOR), ("guest", Role.VIEWER)):
        await storage.create_user(create_user(name, "phable-pw", role, iterations=MIN_ITERATIONS))
    await storage.his_write(Ref("power"), SAMPLES)
    app = create_app(
        storage=storage,
        authenticator=StorageAuthenticator(storage),
        user_store=storage,
        auth_options={"iterations": MIN_ITERATIONS},
    )
    tls = TLSConfig(pki.server_pem, pki.server_key, pki.ca_pem, require_client_cert=client_cert)
    context = pki.client_context(pki.client("phable-box") if client_cert else None)
    async with serve_app(app, serve=partial(serve, tls=tls)) as url:
        assert url.startswith("https://")
        yield Site(url + "/api/demo", storage, context)


@pytest.mark.parametrize("content_type", ["json", "zinc"])
async def test_phable_logs_in_reads_his_reads_and_writes(pki: SitePki, content_type: str) -> None:
    async with running(pki) as site:
        client = await site.run(site.open, "ops", "phable-pw", content_type)
        about = await site.run(client.about)
        assert about["productName"] == "hs-gateway"
        assert about["whoami"] == "ops"

        point = await site.run(client.read, "point and his")
        assert point["id"].val == "power"
        assert point["unit"] == "kW"
        by_id = await site.run(client.read_by_id, phable.Ref("setpoint"))
        assert by_id["dis"] == "Zone setpoint"

        span = phable.DateTimeRange(START, START + dt.timedelta(hours=1))
        his = await site.run(client.his_read_by_id, phable.Ref("power"), span)
        values = [row["val"].val for row in his.rows]
        assert values == [10.0, 11.0, 12.0, 13.0]  # end-exclusive: four quarter hours
        assert [row["ts"] for row in his.rows] == [ts for ts, _ in SAMPLES[:4]]

        result = await site.run(
            client.point_write, phable.Ref("setpoint"), 8, phable.Number(71.5, "°F")
        )
        assert "err" not in result.meta
        array = await site.run(client.point_write_array, phable.Ref("setpoint"))
        level8 = next(row for row in array.rows if row["level"].val == 8)
        assert level8["val"] == phable.Number(71.5, "°F")
        assert level8["who"] == "ops"  # no who given: the logged-in user
        written = await site.storage.load_priority_arrays()
        assert Ref("setpoint") in written

        await site.run(client.close)
        with pytest.raises(HTTPError) as closed:
            await site.run(client.about)
        closed.value.close()
        assert closed.value.code == 401


async def test_phable_reads_a_priority_array_in_json(pki: SitePki) -> None:
    # The array's empty levels are null cells, which the JSON writer leaves out of the rows
    # (phable 0.1.29 cannot read a JSON null).
    async with running(pki) as site:
        client = await site.run(site.open, "guest", "phable-pw", "json")
        array = await site.run(client.point_write_array, phable.Ref("setpoint"))
    assert len(array.rows) == 17
    assert [row["level"].val for row in array.rows] == list(range(1, 18))


async def test_phable_as_a_viewer_is_refused_writes(pki: SitePki) -> None:
    async with running(pki) as site:
        client = await site.run(site.open, "guest", "phable-pw", "zinc")
        array = await site.run(client.point_write_array, phable.Ref("setpoint"))
        assert len(array.rows) == 17
        with pytest.raises(HTTPError) as refused:
            await site.run(client.point_write, phable.Ref("setpoint"), 8, phable.Number(60))
        refused.value.close()  # phable leaves the error response open
        assert refused.value.code == 403


async def test_phable_wrong_password_is_an_auth_error(pki: SitePki) -> None:
    async with running(pki) as site:
        for username in ("ops", "nobody"):
            with pytest.raises(phable.AuthError) as failed:
                await site.run(site.open, username, "wrong")
            # phable raises AuthError from the 403 it got, and leaves that response open
            response = failed.value.__context__
            assert isinstance(response, HTTPError)
            assert response.code == 403
            response.close()


async def test_phable_over_mutual_tls(pki: SitePki) -> None:
    # The device presents a client certificate and still logs in with SCRAM as a user.
    async with running(pki, client_cert=True) as site:
        client = await site.run(site.open, "ops", "phable-pw")
        assert (await site.run(client.about))["whoami"] == "ops"
