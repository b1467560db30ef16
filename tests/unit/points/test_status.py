"""Status vocabulary, roll-up from connector to point, status tags and the stale rule."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.haystack.kinds import REMOVE, Number
from gateway.points.status import (
    ConnStatus,
    CurState,
    CurStatus,
    WriteState,
    WriteStatus,
    conn_tags,
    cur_tags,
    is_stale,
    rollup_cur,
    rollup_write,
    tag_changes,
    write_status_tags,
)

C = CurStatus
W = WriteStatus


def test_vocabulary_is_the_haystack_one() -> None:
    assert [s.value for s in CurStatus] == [
        "ok",
        "stale",
        "fault",
        "down",
        "disabled",
        "unknown",
        "remoteFault",
        "remoteDown",
        "remoteDisabled",
        "remoteUnknown",
    ]
    assert [s.value for s in ConnStatus] == ["ok", "fault", "down", "disabled", "unknown"]
    assert [s.value for s in WriteStatus] == [
        "unbound",
        "ok",
        "down",
        "fault",
        "disabled",
        "unknown",
    ]


@pytest.mark.parametrize(
    ("status", "remote"),
    [
        (C.FAULT, C.REMOTE_FAULT),
        (C.DOWN, C.REMOTE_DOWN),
        (C.DISABLED, C.REMOTE_DISABLED),
        (C.UNKNOWN, C.REMOTE_UNKNOWN),
        (C.REMOTE_FAULT, C.REMOTE_FAULT),
        (C.OK, C.REMOTE_UNKNOWN),
        (C.STALE, C.REMOTE_UNKNOWN),
    ],
)
def test_remote_status_of_a_reported_status(status: CurStatus, remote: CurStatus) -> None:
    assert status.to_remote() is remote
    assert remote.is_remote
    assert status.is_remote == status.value.startswith("remote")


OK_72 = CurState.ok(Number(72, "°F"))
OWN_FAULT = CurState.error(C.FAULT, "illegal data address")
OWN_REMOTE = CurState.error(C.REMOTE_DOWN, "remote reports down")

# (own state, connector, disabled, config fault) -> (status, val, err)
CUR_ROLLUP: list[tuple[CurState, ConnStatus, bool, str | None, tuple[CurStatus, Any, Any]]] = [
    (OK_72, ConnStatus.OK, False, None, (C.OK, Number(72, "°F"), None)),
    (OK_72.stale(), ConnStatus.OK, False, None, (C.STALE, Number(72, "°F"), None)),
    (OWN_FAULT, ConnStatus.OK, False, None, (C.FAULT, None, "illegal data address")),
    (OWN_REMOTE, ConnStatus.OK, False, None, (C.REMOTE_DOWN, None, "remote reports down")),
    (OK_72, ConnStatus.DOWN, False, None, (C.DOWN, None, "connector down: refused")),
    (OWN_FAULT, ConnStatus.DOWN, False, None, (C.DOWN, None, "connector down: refused")),
    (OK_72, ConnStatus.FAULT, False, None, (C.FAULT, None, "connector fault: refused")),
    (OK_72, ConnStatus.DISABLED, False, None, (C.DISABLED, None, "connector disabled: refused")),
    (OK_72, ConnStatus.UNKNOWN, False, None, (C.UNKNOWN, None, "connector unknown: refused")),
    (OK_72, ConnStatus.DOWN, True, None, (C.DISABLED, None, "point is disabled")),
    (OK_72, ConnStatus.OK, True, None, (C.DISABLED, None, "point is disabled")),
    (OK_72, ConnStatus.DOWN, True, "no register 'sat'", (C.FAULT, None, "no register 'sat'")),
    (CurState(), ConnStatus.OK, False, None, (C.UNKNOWN, None, None)),
]


@pytest.mark.parametrize(("own", "conn", "disabled", "fault", "want"), CUR_ROLLUP)
def test_cur_status_roll_up(
    own: CurState,
    conn: ConnStatus,
    disabled: bool,
    fault: str | None,
    want: tuple[CurStatus, Any, Any],
) -> None:
    got = rollup_cur(own, conn, conn_err="refused", disabled=disabled, config_fault=fault)
    assert (got.status, got.val, got.err) == want


def test_roll_up_without_connector_error_text() -> None:
    assert rollup_cur(OK_72, ConnStatus.DOWN).err == "connector down"


# (own, connector, options) -> (status, err)
WRITE_ROLLUP: list[tuple[WriteState, ConnStatus, dict[str, Any], tuple[Any, Any]]] = [
    (WriteState(W.OK), ConnStatus.OK, {}, (W.OK, None)),
    (WriteState(), ConnStatus.OK, {}, (W.UNKNOWN, None)),
    (WriteState(W.FAULT, "bad value"), ConnStatus.OK, {}, (W.FAULT, "bad value")),
    (WriteState(W.OK), ConnStatus.DOWN, {}, (W.DOWN, "connector down")),
    (WriteState(W.OK), ConnStatus.DISABLED, {}, (W.DISABLED, "connector disabled")),
    (WriteState(W.OK), ConnStatus.DOWN, {"bound": False}, (W.UNBOUND, None)),
    (WriteState(W.OK), ConnStatus.OK, {"disabled": True}, (W.DISABLED, "point is disabled")),
    (
        WriteState(W.OK),
        ConnStatus.DOWN,
        {"config_fault": "read-only register"},
        (W.FAULT, "read-only register"),
    ),
]


@pytest.mark.parametrize(("own", "conn", "options", "want"), WRITE_ROLLUP)
def test_write_status_roll_up(
    own: WriteState, conn: ConnStatus, options: dict[str, Any], want: tuple[Any, Any]
) -> None:
    got = rollup_write(own, conn, **options)
    assert (got.status, got.err) == want


@pytest.mark.parametrize(
    ("state", "tags"),
    [
        (OK_72, {"curStatus": "ok", "curVal": Number(72, "°F"), "curErr": REMOVE}),
        (OK_72.stale(), {"curStatus": "stale", "curVal": Number(72, "°F"), "curErr": REMOVE}),
        (CurState(C.OK, None), {"curStatus": "ok", "curVal": REMOVE, "curErr": REMOVE}),
        (OWN_FAULT, {"curStatus": "fault", "curVal": REMOVE, "curErr": "illegal data address"}),
        # a value left in a failed state is never published: curVal is valid only ok/stale
        (
            CurState(C.DOWN, Number(1), "timeout"),
            {"curStatus": "down", "curVal": REMOVE, "curErr": "timeout"},
        ),
        (
            CurState(C.REMOTE_FAULT, None, "x"),
            {"curStatus": "remoteFault", "curVal": REMOVE, "curErr": "x"},
        ),
        (CurState(), {"curStatus": "unknown", "curVal": REMOVE, "curErr": REMOVE}),
    ],
)
def test_cur_tags(state: CurState, tags: dict[str, Any]) -> None:
    got = cur_tags(state)
    assert got == tags
    assert type(got["curStatus"]) is str  # a plain Str, whatever a codec checks


def test_stale_keeps_the_value_and_only_applies_to_ok() -> None:
    assert OK_72.stale() == CurState(C.STALE, Number(72, "°F"))
    assert OWN_FAULT.stale() is OWN_FAULT


@pytest.mark.parametrize(
    ("state", "tags"),
    [
        (WriteState(W.OK), {"writeStatus": "ok", "writeErr": REMOVE}),
        (WriteState(W.UNBOUND), {"writeStatus": "unbound", "writeErr": REMOVE}),
        (WriteState(W.DOWN, "timeout"), {"writeStatus": "down", "writeErr": "timeout"}),
        (WriteState(W.FAULT, "exception 2"), {"writeStatus": "fault", "writeErr": "exception 2"}),
    ],
)
def test_write_status_tags(state: WriteState, tags: dict[str, Any]) -> None:
    assert write_status_tags(state) == tags


@pytest.mark.parametrize(
    ("status", "err", "tags"),
    [
        (ConnStatus.OK, None, {"connStatus": "ok", "connErr": REMOVE}),
        (ConnStatus.OK, "stale text", {"connStatus": "ok", "connErr": REMOVE}),
        (ConnStatus.DOWN, "refused", {"connStatus": "down", "connErr": "refused"}),
    ],
)
def test_conn_tags(status: ConnStatus, err: str | None, tags: dict[str, Any]) -> None:
    assert conn_tags(status, err) == tags


@pytest.mark.parametrize(
    ("rec", "tags", "changes"),
    [
        ({"curStatus": "ok", "curVal": Number(1)}, cur_tags(CurState.ok(Number(1))), {}),
        (
            {"curStatus": "ok", "curVal": Number(1)},
            cur_tags(CurState.ok(Number(2))),
            {"curVal": Number(2)},
        ),
        (
            {"curStatus": "ok", "curVal": Number(1)},
            cur_tags(CurState.error(C.DOWN, "t/o")),
            {"curStatus": "down", "curVal": REMOVE, "curErr": "t/o"},
        ),
        ({"curVal": Number(1)}, {"curVal": True}, {"curVal": True}),  # kind change, 1 == True
        ({}, {"curErr": REMOVE}, {}),
    ],
)
def test_tag_changes_keep_only_real_changes(
    rec: dict[str, Any], tags: dict[str, Any], changes: dict[str, Any]
) -> None:
    assert tag_changes(rec, tags) == changes


@pytest.mark.parametrize(
    ("last_ok", "now", "in_watch", "stale"),
    [
        (None, 1000.0, False, False),  # never read: unknown, not stale
        (100.0, 399.9, False, False),
        (100.0, 400.0, False, True),
        (100.0, 10_000.0, False, True),
        (100.0, 10_000.0, True, False),  # a watch keeps it refreshed
    ],
)
def test_is_stale(last_ok: float | None, now: float, in_watch: bool, stale: bool) -> None:
    assert is_stale(last_ok, now, 300.0, in_watch) is stale
