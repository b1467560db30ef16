"""The history ops, hisRead and hisWrite (a part of HaystackOps kept in its own module).

hisRead: single (a row ``id, range``) or batch (meta ``range``, optional ``tz``, rows of ids).
Ranges are start-inclusive, end-exclusive and taken in the point's time zone; results are in
the point's zone, with meta ``hisStart``/``hisEnd``.

hisWrite: single (meta ``id``, columns ``ts, val``) or batch (columns ``ts, v0..vN`` whose
column meta ``id`` names the point). Samples may come in any order and repeat a timestamp; the
store sorts and keeps the last. Every sample is checked against the point before anything is
stored: the point must have ``his``; timestamps must be in the point's ``tz``; values must match
``kind``; a Number must be unitless (it takes the point's unit) or in exactly the point's unit.
Nothing is ever converted. Null cells are skipped.

A one-point Zinc or Hayson request of the usual form (one zone, one unit) arrives as columns
(:class:`HisInput`, read by ``codecs.zinc_his`` or ``codecs.json4_his``): when its zone and
unit fit the point, the samples go to the store as exact keys and floats (``KeyedSamples``)
without a row object; otherwise the rows are checked one by one as above, so errors read the
same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import ClassVar, Final

from gateway.errors import CallError
from gateway.haystack.codecs import json4_his, zinc_his
from gateway.haystack.grid import Col, Grid
from gateway.haystack.hisinput import HisInput
from gateway.haystack.hisrange import parse_his_range
from gateway.haystack.hisrows import HisRows
from gateway.haystack.kinds import NA, Coord, Number, Ref, Value, kind_name
from gateway.haystack.tz import hs_name, hs_tz, is_known
from gateway.storage.base import HisSample, RecordStore
from gateway.storage.history import KeyedSamples

__all__ = ["HisOps"]

_HIS_KINDS: Final = {"Number": Number, "Bool": bool, "Str": str, "Coord": Coord}


class HisOps:
    """hisRead and hisWrite over a store."""

    #: Readers that take an op's request before the general decoder (by op, then format
    #: name); None from one means "not the usual form": the general decoder reads it.
    REQUEST_READERS: ClassVar[Mapping[str, Mapping[str, Callable[[bytes], Grid | None]]]] = {
        "hisWrite": {"zinc": zinc_his.read_his_write, "json4": json4_his.read_his_write},
    }

    def request_reader(self, op: str, fmt: str) -> Callable[[bytes], Grid | None] | None:
        """The reader of ``op``'s requests in format ``fmt`` (``Format.name``), if any."""
        return self.REQUEST_READERS.get(op, {}).get(fmt)

    def __init__(self, storage: RecordStore, clock: Callable[[], dt.datetime]) -> None:
        self._his_store = storage
        self._his_clock = clock

    async def his_read(self, grid: Grid) -> Grid:
        """History of one point (row ``id, range``) or several (meta ``range``, id rows)."""
        if grid.meta.get("range") is not None:
            return await self._his_read_batch(grid)
        row = grid.first()
        if row is None:
            raise CallError("hisRead needs a row with id and range")
        point_id = row.get("id")
        if not isinstance(point_id, Ref):
            raise CallError("hisRead needs an id Ref")
        rec = await self._his_point(point_id)
        zone = _point_zone(rec)
        start, end = parse_his_range(row.get("range"), zone, self._his_clock())
        # Columns, not objects: the codecs write 100,000 samples straight from them.
        columns = await self._his_store.his_read_columns(point_id, start, end)
        meta = {"id": _ref_with_dis(point_id, rec), "hisStart": start, "hisEnd": end}
        return Grid(_HIS_COLS, HisRows(columns, zone), meta)

    async def _his_read_batch(self, grid: Grid) -> Grid:
        ids = [row.get("id") for row in grid.rows]
        if not ids or not all(isinstance(i, Ref) for i in ids):
            raise CallError("batch hisRead needs one id Ref per row")
        refs: list[Ref] = ids  # type: ignore[assignment]
        recs = [await self._his_point(i) for i in refs]
        tz_name = grid.meta.get("tz")
        zone: dt.tzinfo
        if tz_name is not None:
            if not isinstance(tz_name, str) or not is_known(tz_name):
                raise CallError(f"unknown tz {tz_name!r}")
            zone = hs_tz(tz_name)
        else:
            zones = {rec.get("tz") for rec in recs}
            if len(zones) != 1:
                raise CallError("batch hisRead of points in different time zones needs meta tz")
            zone = _point_zone(recs[0])
        start, end = parse_his_range(grid.meta["range"], zone, self._his_clock())
        by_ts: dict[dt.datetime, dict[str, Value]] = {}
        cols = [Col("ts")]
        for index, (point_id, rec) in enumerate(zip(refs, recs, strict=True)):
            name = f"v{index}"
            cols.append(Col(name, {"id": _ref_with_dis(point_id, rec)}))
            for stored_ts, val in await self._his_store.his_read(point_id, start, end):
                ts = _in_zone(stored_ts, zone)
                row = by_ts.get(ts)
                if row is None:
                    row = by_ts[ts] = {"ts": ts}
                row[name] = val
        rows = [by_ts[ts] for ts in sorted(by_ts)]
        return Grid(cols, rows, {"hisStart": start, "hisEnd": end})

    async def his_write(self, grid: Grid) -> Grid:
        """Store samples of one point (meta ``id``) or several (column meta ``id``)."""
        if not grid.has_col("ts"):
            raise CallError("hisWrite needs a ts column")
        batches: list[tuple[Ref, list[HisSample]]] = []
        single = grid.meta.get("id")
        if single is not None:
            if not isinstance(single, Ref) or not grid.has_col("val"):
                raise CallError("hisWrite of one point needs meta id (Ref) and a val column")
            if type(grid.rows) is HisInput:
                keyed = await self._his_input_samples(single, grid.rows)
                if keyed is not None:
                    await self._his_store.his_write(single, keyed)
                    return Grid.empty()
            batches.append((single, await self._his_samples(single, grid, "val")))
        else:
            for col in grid.cols:
                if col.name == "ts":
                    continue
                point_id = col.meta.get("id")
                if not isinstance(point_id, Ref):
                    raise CallError(f"hisWrite column {col.name} has no id Ref in its meta")
                batches.append((point_id, await self._his_samples(point_id, grid, col.name)))
            if not batches:
                raise CallError("hisWrite needs meta id or value columns with an id")
        # Everything was checked; only now store.
        for point_id, samples in batches:
            if samples:
                await self._his_store.his_write(point_id, samples)
        return Grid.empty()

    async def _his_input_samples(self, point_id: Ref, rows: HisInput) -> KeyedSamples | None:
        """The samples of a request read as columns, when they fit the point as they are:
        a Number point in their zone and unit (or unitless samples: they take its unit).
        None otherwise: the row by row check names the first row that does not fit."""
        rec = await self._his_point(point_id)
        unit = rec.get("unit") or None
        if rec.get("kind") != "Number" or hs_name(rows.tz) != rec.get("tz"):
            return None
        if rows.unit is not None and rows.unit != unit:
            return None
        return KeyedSamples(rows.keys, rows.nums, unit if isinstance(unit, str) else None, rows.tz)

    async def _his_samples(self, point_id: Ref, grid: Grid, col: str) -> list[HisSample]:
        rec = await self._his_point(point_id)
        tz_name = rec.get("tz")
        kind = rec.get("kind")
        unit = rec.get("unit") or None
        expected = _HIS_KINDS.get(kind) if isinstance(kind, str) else None
        if expected is None:
            raise CallError(f"{point_id} has kind {kind!r}; history needs Number, Bool, Str")
        samples: list[HisSample] = []
        append = samples.append
        zone_ok: dt.tzinfo | None = None  # the last zone found to be the point's
        for index, row in enumerate(grid.rows):
            val = row.get(col)
            if val is None:
                continue
            ts = row.get("ts")
            if not isinstance(ts, dt.datetime):
                raise CallError(f"{point_id} row {index}: ts must be a DateTime, got {ts!r}")
            zone = ts.tzinfo
            if zone is not zone_ok:  # a batch has one zone object: name it once
                if hs_name(zone) != tz_name:
                    raise CallError(
                        f"{point_id} row {index}: ts is in {hs_name(zone)},"
                        f" the point is in {tz_name}"
                    )
                zone_ok = zone
            cls = val.__class__
            if cls is not expected and val is not NA:
                raise CallError(
                    f"{point_id} row {index}: {kind_name(val)} value for a {kind} point"
                )
            if cls is Number and val[1] != unit:
                if val[1] is not None:
                    raise CallError(
                        f"{point_id} row {index}: unit {val[1]} does not match the point's"
                        f" unit {unit}"
                    )
                val = Number(val[0], unit)
            append((ts, val))
        return samples

    async def _his_point(self, point_id: Ref) -> Mapping[str, Value]:
        (rec,) = await self._his_store.read_by_ids([point_id])
        if rec is None:
            raise CallError(f"unknown point {point_id}")
        if rec.get("his") is None:
            raise CallError(f"{point_id} is not a history point (no his tag)")
        tz_name = rec.get("tz")
        if not isinstance(tz_name, str) or not is_known(tz_name):
            raise CallError(f"{point_id} has no valid tz tag ({tz_name!r})")
        return rec


_HIS_COLS: Final = (Col("ts"), Col("val"))


def _point_zone(rec: Mapping[str, Value]) -> dt.tzinfo:
    return hs_tz(rec["tz"])


def _in_zone(ts: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    return ts if ts.tzinfo is zone else ts.astimezone(zone)


def _ref_with_dis(point_id: Ref, rec: Mapping[str, Value]) -> Ref:
    dis = rec.get("dis")
    return Ref(point_id.val, dis) if isinstance(dis, str) else point_id
