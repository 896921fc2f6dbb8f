"""Watch streams: newline-delimited JSON events for one resource, fed from the store's history.

Contract, as the real server's watch:

- **Start.** Without ``resourceVersion`` (or with ``"0"``) the stream first sends a synthetic
  ``ADDED`` for every matching object, then changes after the current version. With
  ``resourceVersion=N`` it sends every change after N, in order, with nothing skipped.
  With ``sendInitialEvents=true`` the initial ``ADDED`` events are followed by a BOOKMARK
  annotated ``k8s.io/initial-events-end: "true"``.
- **Too old.** If N (or the watcher's position, when it falls behind compaction) is older
  than the retained history, the stream sends one ``ERROR`` event whose object is a 410
  ``Expired`` Status, then ends; the HTTP status stays 200.
- **Selectors.** With label/field selectors, an object that starts matching arrives as
  ``ADDED``, one that stops matching as ``DELETED`` (its previous state), as the watch
  cache does. Namespaced watches see only their namespace.
- **Bookmarks.** With ``allowWatchBookmarks=true``, a watcher that has been idle for
  ``bookmark_interval_s`` gets a BOOKMARK carrying only ``kind``, ``apiVersion`` and
  ``metadata.resourceVersion`` (the version it has seen everything up to).
- **End.** ``timeoutSeconds`` ends the stream cleanly; so do :meth:`WatchRegistry.drop_all`
  (the "drop all watch connections" fault) and unregistering a CRD (its watches close).
  Waiting is on the store's change event, never a poll.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from .errors import ExpiredError
from .resources import GroupResource, ResourceInfo
from .selectors import FieldSelector, LabelSelector
from .store import EventType, Store, StoredEvent
from .tables import Rendering, RenderingRequest, partial_metadata, table

__all__ = ["WatchRegistry", "WatchRequest", "WatchStatistics", "serve_watch"]

SendChunk = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchRequest:
    """The parameters of one watch call."""

    info: ResourceInfo
    namespace: str | None
    """Only this namespace; None for all namespaces or cluster-scoped resources."""
    label_selector: LabelSelector = field(default_factory=LabelSelector)
    field_selector: FieldSelector = field(default_factory=FieldSelector)
    resource_version: int | None = None
    """Send changes after this version; None means "current state, then changes"."""
    allow_bookmarks: bool = False
    send_initial_events: bool = False
    timeout_s: float | None = None
    rendering: RenderingRequest = field(default_factory=lambda: RenderingRequest(rendering=Rendering.OBJECT))

    def matches(self, obj: dict[str, Any]) -> bool:
        """Return whether the object passes both selectors."""
        return self.label_selector.matches(obj) and self.field_selector.matches(obj)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchStatistics:
    """How many watch streams are open, and how many were opened in total."""

    open_streams: int
    total_streams: int


class WatchRegistry:
    """The open watch streams, so faults and CRD removal can end them."""

    def __init__(self) -> None:
        self._scopes: dict[trio.CancelScope, GroupResource] = {}
        self._total = 0

    def add(self, scope: trio.CancelScope, group_resource: GroupResource) -> None:
        """Track an open stream's cancel scope."""
        self._scopes[scope] = group_resource
        self._total += 1

    def discard(self, scope: trio.CancelScope) -> None:
        """Forget a stream that ended."""
        self._scopes.pop(scope, None)

    def drop_all(self) -> int:
        """End every open stream; return how many."""
        scopes = list(self._scopes)
        for scope in scopes:
            scope.cancel()
        return len(scopes)

    def drop(self, group_resource: GroupResource) -> int:
        """End the streams of one resource; return how many."""
        scopes = [scope for scope, gr in self._scopes.items() if gr == group_resource]
        for scope in scopes:
            scope.cancel()
        return len(scopes)

    def statistics(self) -> WatchStatistics:
        """Return a snapshot of the stream counts."""
        return WatchStatistics(open_streams=len(self._scopes), total_streams=self._total)


def _visible(event: StoredEvent, request: WatchRequest) -> tuple[str, dict[str, Any]] | None:
    if event.key.group_resource != request.info.group_resource:
        return None
    if request.namespace is not None and event.key.namespace != request.namespace:
        return None
    current = event.object
    previous = event.previous
    if event.type is EventType.ADDED:
        return ("ADDED", current) if request.matches(current) else None
    if event.type is EventType.DELETED:
        return ("DELETED", current) if previous is not None and request.matches(previous) else None
    now_ok = request.matches(current)
    was_ok = previous is not None and request.matches(previous)
    if now_ok:
        return ("MODIFIED", current) if was_ok else ("ADDED", current)
    if was_ok and previous is not None:
        gone = {**previous, "metadata": {**previous.get("metadata", {}),
                                         "resourceVersion": str(event.resource_version)}}
        return ("DELETED", gone)
    return None


def _encode(request: WatchRequest, kind: str, obj: dict[str, Any]) -> bytes:
    rendered: dict[str, Any]
    if kind in ("ERROR", "BOOKMARK"):
        rendered = obj
    elif request.rendering.rendering is Rendering.TABLE:
        rendered = table(request.info, [request.info.present(obj)], meta_version=request.rendering.meta_version)
    elif request.rendering.rendering is Rendering.PARTIAL_METADATA:
        rendered = partial_metadata(obj, meta_version=request.rendering.meta_version)
    else:
        rendered = request.info.present(obj)
    return json.dumps({"type": kind, "object": rendered}, separators=(",", ":")).encode() + b"\n"


def _bookmark(request: WatchRequest, resource_version: int, *, initial_end: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
    if initial_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": request.info.kind, "apiVersion": request.info.group_version, "metadata": metadata}


async def serve_watch(
    store: Store,
    registry: WatchRegistry,
    request: WatchRequest,
    send: SendChunk,
    *,
    gate: Callable[[], Awaitable[None]],
    bookmark_interval_s: float,
) -> None:
    """Send the watch stream for ``request`` through ``send`` until it ends (see module docs)."""
    with trio.CancelScope() as scope:
        if request.timeout_s is not None:
            scope.deadline = trio.current_time() + request.timeout_s
        registry.add(scope, request.info.group_resource)
        try:
            await _stream(store, request, send, gate=gate, bookmark_interval_s=bookmark_interval_s)
        finally:
            registry.discard(scope)


async def _stream(
    store: Store,
    request: WatchRequest,
    send: SendChunk,
    *,
    gate: Callable[[], Awaitable[None]],
    bookmark_interval_s: float,
) -> None:
    if request.resource_version is None or request.send_initial_events:
        cursor = store.resource_version
        for obj in store.items(request.info.group_resource, namespace=request.namespace):
            if request.matches(obj):
                await gate()
                await send(_encode(request, "ADDED", obj))
        if request.send_initial_events:
            await send(_encode(request, "BOOKMARK", _bookmark(request, cursor, initial_end=True)))
    else:
        cursor = request.resource_version
    interval = bookmark_interval_s if request.allow_bookmarks else math.inf
    while True:
        try:
            events = store.events_after(cursor)
        except ExpiredError as exc:
            await send(_encode(request, "ERROR", exc.to_status()))
            return
        for event in events:
            cursor = event.resource_version
            visible = _visible(event, request)
            if visible is not None:
                await gate()
                await send(_encode(request, *visible))
        await trio.lowlevel.checkpoint()
        with trio.move_on_after(interval) as idle:
            await store.wait_for_change(cursor)
        if idle.cancelled_caught:
            await gate()
            await send(_encode(request, "BOOKMARK", _bookmark(request, max(cursor, store.resource_version))))
