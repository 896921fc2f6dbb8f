"""The object store: current objects, the global resourceVersion and the event history.

Contract, as etcd gives it to the real API server:

- **One global, monotonically increasing resourceVersion.** Every write (create, update,
  delete) takes the next integer and stamps it on the object as a string; nothing else
  ever changes it. The first write after start gets ``initial_resource_version + 1``.
- **History.** Every write is recorded as a :class:`StoredEvent` carrying the new object
  and the previous one, so a watch can resume "after resourceVersion N" and a list can be
  served as of an older N (:meth:`Store.items_at`). History keeps at most
  ``history_limit`` events; older ones are compacted. :meth:`Store.compact` compacts on
  demand, as etcd's compaction at revision C does: the state as of C and every later
  event stay, so a list at C or later and a watch resuming after C - 1 or later still
  work; anything older raises :class:`~.errors.ExpiredError` (410).
- **Change notification without polling.** :meth:`Store.wait_for_change` parks on a
  ``trio.Event`` that every write sets and replaces.
- **Ordering.** Lists return objects sorted by namespace then name, as etcd's key order.

Stored dicts are never mutated after :meth:`Store.put`; readers may serialise them
directly and must copy before changing them. The store is used from the trio thread only.
"""

from __future__ import annotations

import bisect
import copy
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from .errors import ExpiredError
from .resources import GroupResource

__all__ = ["EventType", "ObjectKey", "Store", "StoreStatistics", "StoredEvent"]


class EventType(enum.Enum):
    """The kind of change a stored event records."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class ObjectKey:
    """Where one object lives: group, resource, namespace (``""`` if cluster-scoped), name."""

    group: str
    resource: str
    namespace: str
    name: str

    @property
    def group_resource(self) -> GroupResource:
        """The group/resource the object belongs to."""
        return GroupResource(group=self.group, resource=self.resource)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """One recorded write."""

    resource_version: int
    type: EventType
    key: ObjectKey
    object: dict[str, Any] = field(compare=False)
    """The object after the write (for DELETED: its last state, stamped with this version)."""
    previous: dict[str, Any] | None = field(compare=False)
    """The object before the write; None for ADDED."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStatistics:
    """A snapshot of the store's size and versions."""

    objects: int
    resource_version: int
    compacted_resource_version: int
    history_events: int


class Store:
    """Objects by key, the global resourceVersion and the bounded event history."""

    def __init__(self, *, history_limit: int = 10_000, initial_resource_version: int = 1) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be at least 1, got {history_limit}")
        self._history_limit = history_limit
        self._objects: dict[GroupResource, dict[tuple[str, str], dict[str, Any]]] = {}
        self._history: list[StoredEvent] = []
        self._history_versions: list[int] = []
        self._resource_version = initial_resource_version
        self._compacted = initial_resource_version
        self._events_kept_after = initial_resource_version
        """Every event newer than this is in the history (etcd: the compaction revision - 1)."""
        self._changed = trio.Event()

    @property
    def resource_version(self) -> int:
        """The version of the latest write."""
        return self._resource_version

    @property
    def compacted_resource_version(self) -> int:
        """The oldest version a list may be served at (etcd's compaction revision)."""
        return self._compacted

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """Return the stored object, or None."""
        return self._objects.get(key.group_resource, {}).get((key.namespace, key.name))

    def items(self, group_resource: GroupResource, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return the current objects of one resource (one namespace if given), in key order."""
        bucket = self._objects.get(group_resource, {})
        return [bucket[k] for k in sorted(bucket) if namespace is None or k[0] == namespace]

    def items_at(
        self, resource_version: int, group_resource: GroupResource, *, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the objects as they were right after ``resource_version`` was written.

        Raises:
            ExpiredError: the version is older than the retained history.
        """
        if resource_version < self._compacted:
            raise ExpiredError(f"The resourceVersion for the provided list is too old. ({resource_version})")
        bucket = dict(self._objects.get(group_resource, {}))
        for event in reversed(self.events_after(resource_version)):
            if event.key.group_resource != group_resource:
                continue
            slot = (event.key.namespace, event.key.name)
            if event.previous is None:
                bucket.pop(slot, None)
            else:
                bucket[slot] = event.previous
        return [bucket[k] for k in sorted(bucket) if namespace is None or k[0] == namespace]

    def object_keys(self) -> list[ObjectKey]:
        """Return every stored key."""
        return [
            ObjectKey(group=gr.group, resource=gr.resource, namespace=ns, name=name)
            for gr, bucket in self._objects.items()
            for ns, name in bucket
        ]

    def put(self, key: ObjectKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` (which the store now owns) under the next resourceVersion."""
        previous = self.get(key)
        version = self._next_version()
        obj.setdefault("metadata", {})["resourceVersion"] = str(version)
        self._objects.setdefault(key.group_resource, {})[(key.namespace, key.name)] = obj
        kind = EventType.ADDED if previous is None else EventType.MODIFIED
        self._record(StoredEvent(resource_version=version, type=kind, key=key, object=obj, previous=previous))
        return obj

    def delete(self, key: ObjectKey) -> dict[str, Any] | None:
        """Remove the object, record a DELETED event and return its last state (or None)."""
        bucket = self._objects.get(key.group_resource, {})
        previous = bucket.pop((key.namespace, key.name), None)
        if previous is None:
            return None
        version = self._next_version()
        final = copy.copy(previous)
        final["metadata"] = {**previous.get("metadata", {}), "resourceVersion": str(version)}
        self._record(
            StoredEvent(resource_version=version, type=EventType.DELETED, key=key, object=final, previous=previous)
        )
        return final

    def events_after(self, resource_version: int) -> Sequence[StoredEvent]:
        """Return the events newer than ``resource_version``, oldest first.

        Raises:
            ExpiredError: events after that version were compacted away.
        """
        if resource_version < self._events_kept_after:
            raise ExpiredError(f"too old resource version: {resource_version} ({self._compacted})")
        start = bisect.bisect_right(self._history_versions, resource_version)
        return self._history[start:]

    async def wait_for_change(self, after_resource_version: int) -> None:
        """Return once the store's version is newer than ``after_resource_version``."""
        while self._resource_version <= after_resource_version:
            await self._changed.wait()

    def compact(self, up_to: int | None = None) -> int:
        """Compact at ``up_to`` (default: the current version), as etcd does; return the events dropped.

        Events older than ``up_to`` are forgotten; the one written at ``up_to`` is kept, so a
        watch may still resume after ``up_to - 1``.
        """
        target = self._resource_version if up_to is None else min(up_to, self._resource_version)
        if target <= self._compacted:
            return 0
        cut = bisect.bisect_left(self._history_versions, target)
        del self._history[:cut]
        del self._history_versions[:cut]
        self._compacted = target
        self._events_kept_after = max(self._events_kept_after, target - 1)
        return cut

    def restore(self, objects: Iterable[tuple[ObjectKey, dict[str, Any]]], *, resource_version: int) -> None:
        """Load objects without events, as after a restart: history starts at ``resource_version``."""
        for key, obj in objects:
            self._objects.setdefault(key.group_resource, {})[(key.namespace, key.name)] = obj
        self._resource_version = max(self._resource_version, resource_version)
        self._compacted = self._events_kept_after = self._resource_version
        self._history.clear()
        self._history_versions.clear()

    def statistics(self) -> StoreStatistics:
        """Return a snapshot of sizes and versions."""
        return StoreStatistics(
            objects=sum(len(bucket) for bucket in self._objects.values()),
            resource_version=self._resource_version,
            compacted_resource_version=self._compacted,
            history_events=len(self._history),
        )

    def _next_version(self) -> int:
        self._resource_version += 1
        return self._resource_version

    def _record(self, event: StoredEvent) -> None:
        self._history.append(event)
        self._history_versions.append(event.resource_version)
        if len(self._history) > self._history_limit:
            keep = max(1, self._history_limit * 3 // 4)
            self.compact(self._history[-keep].resource_version)
        self._changed.set()
        self._changed = trio.Event()
