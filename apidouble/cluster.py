"""The double's shared state: store, served resources, open watches, review rules, namespace reaper.

One :class:`Cluster` lives in the trio thread that serves it; the request handlers in
:mod:`.reads`, :mod:`.writes` and :mod:`.watch` receive it, and nothing else holds state.
"""

from __future__ import annotations

from dataclasses import dataclass

from .namespaces import NamespaceReaper
from .resources import Registry
from .reviews import ReviewRules
from .store import Store, StoreStatistics
from .watch import WatchRegistry, WatchStatistics

__all__ = ["Cluster", "ClusterStatistics"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStatistics:
    """A snapshot of the store and the watch streams."""

    store: StoreStatistics
    watches: WatchStatistics
    served_resources: int


class Cluster:
    """Everything a request handler may read or change."""

    def __init__(
        self,
        *,
        rules: ReviewRules | None = None,
        bookmark_interval_s: float = 1.0,
        history_limit: int = 10_000,
        namespace_grace_s: float = 0.5,
    ) -> None:
        if bookmark_interval_s <= 0:
            raise ValueError(f"bookmark_interval_s must be positive, got {bookmark_interval_s}")
        self.store = Store(history_limit=history_limit)
        self.registry = Registry()
        self.namespaces = NamespaceReaper(self.store, grace_s=namespace_grace_s)
        self.watches = WatchRegistry()
        self.rules = rules or ReviewRules()
        self.bookmark_interval_s = bookmark_interval_s

    def statistics(self) -> ClusterStatistics:
        """Return a snapshot of the store and the watch streams."""
        return ClusterStatistics(
            store=self.store.statistics(),
            watches=self.watches.statistics(),
            served_resources=sum(1 for _ in self.registry.served()),
        )
