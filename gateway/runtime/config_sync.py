"""Make the store's records match the point database of the configuration.

The point database comes from configuration (DESIGN.md, "Storage"): at start and on every
reload the records of ``points/*.trio`` are written into the store, so that the Haystack API
serves them and the runners can publish their runtime tags on them. :func:`sync_records`
changes only what differs:

- a record that is new is added;
- a record whose configured tags changed is updated tag by tag (a tag no longer configured
  is removed with ``REMOVE``), keeping its runtime tags (curVal, connStatus, ...), its
  history and its priority array;
- a record no longer configured is removed, with its history and priority array (the store
  does that), so a point taken out of the files disappears from the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.haystack.kinds import REMOVE, Ref, Value
from gateway.storage.base import RUNTIME_TAGS, RecordStore

__all__ = ["SyncResult", "sync_records"]

#: Tags the store or the runtime own; configuration never sets or removes them.
_NOT_CONFIGURED = RUNTIME_TAGS | {"mod", "id"}


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The ids :func:`sync_records` added, updated and removed."""

    added: list[Ref] = field(default_factory=list)
    updated: list[Ref] = field(default_factory=list)
    removed: list[Ref] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything changed."""
        return bool(self.added or self.updated or self.removed)


def _same(a: Value, b: Value) -> bool:
    # Number(1) and True compare unequal by type; a Ref compares by id, so a changed dis of a
    # Ref counts too.
    if type(a) is not type(b) or a != b:
        return False
    if isinstance(a, Ref) and isinstance(b, Ref):
        return a.dis == b.dis
    return True


def _diff(want: Mapping[str, Value], have: Mapping[str, Value]) -> dict[str, Value]:
    changes: dict[str, Value] = {}
    for tag, val in want.items():
        if tag in _NOT_CONFIGURED or val is None:
            continue
        if tag not in have or not _same(val, have[tag]):
            changes[tag] = val
    for tag in have:
        if tag not in _NOT_CONFIGURED and want.get(tag) is None:
            changes[tag] = REMOVE
    return changes


async def sync_records(store: RecordStore, records: Iterable[Mapping[str, Value]]) -> SyncResult:
    """Add, update and remove records so the store holds exactly ``records`` (by id)."""
    wanted: dict[Ref, Mapping[str, Value]] = {}
    for rec in records:
        rid = rec.get("id")
        if isinstance(rid, Ref):
            wanted[rid] = rec
    existing = {rec["id"]: rec for rec in await store.read_by_filter("id")}
    result = SyncResult()
    new = [
        {"id": rid, **{k: v for k, v in rec.items() if k not in _NOT_CONFIGURED and v is not None}}
        for rid, rec in wanted.items()
        if rid not in existing
    ]
    result.added.extend(r for r in wanted if r not in existing)
    updates: list[dict[str, Value]] = []
    for rid, rec in wanted.items():
        have = existing.get(rid)
        if have is None:
            continue
        changes = _diff(rec, have)
        if changes:
            updates.append({"id": rid, **changes})
            result.updated.append(rid)
    gone = [rid for rid in existing if isinstance(rid, Ref) and rid not in wanted]
    result.removed.extend(gone)
    if gone:
        await store.remove_records(gone)
    if new:
        await store.add_records(new)
    if updates:
        await store.update_records(updates)
    return result
