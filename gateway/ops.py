"""HaystackOps: every standard Haystack op over a StorageAdapter.

Each op is a method taking the request grid (``about``, ``ops``, ``formats`` and ``close`` take
none) and returning the response grid. Subclass to change any op, calling ``super()``::

    class MyOps(HaystackOps):
        async def about(self) -> Grid:
            grid = await super().about()
            return grid.with_rows([{**grid[0], "productName": "My box"}])

        @action("reset")
        async def reset(self, rec: dict, args: dict) -> Grid | None:
            ...  # invokeAction id:@x action:"reset"

        @custom_op("restart", side_effects=True, summary="Restart the service")
        async def restart(self, grid: Grid) -> Grid: ...

The ``ops`` op lists what an instance implements (a subclass may set a standard op's method to
``None`` to switch it off). ``dispatch(name, grid)`` runs an op and turns every failure into an
error grid: ``CallError`` gives its own grid, the library's validation errors give their
message, anything else is logged and answered with ``errTrace``.

The identity of the caller (for ``who`` in pointWrite, ``whoami`` in about) comes from
:func:`request_context`, which the web layer sets per request.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import socket
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Any, ClassVar, Final, TypeVar

from gateway import __version__
from gateway.errors import CallError
from gateway.haystack import defs as hs_defs
from gateway.haystack.codecs import FORMATS
from gateway.haystack.errors import HaystackError
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import MARKER, Number, Ref, Symbol, Uri, Value
from gateway.haystack.tz import UTC, hs_name
from gateway.opshis import HisOps
from gateway.points.durations import DurationError, seconds_of
from gateway.points.priority import PointWriteError
from gateway.storage.base import StorageAdapter, StorageError, UnknownWatchError
from gateway.writes import PointWrites

__all__ = [
    "STANDARD_OPS",
    "HaystackOps",
    "RequestContext",
    "action",
    "custom_op",
    "request_context",
]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, slots=True)
class OpInfo:
    """A Haystack op as the server exposes it."""

    name: str  # wire name, e.g. "hisRead"
    method: str  # Python method name, e.g. "his_read"
    side_effects: bool
    takes_grid: bool
    summary: str


#: The standard ops, in the order the ``ops`` op lists them.
STANDARD_OPS: Final[tuple[OpInfo, ...]] = (
    OpInfo("about", "about", False, False, "Summary information about the server"),
    OpInfo("close", "close", True, False, "Close the session and revoke its bearer token"),
    OpInfo("defs", "defs", False, True, "Definitions of the server's namespace"),
    OpInfo("filetypes", "filetypes", False, True, "File types the server reads and writes"),
    OpInfo("formats", "formats", False, False, "Grid formats (media types) the server supports"),
    OpInfo("hisRead", "his_read", False, True, "Read history samples of points"),
    OpInfo("hisWrite", "his_write", True, True, "Write history samples of points"),
    OpInfo("invokeAction", "invoke_action", True, True, "Run an action on a record"),
    OpInfo("libs", "libs", False, True, "Libraries of the server's namespace"),
    OpInfo("nav", "nav", False, True, "Walk the site, equip and point tree"),
    OpInfo("ops", "ops", False, False, "Operations this server implements"),
    OpInfo("pointWrite", "point_write", True, True, "Read or write a point's priority array"),
    OpInfo("read", "read", False, True, "Read records by filter or by id"),
    OpInfo("watchPoll", "watch_poll", True, True, "Poll a watch for changed records"),
    OpInfo("watchSub", "watch_sub", True, True, "Open a watch or add records to it"),
    OpInfo("watchUnsub", "watch_unsub", True, True, "Remove records from a watch or close it"),
)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is calling: the web layer sets it for each request."""

    user: str | None = None  # user name or certificate CN
    role: str | None = None  # "admin", "operator", "viewer"
    token_hash: str | None = None
    client: str | None = None  # address of the peer


_ANONYMOUS: Final = RequestContext()
_CONTEXT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "hs_gateway_request", default=None
)


@contextmanager
def request_context(ctx: RequestContext) -> Iterator[RequestContext]:
    """Make ``ctx`` the caller of every op run inside the ``with`` block."""
    token = _CONTEXT.set(ctx)
    try:
        yield ctx
    finally:
        _CONTEXT.reset(token)


def action(name: str) -> Callable[[F], F]:
    """Mark a method as the handler of ``invokeAction`` for the action ``name``."""

    def mark(func: F) -> F:
        func.__hs_action__ = name  # type: ignore[attr-defined]
        return func

    return mark


def custom_op(name: str, *, side_effects: bool = True, summary: str = "") -> Callable[[F], F]:
    """Mark a method ``async def m(self, grid) -> Grid`` as an extra op called ``name``."""

    def mark(func: F) -> F:
        func.__hs_op__ = OpInfo(name, func.__name__, side_effects, True, summary)  # type: ignore[attr-defined]
        return func

    return mark


def _utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


_DEFAULT_LEASE: Final = 60.0
_READ_ID_COLS: Final = ("id",)


class HaystackOps(HisOps):
    """Every standard op over a StorageAdapter."""

    _custom_ops: ClassVar[dict[str, OpInfo]] = {}
    _actions: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        custom = dict(cls._custom_ops)
        actions = dict(cls._actions)
        for attr, member in vars(cls).items():
            info = getattr(member, "__hs_op__", None)
            if isinstance(info, OpInfo):
                custom[info.name] = info
            name = getattr(member, "__hs_action__", None)
            if isinstance(name, str):
                actions[name] = attr
        cls._custom_ops = custom
        cls._actions = actions

    def __init__(
        self,
        storage: StorageAdapter,
        *,
        tz: str = "UTC",
        server_name: str | None = None,
        max_lease: float = 3600.0,
        clock: Callable[[], dt.datetime] = _utc_now,
        writes: PointWrites | None = None,
    ) -> None:
        super().__init__(storage, clock)
        self.storage = storage
        self.tz_name = hs_name(_zone(tz))
        self.server_name = server_name or socket.gethostname()
        self.max_lease = max_lease
        self.clock = clock
        self.writes = writes or PointWrites(storage, clock)
        self.boot_time = clock()

    # -- plumbing -------------------------------------------------------------------------

    @property
    def context(self) -> RequestContext:
        """The caller of the op being run."""
        return _CONTEXT.get() or _ANONYMOUS

    def implemented_ops(self) -> list[OpInfo]:
        """The ops this instance serves: standard ops not switched off, then custom ops."""
        ops = [o for o in STANDARD_OPS if getattr(self, o.method, None) is not None]
        return ops + sorted(self._custom_ops.values(), key=lambda o: o.name)

    def find_op(self, name: str) -> OpInfo | None:
        """The op called ``name`` on the wire, if this instance serves it."""
        for info in STANDARD_OPS:
            if info.name == name:
                return info if getattr(self, info.method, None) is not None else None
        return self._custom_ops.get(name)

    async def dispatch(self, info: OpInfo, grid: Grid) -> Grid:
        """Run an op; every failure becomes an error grid."""
        method = getattr(self, info.method)
        try:
            result = await (method(grid) if info.takes_grid else method())
        except CallError as exc:
            return exc.grid
        except (
            HaystackError,
            StorageError,
            PointWriteError,
            DurationError,
        ) as exc:
            return Grid.make_error(str(exc), errType=type(exc).__name__)
        except Exception as exc:
            log.exception("op %s failed", info.name)
            return Grid.make_error(
                f"{info.name} failed: {type(exc).__name__}: {exc}",
                "".join(traceback.format_exception(exc)),
                errType=type(exc).__name__,
            )
        if not isinstance(result, Grid):
            log.error("op %s returned %r instead of a Grid", info.name, type(result))
            return Grid.make_error(f"{info.name} returned no grid")
        return result

    async def start(self) -> None:
        """Prepare for serving: restore priority arrays."""
        await self.writes.load()

    # -- server information ---------------------------------------------------------------

    async def about(self) -> Grid:
        """Server information (one row)."""
        zone = _zone(self.tz_name)
        row: dict[str, Value] = {
            "haystackVersion": "4.0",
            "tz": self.tz_name,
            "serverName": self.server_name,
            "serverTime": self.clock().astimezone(zone),
            "serverBootTime": self.boot_time.astimezone(zone),
            "productName": "hs-gateway",
            "productUri": Uri("https://github.com/hs-gateway/hs-gateway"),
            "productVersion": __version__,
            "vendorName": "hs-gateway developers",
            "vendorUri": Uri("https://github.com/hs-gateway"),
            "moduleName": "hs-gateway",
            "moduleVersion": __version__,
        }
        if self.context.user:
            row["whoami"] = self.context.user
        return Grid.from_dict(row)

    async def ops(self) -> Grid:
        """The ops this server implements (``name``/``summary`` for Haystack 3 clients)."""
        rows = []
        for info in self.implemented_ops():
            row: dict[str, Value] = {
                "def": Symbol("op:" + info.name),
                "name": info.name,
                "summary": info.summary,
            }
            if not info.side_effects:
                row["noSideEffects"] = MARKER
            rows.append(row)
        return Grid(["def", "name", "summary", "noSideEffects"], rows)

    async def formats(self) -> Grid:
        """The media types the server reads (``receive``) and writes (``send``)."""
        rows = []
        for fmt in FORMATS:
            rows.append(
                {
                    "mime": fmt.mime.split(";")[0] if fmt.name == "json4" else fmt.mime,
                    "receive": MARKER if fmt.can_read else None,
                    "send": MARKER if fmt.can_write else None,
                }
            )
        rows.insert(1, {"mime": "text/plain", "receive": MARKER, "send": MARKER})
        return Grid(["mime", "receive", "send"], rows)

    async def defs(self, grid: Grid) -> Grid:
        """Defs of the namespace, optionally filtered."""
        return self._defs_query("defs", grid)

    async def libs(self, grid: Grid) -> Grid:
        """Libs of the namespace, optionally filtered."""
        return self._defs_query("libs", grid)

    async def filetypes(self, grid: Grid) -> Grid:
        """Filetype defs, optionally filtered."""
        return self._defs_query("filetypes", grid)

    def _defs_query(self, kind: str, grid: Grid) -> Grid:
        row = grid.first() or {}
        filter_text = row.get("filter")
        if filter_text is not None and not isinstance(filter_text, str):
            raise CallError("filter must be a Str")
        result: Grid = hs_defs.query(kind, filter_text, _limit(row))
        return result

    async def close(self) -> Grid:
        """End the session; the web layer revokes the bearer token."""
        return Grid.empty()

    # -- records ------------------------------------------------------------------------

    async def read(self, grid: Grid) -> Grid:
        """Records by filter (``filter``, ``limit``) or by id (one row per id)."""
        row = grid.first()
        if row is None:
            raise CallError("read needs a filter or id rows")
        if row.get("filter") is not None:
            filter_text = row["filter"]
            if not isinstance(filter_text, str):
                raise CallError("read filter must be a Str")
            matches = await self.storage.read_by_filter(filter_text, _limit(row))
            return Grid.from_rows(matches, nulls=False)  # a store's records hold no None
        return _rows_by_id(await self.storage.read_by_ids(_ids(grid)))

    async def nav(self, grid: Grid) -> Grid:
        """Children of a nav node (root when ``navId`` is missing or null)."""
        row = grid.first() or {}
        nav_id = row.get("navId", row.get("nav_id"))
        if isinstance(nav_id, str):
            nav_id = Ref(nav_id)
        if nav_id is not None and not isinstance(nav_id, Ref):
            raise CallError("navId must be a Ref or a Str")
        children = await self.storage.nav_children(nav_id)
        return Grid.from_rows(children, nulls=False)

    # -- writes -------------------------------------------------------------------------

    async def point_write(self, grid: Grid) -> Grid:
        """Read a point's priority array (no ``level``), or write one level of it."""
        row = grid.first()
        if row is None or not isinstance(row.get("id"), Ref):
            raise CallError("pointWrite needs a row with an id Ref")
        point_id: Ref = row["id"]
        if row.get("level") is None:
            array = await self.writes.array(point_id)
            return array.to_grid(self.clock())
        who = row.get("who") or self.context.user
        if not who:
            raise CallError("pointWrite needs who: the request names no user and has no who")
        await self.writes.write(point_id, row["level"], row.get("val"), who, row.get("duration"))
        return Grid.empty()

    async def invoke_action(self, grid: Grid) -> Grid:
        """Run the action named by meta ``action`` on the record of meta ``id``."""
        target = grid.meta.get("id")
        name = grid.meta.get("action")
        if not isinstance(target, Ref) or not isinstance(name, str):
            raise CallError("invokeAction needs grid meta id (Ref) and action (Str)")
        (rec,) = await self.storage.read_by_ids([target])
        if rec is None:
            raise CallError(f"invokeAction: unknown record {target}")
        method_name = self._actions.get(name)
        if method_name is None:
            raise CallError(f"unknown action {name!r} on {target}")
        # The action gets its own copy: a stored record is read-only (see storage.base).
        result = await getattr(self, method_name)(dict(rec), dict(grid.first() or {}))
        return result if isinstance(result, Grid) else Grid.empty()

    # -- watches ------------------------------------------------------------------------

    async def watch_sub(self, grid: Grid) -> Grid:
        """Open a watch (meta ``watchDis``) or add ids to one (meta ``watchId``)."""
        meta = grid.meta
        watch_id = meta.get("watchId")
        if watch_id is not None and meta.get("close") is not None:
            # pyhaystack sends its unsubscribe to watchSub
            return await self.watch_unsub(grid)
        if watch_id is not None and not isinstance(watch_id, str):
            raise CallError("watchId must be a Str")
        dis = meta.get("watchDis")
        if watch_id is None and not isinstance(dis, str):
            dis = "watch"
        lease = self._lease(meta.get("lease"))
        ids = _ids(grid) if grid.rows else []
        now = self._monotonic()
        try:
            info = await self.storage.watch_sub(watch_id, dis, ids, lease, now)
        except UnknownWatchError as exc:
            raise CallError(str(exc)) from None
        records = await self.storage.read_by_ids(ids)
        out = _rows_by_id(records)
        return out.with_meta(watchId=info.watch_id, lease=Number(info.lease, "s"))

    async def watch_unsub(self, grid: Grid) -> Grid:
        """Remove ids from a watch, or close it (meta ``close`` or no rows)."""
        watch_id = grid.meta.get("watchId")
        if not isinstance(watch_id, str):
            raise CallError("watchUnsub needs meta watchId (Str)")
        close = grid.meta.get("close") is not None or not grid.rows
        ids = None if close else _ids(grid)
        await self.storage.watch_unsub(watch_id, ids)
        return Grid.empty()

    async def watch_poll(self, grid: Grid) -> Grid:
        """Records of the watch changed since the last poll (every one with ``refresh``)."""
        watch_id = grid.meta.get("watchId")
        if not isinstance(watch_id, str):
            raise CallError("watchPoll needs meta watchId (Str)")
        refresh = grid.meta.get("refresh") is not None
        try:
            records = await self.storage.watch_poll(watch_id, refresh, self._monotonic())
        except UnknownWatchError as exc:
            raise CallError(str(exc)) from None
        if grid.meta.get("curValSub") is not None:
            records = [
                {k: r[k] for k in ("id", "curVal", "curStatus") if r.get(k) is not None}
                for r in records
            ]
        return Grid.from_rows(records, {"watchId": watch_id}, nulls=False)

    def _lease(self, val: Value) -> float:
        if val is None:
            return min(_DEFAULT_LEASE, self.max_lease)
        try:
            seconds = seconds_of(val, "lease")
        except DurationError as exc:
            raise CallError(f"lease: {exc}") from None
        if seconds <= 0:
            raise CallError("lease must be positive")
        return min(seconds, self.max_lease)

    def _monotonic(self) -> float:
        return self.clock().timestamp()


def _zone(name: str) -> dt.tzinfo:
    from gateway.haystack.tz import hs_tz

    return hs_tz(name)


def _limit(row: Mapping[str, Value]) -> int | None:
    limit = row.get("limit")
    if limit is None:
        return None
    if not isinstance(limit, Number) or limit.val != limit.val or limit.val < 0:
        raise CallError("limit must be a positive Number")
    return int(min(limit.val, 2**31))


def _ids(grid: Grid) -> list[Ref]:
    rows = grid.rows
    if rows and set(map(type, rows)) == {dict}:
        refs = list(map(dict.get, rows, repeat("id")))
        if set(map(type, refs)) == {Ref}:
            # every row has an id Ref (checked in C; the loop below names a bad row)
            return refs  # type: ignore[return-value]
    ids = []
    for row in grid.rows:
        ref = row.get("id")
        if not isinstance(ref, Ref):
            raise CallError(f"every row needs an id Ref, got {ref!r}")
        ids.append(ref)
    if not ids:
        raise CallError("no ids given")
    return ids


def _rows_by_id(records: list[dict[str, Value] | None]) -> Grid:
    # Unknown ids give all-null rows; the id column is always there.
    rows = [r if r is not None else {} for r in records]
    grid = Grid.from_rows(rows, nulls=False)
    if not grid.has_col("id"):
        return Grid(_READ_ID_COLS, rows)
    return grid
