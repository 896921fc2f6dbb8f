"""An informer: a store kept equal to the API server's objects, and handlers told of changes.

Guarantees (the shape of client-go's shared informer):

- **Eventually equal.** The store converges to the server's state: it lists, then
  watches from the list's resourceVersion. 410 Gone (an ERROR event or the answer) makes
  it relist and replace the store. A stream the server ends cleanly is re-watched at once
  from the newest resourceVersion seen (bookmarks included); any other failure (transport,
  429/5xx, another ERROR event) is retried from there after a capped, jittered backoff,
  and so is a failed list.
- **Ordered per key.** Handlers see each object's changes in the server's order.
- **Nothing missed.** After a relist, handlers get the difference to what they last saw:
  an ADD for new objects, an UPDATE for changed ones, a DELETE for vanished ones; so a
  handler always ends with the final state of every object.
- **Isolated handlers.** Each handler has its own unbounded channel and task; a slow
  handler delays only itself.
- ``has_synced``/``wait_synced`` report the first complete list.
"""

from __future__ import annotations

import enum
import inspect
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from mtproxy.controller.client import KubeClient
from mtproxy.controller.errors import APIError, Gone
from mtproxy.controller.resource import Resource
from mtproxy.controller.store import Store
from mtproxy.controller.watch import EventType, watch_events

__all__ = ["Change", "ChangeType", "Handler", "Informer", "InformerStatistics"]

logger = logging.getLogger(__name__)

Object = dict[str, Any]
_SHORT_WATCH_S = 1.0
"""A watch that ends cleanly sooner than this is followed by a backoff, as client-go does."""


class ChangeType(enum.Enum):
    """What happened to an object, as handlers see it."""

    ADDED = "added"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change; ``old`` is None for ADDED, ``new`` is the last known state for DELETED."""

    type: ChangeType
    namespace: str
    name: str
    old: Object | None
    new: Object


Handler = Callable[[Change], Awaitable[None] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class InformerStatistics:
    """A snapshot of an informer's progress."""

    synced: bool
    objects: int
    lists: int
    watches: int
    events: int
    relists_after_gone: int
    reconnects: int
    resource_version: str
    handler_backlog: int


def _key(obj: Object) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _rv(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class Informer:
    """List-and-watch of one resource into a ``Store`` of raw objects."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout_s: int = 300,
        backoff_initial_s: float = 0.8,
        backoff_max_s: float = 30.0,
    ) -> None:
        if backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError("backoff_initial_s: must be positive and at most backoff_max_s")
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._watch_timeout_s = watch_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self.store: Store[Object] = Store()
        self._synced = trio.Event()
        self._senders: list[trio.MemorySendChannel[Change]] = []
        self._receivers: list[tuple[trio.MemoryReceiveChannel[Change], Handler]] = []
        self._resource_version = ""
        self._counts = {"lists": 0, "watches": 0, "events": 0, "gone": 0, "reconnects": 0}

    def add_handler(self, handler: Handler) -> None:
        """Register a handler before ``run``; it is called once per change, in order."""
        send, receive = trio.open_memory_channel[Change](math.inf)
        self._senders.append(send)
        self._receivers.append((receive, handler))

    def has_synced(self) -> bool:
        """Whether the first list has been stored and dispatched."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait for the first complete list."""
        await self._synced.wait()

    def statistics(self) -> InformerStatistics:
        """Counters and backlog."""
        backlog = sum(receive.statistics().current_buffer_used for receive, _ in self._receivers)
        return InformerStatistics(
            synced=self.has_synced(),
            objects=len(self.store),
            lists=self._counts["lists"],
            watches=self._counts["watches"],
            events=self._counts["events"],
            relists_after_gone=self._counts["gone"],
            reconnects=self._counts["reconnects"],
            resource_version=self._resource_version,
            handler_backlog=backlog,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """List and watch until cancelled; reports started once the handler tasks run."""
        async with trio.open_nursery() as nursery:
            for receive, handler in self._receivers:
                nursery.start_soon(self._deliver, receive, handler)
            task_status.started()
            await self._list_and_watch()

    async def _deliver(self, receive: trio.MemoryReceiveChannel[Change], handler: Handler) -> None:
        async for change in receive:
            try:
                result = handler(change)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception(
                    "informer handler failed",
                    extra={"resource": self._resource.plural, "key": f"{change.namespace}/{change.name}"},
                )

    def _emit(self, change: Change) -> None:
        for send in self._senders:
            send.send_nowait(change)

    async def _relist(self) -> None:
        items, resource_version = await self._client.list(
            self._resource,
            self._namespace,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
        )
        self._counts["lists"] += 1
        fresh = {_key(obj): obj for obj in items}
        previous = {(ns, name): obj for ns, name, obj in self.store.items()}
        self.store.replace_all(fresh)
        for key, obj in fresh.items():
            old = previous.get(key)
            if old is None:
                self._emit(Change(type=ChangeType.ADDED, namespace=key[0], name=key[1], old=None, new=obj))
            elif _rv(old) != _rv(obj):
                self._emit(Change(type=ChangeType.UPDATED, namespace=key[0], name=key[1], old=old, new=obj))
        for key, old in previous.items():
            if key not in fresh:
                self._emit(Change(type=ChangeType.DELETED, namespace=key[0], name=key[1], old=old, new=old))
        self._resource_version = resource_version
        if not self._synced.is_set():
            self._synced.set()
            logger.info("informer synced", extra={"resource": self._resource.plural, "objects": len(fresh)})

    def _apply(self, kind: EventType, obj: Object) -> None:
        namespace, name = _key(obj)
        if kind is EventType.DELETED:
            old = self.store.remove(namespace, name)
            self._emit(Change(type=ChangeType.DELETED, namespace=namespace, name=name, old=old, new=obj))
            return
        old = self.store.put(namespace, name, obj)
        change_type = ChangeType.ADDED if old is None else ChangeType.UPDATED
        self._emit(Change(type=change_type, namespace=namespace, name=name, old=old, new=obj))

    async def _list_and_watch(self) -> None:
        need_list = True
        backoff = self._backoff_initial_s
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                started = trio.current_time()
                await self._watch_once()
                if trio.current_time() - started < _SHORT_WATCH_S:
                    # a server that ends every watch at once must not get a tight loop of requests
                    await trio.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, self._backoff_max_s)
                else:
                    backoff = self._backoff_initial_s
            except Gone:
                self._counts["gone"] += 1
                logger.info("informer relisting after gone", extra={"resource": self._resource.plural})
                need_list = True
            except APIError as exc:
                self._counts["reconnects"] += 1
                logger.warning(
                    "informer watch failed",
                    extra={"resource": self._resource.plural, "error": str(exc)[:256], "retry_in_s": backoff},
                )
                await trio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, self._backoff_max_s)

    async def _watch_once(self) -> None:
        self._counts["watches"] += 1
        timeout_s = int(self._watch_timeout_s * random.uniform(1.0, 2.0))
        async for event in watch_events(
            self._client,
            self._resource,
            self._namespace,
            resource_version=self._resource_version,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
            timeout_s=timeout_s,
        ):
            self._counts["events"] += 1
            if event.resource_version:
                self._resource_version = event.resource_version
            if event.type is EventType.BOOKMARK:
                continue
            self._apply(event.type, event.object)
