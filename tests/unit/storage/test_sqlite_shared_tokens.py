"""Bearer tokens in a shared SQLite file work across worker processes (exclusive=False)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio

from gateway.auth.roles import Role
from gateway.auth.tokens import BearerTokens, TokenPolicy
from gateway.storage.sqlite import SQLiteAdapter

WORKER = """
import sys, time, trio
from gateway.auth.roles import Role
from gateway.auth.tokens import BearerTokens, TokenPolicy
from gateway.storage.sqlite import SQLiteAdapter

async def main(path, action, token):
    store = SQLiteAdapter(path, exclusive=False)
    await store.open()
    try:
        tokens = BearerTokens(store, TokenPolicy())
        if action == "issue":
            issued, _ = await tokens.issue("ops", Role.OPERATOR, now=time.time())
            print(issued)
        else:
            print("valid" if await tokens.check(token, now=time.time()) else "refused")
    finally:
        await store.aclose()

trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
"""


async def _worker(path: Path, *args: str) -> str:
    done = await trio.run_process(
        [sys.executable, "-c", WORKER, str(path), *args], capture_stdout=True
    )
    return done.stdout.decode().strip()


async def test_a_token_issued_by_one_process_is_honoured_and_revoked_in_all(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    here = SQLiteAdapter(path, exclusive=False)
    await here.open()
    try:
        token = await _worker(path, "issue")  # another process logs a user in
        tokens = BearerTokens(here, TokenPolicy())
        record = await tokens.check(token, now=time.time())
        assert record is not None and record.username == "ops" and record.role is Role.OPERATOR
        assert await here.count_tokens() == 1
        assert await _worker(path, "check", token) == "valid"
        assert await tokens.revoke(record.token_hash)  # close in this process...
        assert await _worker(path, "check", token) == "refused"  # ...is seen by the others
        second = await _worker(path, "issue")
        assert await here.revoke_user_tokens("ops") == 1  # a password change elsewhere
        assert await tokens.check(second, now=time.time()) is None
    finally:
        await here.aclose()


async def test_a_renewal_does_not_bring_back_a_token_another_process_revoked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    here = SQLiteAdapter(path, exclusive=False)
    other = SQLiteAdapter(path, exclusive=False)
    await here.open()
    await other.open()
    try:
        tokens = BearerTokens(here, TokenPolicy())
        issued, record = await tokens.issue("ops", Role.OPERATOR, now=time.time())
        assert await here.get_token(record.token_hash) is not None  # read here...
        assert await other.revoke_token(record.token_hash)  # ...revoked there...
        await here.renew_token(record.token_hash, time.time() + 3600)  # ...renewed here
        assert await other.get_token(record.token_hash) is None
        assert await here.get_token(record.token_hash) is None
        assert await tokens.check(issued, now=time.time()) is None
        # a token nobody revoked is renewed in the file, for every process
        _, kept = await tokens.issue("ops", Role.OPERATOR, now=time.time())
        await here.renew_token(kept.token_hash, kept.expires + 60)
        again = await other.get_token(kept.token_hash)
        assert again is not None and again.expires == kept.expires + 60
    finally:
        await here.aclose()
        await other.aclose()
