"""The in-memory record table both storage adapters read from.

The point database of a gateway is small (it comes from configuration: thousands of records, not
millions), so both adapters keep every record in memory and never touch the disk to read one;
the SQLite adapter only writes through. This module holds that table:

- **records** by *slot* (a small integer), with ``id -> slot`` for lookups. A removed record's
  slot is reused, so the slot numbers stay dense.
- **a tag index**: for every tag name, a bitmap (a Python ``int``, bit ``slot`` set when the
  record has the tag). A filter read ANDs the bitmaps of the tags the filter requires
  (``Filter.required_tags()``: for ``point and temp and sensor`` exactly the records carrying all
  three) and runs the compiled predicate on those candidates only; it scans everything only
  when the filter requires no tag (``not x``, ``a or b``). A bitmap costs one bit per record and
  tag (about 1.2 KiB per tag for 10,000 records) where a set of ids would cost ~40 bytes per
  entry, and an AND of several tags is cheaper than picking the smallest of their sets.
- **a change counter**: a global version, and for each slot the version of its last change
  (any tag, runtime tags included, and history writes through :meth:`RecordIndex.touch`).
  Watches compare against it.

Memory (a Raspberry Pi is a target): tag names are interned, and Ref values and short strings
are shared between records (``siteRef``, ``equipRef``, ``kind``, ``unit``, ``tz`` repeat on
thousands of records).

Reads hand out the table's own dicts, never copies (a read of 1,500 records spent a third of
its time copying them). That is safe because a stored dict is never changed in place: an update
installs a new dict (``prepare_update`` copies the record it changes) and a removal drops it, so
a dict a reader holds stays a consistent snapshot of the record as it was read. The one rule for
every caller: **do not mutate a record you got from a read**; copy it first (``dict(rec)``).

The table itself has no notion of persistence: it reports which changes touch tags outside
``RUNTIME_TAGS`` so that a persistent adapter knows when it must write.
"""

from __future__ import annotations

import datetime as dt
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import Final

from gateway.haystack.filter import And, Filter, Has, parse_filter
from gateway.haystack.grid import Grid
from gateway.haystack.kinds import (
    REMOVE,
    Coord,
    Marker,
    NAType,
    Number,
    Ref,
    Symbol,
    Uri,
    Value,
    XStr,
)
from gateway.storage.base import RUNTIME_TAGS, DuplicateIdError, StorageError, UnknownIdError

__all__ = ["IndexStatistics", "RecordChange", "RecordIndex", "check_value", "same_value"]

# For every byte value, the positions of its set bits: turns a bitmap into slots quickly.
_BIT_POSITIONS: Final = tuple(tuple(j for j in range(8) if b >> j & 1) for b in range(256))
# Strings up to this length are shared between records (kind, unit, tz, enum values...).
_SHARED_STR_MAX: Final = 24
_intern = sys.intern
_ref_key: Final = itemgetter(0)  # a Ref's id


def same_value(a: Value, b: Value) -> bool:
    """Whether two tag values are the same (a Ref's display string counts; 1 is not True)."""
    if a is b:
        return True
    if a.__class__ is not b.__class__:
        return False
    if a.__class__ is Ref:
        return bool(a[0] == b[0] and a[1] == b[1])
    return bool(a == b)


def _slots_of(mask: int) -> list[int]:
    """The positions of the set bits of ``mask``, ascending."""
    data = mask.to_bytes((mask.bit_length() + 7) >> 3, "little")
    out: list[int] = []
    append = out.append
    positions = _BIT_POSITIONS
    for i, byte in enumerate(data):
        if byte:
            base = i << 3
            for j in positions[byte]:
                append(base + j)
    return out


def _mask_of(slots: Sequence[int]) -> int:
    """A bitmap with the given bits set; linear in the highest slot for big batches."""
    if len(slots) < 32:
        mask = 0
        for s in slots:
            mask |= 1 << s
        return mask
    buf = bytearray((max(slots) >> 3) + 1)
    for s in slots:
        buf[s >> 3] |= 1 << (s & 7)
    return int.from_bytes(buf, "little")


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> Filter:
    # Clients repeat the same few filters (``point and his``); parsing once is enough.
    return parse_filter(text)


def _present(recs: Iterable[dict[str, Value] | None]) -> Iterator[dict[str, Value]]:
    """The records that are not None (a free slot); in C."""
    return filter(None, recs)


@lru_cache(maxsize=256)
def _only_tags(flt: Filter) -> bool:
    """Whether ``flt`` only asks for tags: ``a``, or ``a and b and ...`` of plain tag names."""
    if isinstance(flt, Has):
        return len(flt.path.names) == 1
    if isinstance(flt, And):
        return all(_only_tags(term) for term in flt.terms)
    return False


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One record's new state, computed by ``prepare_update`` and applied by ``apply_update``."""

    key: str
    new: dict[str, Value]
    added: tuple[str, ...]  # tags the record did not have before
    removed: tuple[str, ...]  # tags it no longer has
    persistent: bool  # a tag outside RUNTIME_TAGS changed


@dataclass(frozen=True, slots=True)
class IndexStatistics:
    """What the table holds and what the last filter read examined (a debugging aid)."""

    records: int
    tags: int
    version: int
    last_filter_candidates: int


class RecordIndex:
    """Records by id with a tag-bitmap index, nav, and per-record change versions."""

    def __init__(self) -> None:
        self._slot_of: dict[str, int] = {}
        self._recs: list[dict[str, Value] | None] = []
        self._free: list[int] = []
        self._bits: dict[str, int] = {}
        self._versions = array("q")
        self._version = 0
        self._shared_refs: dict[tuple[str, str | None], Ref] = {}
        self._last_candidates = 0

    # -- lookups ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def get(self, key: str) -> dict[str, Value] | None:
        """The table's own record (not a copy: do not change it), or None."""
        slot = self._slot_of.get(key)
        return None if slot is None else self._recs[slot]

    def resolve(self, ref: Ref) -> dict[str, Value] | None:
        """The record a Ref points at, for ``->`` paths in filters."""
        slot = self._slot_of.get(ref[0])
        return None if slot is None else self._recs[slot]

    def ids_of(self, keys: Iterable[str]) -> list[Ref]:
        """The records' own id Refs of ``keys`` (unknown keys left out)."""
        recs = self._recs
        slots = [slot for slot in map(self._slot_of.get, keys) if slot is not None]
        return [recs[slot]["id"] for slot in slots]  # type: ignore[index]

    def records(self) -> Iterator[dict[str, Value]]:
        """Every record (the table's own dicts), in slot order."""
        return (rec for rec in self._recs if rec is not None)

    def read_by_ids(self, ids: Sequence[Ref]) -> list[dict[str, Value] | None]:
        """The records (the table's own dicts: read-only) in request order; None where an id
        is unknown."""
        slot_of = self._slot_of
        recs = self._recs
        out: list[dict[str, Value] | None] = []
        append = out.append
        for ref in ids:
            slot = slot_of.get(ref[0]) if isinstance(ref, Ref) else None
            append(None if slot is None else recs[slot])
        return out

    def statistics(self) -> IndexStatistics:
        """Counts for tests and diagnostics."""
        return IndexStatistics(
            len(self._slot_of), len(self._bits), self._version, self._last_candidates
        )

    # -- change versions (watches) ----------------------------------------------------------

    @property
    def version(self) -> int:
        """The version of the latest change anywhere in the table."""
        return self._version

    def version_of(self, key: str) -> int | None:
        """The version of a record's latest change, or None for an unknown id."""
        slot = self._slot_of.get(key)
        return None if slot is None else self._versions[slot]

    def versions_of(self, keys: Sequence[str]) -> list[int | None]:
        """:meth:`version_of` of many keys at once."""
        versions = self._versions
        return [None if slot is None else versions[slot] for slot in map(self._slot_of.get, keys)]

    def touch(self, key: str) -> None:
        """Count a change that is not a tag (a history write) for watches."""
        slot = self._slot_of.get(key)
        if slot is not None:
            self._bump(slot)

    def _bump(self, slot: int) -> None:
        self._version += 1
        self._versions[slot] = self._version

    # -- values ----------------------------------------------------------------------------

    def _share(self, val: Value) -> Value:
        """One object for equal short strings and Refs, so that thousands of records share them."""
        cls = val.__class__
        if cls is str:
            return _intern(val) if len(val) <= _SHARED_STR_MAX else val
        if cls is Ref:
            key = (_intern(val[0]), val[1])
            shared = self._shared_refs.get(key)
            if shared is None:
                shared = self._shared_refs[key] = val
            return shared
        return val

    # -- adding ----------------------------------------------------------------------------

    def prepare_add(self, records: Iterable[Mapping[str, Value]]) -> list[dict[str, Value]]:
        """Validated, normalised copies of new records (None and REMOVE dropped); no change yet."""
        out: list[dict[str, Value]] = []
        seen: set[str] = set()
        for rec in records:
            ref = rec.get("id")
            if not isinstance(ref, Ref):
                raise StorageError("a record needs an id that is a Ref")
            if ref[0] in self._slot_of or ref[0] in seen:
                raise DuplicateIdError(f"id @{ref[0]} already exists")
            seen.add(ref[0])
            new: dict[str, Value] = {}
            for name, val in rec.items():
                if val is None or val is REMOVE:
                    continue
                _check_name(name)
                check_value(name, val)
                # an id is unique: sharing it would only cost a table entry
                new[_intern(name)] = val if name == "id" else self._share(val)
            out.append(new)
        return out

    def apply_add(self, records: Sequence[dict[str, Value]]) -> None:
        """Insert records returned by :meth:`prepare_add`."""
        by_tag: dict[str, list[int]] = {}
        for rec in records:
            key = rec["id"][0]
            if self._free:
                slot = self._free.pop()
                self._recs[slot] = rec
            else:
                slot = len(self._recs)
                self._recs.append(rec)
                self._versions.append(0)
            self._slot_of[key] = slot
            self._bump(slot)
            for name in rec:
                by_tag.setdefault(name, []).append(slot)
        bits = self._bits
        for name, slots in by_tag.items():
            bits[name] = bits.get(name, 0) | _mask_of(slots)

    # -- updating --------------------------------------------------------------------------

    def prepare_update(self, records: Iterable[Mapping[str, Value]]) -> list[RecordChange]:
        """The changes an update makes (unchanged records left out); no change yet.

        ``None`` values are ignored, ``REMOVE`` deletes a tag, ``id`` cannot change. An id that
        appears twice is applied in order.
        """
        pending: dict[str, RecordChange] = {}
        order: list[str] = []
        for rec in records:
            ref = rec.get("id")
            if not isinstance(ref, Ref):
                raise StorageError("an update needs the id (a Ref) of the record")
            key = ref[0]
            before = pending.get(key)
            cur = before.new if before is not None else self.get(key)
            if cur is None:
                raise UnknownIdError(f"unknown id @{key}")
            new: dict[str, Value] | None = None
            added: list[str] = []
            removed: list[str] = []
            persistent = False
            for name, val in rec.items():
                if val is None or name == "id":
                    continue
                if val is REMOVE:
                    if name not in cur:
                        continue
                    if new is None:
                        new = dict(cur)
                    del new[name]
                    removed.append(name)
                else:
                    old = cur.get(name)
                    if old is not None and same_value(old, val):
                        continue
                    _check_name(name)
                    check_value(name, val)
                    if new is None:
                        new = dict(cur)
                    new[_intern(name)] = self._share(val)
                    if old is None:
                        added.append(_intern(name))
                persistent = persistent or name not in RUNTIME_TAGS
            if new is None:
                continue
            if before is not None:
                new_added = set(before.added).union(added).difference(removed)
                new_removed = set(before.removed).union(removed).difference(added)
                change = RecordChange(
                    key,
                    new,
                    tuple(new_added),
                    tuple(new_removed),
                    before.persistent or persistent,
                )
            else:
                change = RecordChange(key, new, tuple(added), tuple(removed), persistent)
                order.append(key)
            pending[key] = change
        return [pending[key] for key in order]

    def apply_update(self, changes: Iterable[RecordChange]) -> None:
        """Install the records computed by :meth:`prepare_update`."""
        bits = self._bits
        for change in changes:
            slot = self._slot_of[change.key]
            self._recs[slot] = change.new
            for name in change.added:
                bits[name] = bits.get(name, 0) | (1 << slot)
            for name in change.removed:
                self._clear_bit(name, slot)
            self._bump(slot)

    def _clear_bit(self, name: str, slot: int) -> None:
        mask = self._bits.get(name, 0) & ~(1 << slot)
        if mask:
            self._bits[name] = mask
        else:
            self._bits.pop(name, None)

    # -- removing --------------------------------------------------------------------------

    def known(self, ids: Iterable[Ref]) -> list[str]:
        """The keys of the ids the table holds (unknown ids left out, duplicates once)."""
        slot_of = self._slot_of
        if not isinstance(ids, Sequence) or set(map(type, ids)) != {Ref}:
            ids = [ref for ref in ids if isinstance(ref, Ref)]
        return list(dict.fromkeys([key for key in map(_ref_key, ids) if key in slot_of]))

    def apply_remove(self, keys: Iterable[str]) -> None:
        """Remove records by key (unknown keys ignored)."""
        for key in keys:
            slot = self._slot_of.pop(key, None)
            if slot is None:
                continue
            rec = self._recs[slot]
            assert rec is not None
            for name in rec:
                self._clear_bit(name, slot)
            self._recs[slot] = None
            self._bump(slot)
            self._free.append(slot)

    # -- filter reads ----------------------------------------------------------------------

    def read_by_filter(
        self, filter: Filter | str, limit: int | None = None
    ) -> list[dict[str, Value]]:
        """The records (the table's own dicts: read-only) matching ``filter``, at most
        ``limit`` of them."""
        flt = _parse_cached(filter) if isinstance(filter, str) else filter
        if limit is not None and limit <= 0:
            return []
        recs = self._recs
        out: list[dict[str, Value]]
        if _only_tags(flt):
            # ``point and temp and sensor``: the AND of the tag bitmaps is the answer itself
            # (a record's bit is set exactly when it holds the tag, and a stored record holds
            # no None), so no predicate runs.
            found = _present(map(recs.__getitem__, self._candidates(flt.required_tags())))
            out = list(found if limit is None else islice(found, limit))
            self._last_candidates = len(out)
            return out
        matches = flt.compile()
        resolve = self.resolve
        out = []
        examined = 0
        for slot in self._candidates(flt.required_tags()):
            rec = recs[slot]
            if rec is None:
                continue
            examined += 1
            if matches(rec, resolve):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        self._last_candidates = examined
        return out

    def _candidates(self, required: Iterable[str]) -> Iterable[int]:
        mask = -1
        for name in required:
            bits = self._bits.get(name, 0)
            if not bits:
                return ()
            mask &= bits
        if mask == -1:
            return range(len(self._recs))
        return _slots_of(mask)

    def _with_tags(self, *names: str) -> list[dict[str, Value]]:
        return [rec for rec in (self._recs[s] for s in self._candidates(names)) if rec is not None]

    # -- nav -------------------------------------------------------------------------------

    def nav_children(self, nav_id: Ref | str | None) -> list[dict[str, Value]]:
        """Haxall's default tree: sites (else equips, else points) -> equips -> points.

        Sites and equips are copies with ``navId`` set to the record's id; points (leaves) are
        the table's own dicts (read-only, as every read). A
        ``navId`` may be the Ref or its Str form (``"@id"`` or ``"id"``); an unknown one or a
        leaf has no children.
        """
        if nav_id is None or nav_id == "":
            for tag in ("site", "equip", "point"):
                rows = self._with_tags(tag)
                if rows:
                    return _nav_rows(rows, leaf=tag == "point")
            return []
        ref = nav_id if isinstance(nav_id, Ref) else Ref(str(nav_id))
        rec = self.get(ref[0])
        if rec is None:
            return []
        if "site" in rec:
            rows = [r for r in self._with_tags("equip", "siteRef") if r["siteRef"] == ref]
            return _nav_rows(rows, leaf=False)
        if "equip" in rec:
            rows = [r for r in self._with_tags("point", "equipRef") if r["equipRef"] == ref]
            return _nav_rows(rows, leaf=True)
        return []


def _nav_rows(rows: list[dict[str, Value]], *, leaf: bool) -> list[dict[str, Value]]:
    out = []
    for rec in sorted(rows, key=_dis_key):
        out.append(rec if leaf else {**rec, "navId": rec["id"]})
    return out


def _dis_key(rec: Mapping[str, Value]) -> tuple[str, str]:
    dis = rec.get("dis")
    if not isinstance(dis, str):
        dis = rec.get("navName")
    ref = rec["id"]
    return (dis if isinstance(dis, str) else (ref[1] or ref[0]), ref[0])


_SCALARS: Final = frozenset(
    {
        Marker,
        NAType,
        bool,
        Number,
        str,
        Uri,
        Ref,
        Symbol,
        dt.date,
        dt.time,
        dt.datetime,
        Coord,
        XStr,
    }
)
_KINDS: Final = (*_SCALARS, list, dict, Grid)


def check_value(name: str, val: Value) -> None:
    """Refuse what is not a Haystack value (an int, a set...): what SQLite could not write."""
    cls = val.__class__
    if cls in _SCALARS or cls is Grid:
        return
    if cls is list:
        for item in val:
            if item is not None:
                check_value(name, item)
    elif cls is dict:
        for key, item in val.items():
            _check_name(key)
            if item is not None:
                check_value(name, item)
    elif not isinstance(val, _KINDS) or (isinstance(val, int) and not isinstance(val, bool)):
        raise StorageError(f"tag {name}: {cls.__name__} is not a Haystack value")


def _check_name(name: object) -> None:
    # Zinc (and so the SQLite adapter) can only write valid tag names; refuse them in both.
    if not isinstance(name, str) or not _valid_name(name):
        raise StorageError(f"invalid tag name {name!r}")


@lru_cache(maxsize=4096)
def _valid_name(name: str) -> bool:
    return bool(name) and name[0].islower() and name.isascii() and name.replace("_", "a").isalnum()
