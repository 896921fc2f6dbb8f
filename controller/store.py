"""An in-memory object store indexed by namespace, read through consistent snapshots.

Writers (one informer) replace a namespace's mapping on every change (copy-on-write of
that namespace only), so a reader holding ``in_namespace(ns)`` keeps a consistent
snapshot that never changes under it, and lookups cost O(1) with no copy per read: the
proxy reads the store on every request. ``StoreReader`` is the read-only face other
packages may import.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

__all__ = ["Store", "StoreReader", "StoreStatistics"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStatistics:
    """Size of a store."""

    objects: int
    namespaces: int


class StoreReader(Protocol[T_co]):
    """Read-only access to a store."""

    def get(self, namespace: str, name: str) -> T_co | None: ...

    def in_namespace(self, namespace: str) -> Mapping[str, T_co]: ...

    def namespaces(self) -> tuple[str, ...]: ...

    def __len__(self) -> int: ...


class Store(Generic[T]):
    """Objects keyed by (namespace, name); ``""`` is the namespace of cluster-scoped objects."""

    def __init__(self) -> None:
        self._by_namespace: dict[str, Mapping[str, T]] = {}
        self._count = 0

    def get(self, namespace: str, name: str) -> T | None:
        """One object, or None."""
        return self._by_namespace.get(namespace, {}).get(name)

    def in_namespace(self, namespace: str) -> Mapping[str, T]:
        """A snapshot of one namespace's objects by name (never mutated afterwards)."""
        found = self._by_namespace.get(namespace)
        return found if found is not None else _EMPTY  # type: ignore[return-value]

    def namespaces(self) -> tuple[str, ...]:
        """Namespaces that have at least one object."""
        return tuple(self._by_namespace)

    def items(self) -> Iterator[tuple[str, str, T]]:
        """Every (namespace, name, object)."""
        for namespace, objects in list(self._by_namespace.items()):
            for name, obj in objects.items():
                yield namespace, name, obj

    def __len__(self) -> int:
        return self._count

    def put(self, namespace: str, name: str, obj: T) -> T | None:
        """Insert or replace; returns the previous object."""
        current = self._by_namespace.get(namespace, {})
        previous = current.get(name)
        updated = dict(current)
        updated[name] = obj
        self._by_namespace[namespace] = MappingProxyType(updated)
        if previous is None:
            self._count += 1
        return previous

    def remove(self, namespace: str, name: str) -> T | None:
        """Delete; returns the removed object, or None when absent."""
        current = self._by_namespace.get(namespace)
        if current is None or name not in current:
            return None
        updated = dict(current)
        previous = updated.pop(name)
        if updated:
            self._by_namespace[namespace] = MappingProxyType(updated)
        else:
            del self._by_namespace[namespace]
        self._count -= 1
        return previous

    def replace_all(self, objects: Mapping[tuple[str, str], T]) -> None:
        """Swap in a whole new content (after a relist)."""
        grouped: dict[str, dict[str, T]] = {}
        for (namespace, name), obj in objects.items():
            grouped.setdefault(namespace, {})[name] = obj
        self._by_namespace = {ns: MappingProxyType(objs) for ns, objs in grouped.items()}
        self._count = len(objects)

    def statistics(self) -> StoreStatistics:
        """Counts."""
        return StoreStatistics(objects=self._count, namespaces=len(self._by_namespace))
