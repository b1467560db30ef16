"""Authentication cost: SCRAM logins per second, and what a bearer check adds to a request.

Run: ``.venv/bin/python tests/perf/bench_auth.py [--quick]``. Prints figures, asserts nothing.
Everything runs over real HTTP (Hypercorn on 127.0.0.1, httpx under trio) in one process, so
client and server share the CPU.

- logins: the full Haystack exchange (HELLO, client-first, client-final: three requests),
  with users created at the default PBKDF2 iteration count (100,000) and at the floor (4,096).
  "end-to-end" is a client that derives its salted password on every login, as real clients
  do; PBKDF2 then dominates, on the client's side. "server-bound" is eight concurrent clients
  that cache the salted password, so the figure is what the server itself sustains (a SCRAM
  server never runs PBKDF2 for a login: it keeps StoredKey and ServerKey).
- bearer: the same GET (``read?filter=point``) against an app without authentication and one
  with it (``BEARER authToken=``), in alternating batches over keep-alive connections; the
  difference of the medians is the added latency. The in-process figure times
  ``AuthService.authenticate`` alone for a bearer header (memory and SQLite token stores).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import logging
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.web_harness

from gateway.auth.authenticators import StorageAuthenticator
from gateway.auth.roles import Role
from gateway.auth.scram import DEFAULT_ITERATIONS, MIN_ITERATIONS
from gateway.auth.users import create_user
from gateway.storage.memory import InMemoryAdapter
from gateway.storage.sqlite import SQLiteAdapter
from gateway.web.app import create_app
from gateway.web.security import AuthGate
from tests.web_harness import point_records, serve_app

PASSWORD = "bench-password"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _params(value: str) -> dict[str, str]:
    rest = value.split(" ", 1)[1] if " " in value.split("=", 1)[0] else value
    return dict(p.strip().split("=", 1) for p in rest.split(","))


class BenchClient:
    """A minimal RFC 5802 client; ``cache`` keeps salted passwords across logins."""

    def __init__(self, http: httpx.AsyncClient, url: str, username: str, *, cache: bool) -> None:
        self.http, self.url, self.username = http, url, username
        self.cache: dict[tuple[bytes, int], bytes] | None = {} if cache else None

    def _salted(self, salt: bytes, iterations: int) -> bytes:
        if self.cache is not None and (salt, iterations) in self.cache:
            return self.cache[salt, iterations]
        salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, iterations)
        if self.cache is not None:
            self.cache[salt, iterations] = salted
        return salted

    async def _get(self, authorization: str) -> httpx.Response:
        return await self.http.get(self.url, headers={"Authorization": authorization})

    async def login(self) -> str:
        r = await self._get(f"HELLO username={_b64(self.username.encode())}")
        token = _params(r.headers["WWW-Authenticate"])["handshakeToken"]
        cnonce = secrets.token_hex(12)
        bare = f"n={self.username},r={cnonce}"
        r = await self._get(f"SCRAM data={_b64(('n,,' + bare).encode())}, handshakeToken={token}")
        params = _params(r.headers["WWW-Authenticate"])
        server_first = _unb64(params["data"]).decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        salted = self._salted(base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        message = f"{bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        r = await self._get(
            f"SCRAM data={_b64(final.encode())}, handshakeToken={params['handshakeToken']}"
        )
        if r.status_code != 200:
            raise RuntimeError(f"login failed: {r.status_code} {r.text}")
        return _params(r.headers["Authentication-Info"])["authToken"]


def _auth_app(iterations: int) -> tuple[Any, InMemoryAdapter]:
    storage = InMemoryAdapter(point_records())
    gate = AuthGate.build(
        StorageAuthenticator(storage), user_store=storage, storage=storage, iterations=iterations
    )
    return create_app(storage=storage, auth=gate), storage


async def bench_logins(iterations: int, end_to_end: int, concurrent: int) -> None:
    app, storage = _auth_app(iterations)
    await storage.create_user(create_user("bench", PASSWORD, Role.VIEWER, iterations=iterations))
    async with serve_app(app) as url, httpx.AsyncClient() as http:
        about = url + "/api/about"
        client = BenchClient(http, about, "bench", cache=False)
        start = time.perf_counter()
        for _ in range(end_to_end):
            await client.login()
        elapsed = time.perf_counter() - start
        print(
            f"  end-to-end, client runs PBKDF2 each login: {end_to_end / elapsed:7.1f} logins/s"
            f"  ({elapsed / end_to_end * 1000:6.1f} ms per login, n={end_to_end})"
        )

        workers, per_worker = 8, max(1, concurrent // 8)
        limits = httpx.Limits(max_connections=workers)
        async with httpx.AsyncClient(limits=limits) as pool:
            clients = [BenchClient(pool, about, "bench", cache=True) for _ in range(workers)]
            for c in clients:
                await c.login()  # warm each cache

            async def worker(c: BenchClient) -> None:
                for _ in range(per_worker):
                    await c.login()

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for c in clients:
                    nursery.start_soon(worker, c)
            elapsed = time.perf_counter() - start
        total = workers * per_worker
        print(
            f"  server-bound, {workers} clients caching:     {total / elapsed:7.1f} logins/s"
            f"  (n={total}, 3 requests each)"
        )


async def _timed_request(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    r = await http.get(url, headers=headers)
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise RuntimeError(f"{url}: {r.status_code}")
    return elapsed


async def bench_bearer_http(requests: int) -> None:
    plain_app = create_app(storage=InMemoryAdapter(point_records()))
    auth_app, storage = _auth_app(MIN_ITERATIONS)
    await storage.create_user(
        create_user("bench", PASSWORD, Role.VIEWER, iterations=MIN_ITERATIONS)
    )
    async with (
        serve_app(plain_app) as plain_url,
        serve_app(auth_app) as auth_url,
        httpx.AsyncClient() as plain_http,
        httpx.AsyncClient() as auth_http,
    ):
        token = await BenchClient(auth_http, auth_url + "/api/about", "bench", cache=True).login()
        path = "/api/read?filter=point"
        variants: list[tuple[str, httpx.AsyncClient, str, dict[str, str]]] = [
            ("no auth", plain_http, plain_url + path, {}),
            ("bearer", auth_http, auth_url + path, {"Authorization": f"BEARER authToken={token}"}),
        ]
        samples: dict[str, list[float]] = {name: [] for name, *_ in variants}
        for _name, http, url, headers in variants:  # warm up both
            for _ in range(50):
                await _timed_request(http, url, headers)
        batch = 100
        for _ in range(max(1, requests // batch)):
            for name, http, url, headers in variants:
                for _ in range(batch):
                    samples[name].append(await _timed_request(http, url, headers))
        medians = {name: statistics.median(s) * 1000 for name, s in samples.items()}
        for name, s in samples.items():
            ms = sorted(x * 1000 for x in s)
            print(
                f"  {name:8s} n={len(ms)}  median {medians[name]:.3f} ms  "
                f"p90 {ms[int(len(ms) * 0.9)]:.3f} ms"
            )
        print(
            f"  added by the bearer check (difference of medians): "
            f"{medians['bearer'] - medians['no auth']:+.3f} ms"
        )


async def _time_calls(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return samples


async def bench_bearer_in_process(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteAdapter(Path(tmp) / "bench.db")
        await sqlite.open()
        try:
            for name, storage in (("memory", InMemoryAdapter()), ("sqlite", sqlite)):
                user = create_user("bench", PASSWORD, Role.VIEWER, iterations=MIN_ITERATIONS)
                await storage.create_user(user)
                gate = AuthGate.build(
                    StorageAuthenticator(storage), user_store=storage, storage=storage
                )
                token, _ = await gate.service.tokens.issue("bench", Role.VIEWER, now=time.time())
                header = f"BEARER authToken={token}"

                async def check(gate: AuthGate = gate, header: str = header) -> None:
                    reply = await gate.service.authenticate(header, now=time.time())
                    assert reply.proceed

                await _time_calls(check, 500)
                us = sorted(s * 1e6 for s in await _time_calls(check, calls))
                print(
                    f"  {name:6s} token store: median {statistics.median(us):6.1f} us  "
                    f"p99 {us[int(len(us) * 0.99)]:6.1f} us  (n={calls})"
                )
        finally:
            await sqlite.aclose()


async def main(quick: bool) -> None:
    # the bench apps have no admin; ensure_superuser's advice to create one is noise here
    logging.getLogger("gateway.web.security").setLevel(logging.ERROR)
    scale = 0.2 if quick else 1.0
    print(f"SCRAM logins, users at the default {DEFAULT_ITERATIONS:,} PBKDF2 iterations:")
    await bench_logins(DEFAULT_ITERATIONS, max(3, int(20 * scale)), int(800 * scale))
    print(f"SCRAM logins, users at the minimum {MIN_ITERATIONS:,} PBKDF2 iterations:")
    await bench_logins(MIN_ITERATIONS, max(10, int(100 * scale)), int(800 * scale))
    print("Bearer check over HTTP (GET read?filter=point, keep-alive, sequential):")
    await bench_bearer_http(int(5000 * scale))
    print("Bearer check in process (AuthService.authenticate):")
    await bench_bearer_in_process(int(20000 * scale))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the samples")
    trio.run(main, parser.parse_args().quick)
