"""Namespace lifecycle: deletion marks a namespace Terminating; a task empties and removes it.

Contract, as the real namespace controller gives it:

- The server starts with the namespaces a real one creates for itself
  (:data:`BUILTIN_NAMESPACES`: ``default``, ``kube-system``, ``kube-public``,
  ``kube-node-lease``).
- A new namespace gets ``spec.finalizers: ["kubernetes"]``, ``status.phase: Active`` and
  the label ``kubernetes.io/metadata.name: <name>``.
- Creating an object in a namespace that does not exist answers 404 NotFound
  (``namespaces "x" not found``), as the NamespaceLifecycle admission plugin does;
  ``seed`` (fixtures, state files) is not an API write and skips this check.
- Deleting a namespace answers 200 with the namespace marked: ``deletionTimestamp`` set,
  ``status.phase: Terminating``. Its contents stay readable and deletable meanwhile, so
  ``kubectl delete -k`` deleting a namespace and then its objects succeeds.
- Creating an object in a terminating namespace answers 403 Forbidden.
- :func:`reap_namespaces` (run for the server's lifetime, see :mod:`.app`) waits
  ``grace_s`` after each deletion, then deletes every object in the namespace (DELETED
  events) and finally the namespace itself. Waiting is on a memory channel, not a poll.

Not reproduced: namespace conditions, the ``/finalize`` subresource, finalizers of the
contents holding the namespace back (contents are removed regardless).
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import trio

from .errors import ForbiddenError, NotFoundError
from .store import ObjectKey, Store
from .strategy import now_timestamp

__all__ = ["BUILTIN_NAMESPACES", "NamespaceReaper", "check_namespace_open", "mark_terminating",
           "prepare_namespace"]

BUILTIN_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
"""The namespaces a real API server creates at start-up."""
_NAME_LABEL = "kubernetes.io/metadata.name"

logger = logging.getLogger(__name__)


def prepare_namespace(obj: dict[str, Any]) -> dict[str, Any]:
    """Fill in a new namespace's finalizer, phase and name label (in place); return it."""
    metadata = obj.setdefault("metadata", {})
    if metadata.get("name"):
        metadata["labels"] = {**(metadata.get("labels") or {}), _NAME_LABEL: metadata["name"]}
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}
    return obj


def mark_terminating(old: dict[str, Any]) -> dict[str, Any]:
    """Return the namespace as the real server stores it once deletion starts."""
    marked = copy.deepcopy(old)
    marked["metadata"].setdefault("deletionTimestamp", now_timestamp())
    marked["status"] = {**(marked.get("status") or {}), "phase": "Terminating"}
    return marked


def check_namespace_open(store: Store, namespace: str) -> None:
    """Refuse creation in a namespace that does not exist or is being deleted.

    Raises:
        NotFoundError: there is no such namespace.
        ForbiddenError: the namespace exists and is terminating.
    """
    if not namespace:
        return
    found = store.get(ObjectKey(group="", resource="namespaces", namespace="", name=namespace))
    if found is None:
        raise NotFoundError.for_object(group="", resource="namespaces", name=namespace)
    if found["metadata"].get("deletionTimestamp"):
        raise ForbiddenError(
            f'unable to create new content in namespace {namespace} because it is being terminated',
            details={"name": namespace, "kind": "namespaces"},
        )


class NamespaceReaper:
    """The queue of terminating namespaces and the task that removes them."""

    def __init__(self, store: Store, *, grace_s: float = 0.5) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must not be negative, got {grace_s}")
        self._store = store
        self._grace_s = grace_s
        self._send, self._receive = trio.open_memory_channel[str](math.inf)

    def schedule(self, namespace: str) -> None:
        """Queue a terminating namespace for removal."""
        self._send.send_nowait(namespace)

    def reap_now(self, namespace: str) -> int:
        """Delete a namespace's contents and then the namespace; return how many objects went."""
        removed = 0
        for key in self._store.object_keys():
            if key.namespace == namespace:
                self._store.delete(key)
                removed += 1
        self._store.delete(ObjectKey(group="", resource="namespaces", namespace="", name=namespace))
        logger.debug("apidouble namespace removed", extra={"namespace": namespace, "objects": removed})
        return removed

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Remove each scheduled namespace after the grace period, until cancelled."""
        task_status.started()
        async with trio.open_nursery() as nursery:
            async for namespace in self._receive:
                nursery.start_soon(self._reap_later, namespace)

    async def _reap_later(self, namespace: str) -> None:
        await trio.sleep(self._grace_s)
        self.reap_now(namespace)
