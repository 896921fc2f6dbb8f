"""The optional state file: the double's objects saved as JSON and loaded at the next start.

Contract: :func:`save_state` writes every stored object (metadata included: uid,
resourceVersion, timestamps) and the current resourceVersion, atomically (temporary file
then rename). :func:`load_state` restores them as a restarted API server would: CRDs are
registered first, objects keep their resourceVersions, the global version continues from
the saved one, and the history starts empty, so a watch from an older version answers
410 Expired. Objects whose kind is no longer served are skipped with a warning.
:func:`keep_state_saved` saves after each burst of writes (waiting on the store's change
event, then ``debounce_s``), never on a timer.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import trio

from .app import ApiDouble
from .crds import served_resources
from .store import ObjectKey

__all__ = ["keep_state_saved", "load_state", "save_state", "state_document"]

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def state_document(app: ApiDouble) -> dict[str, Any]:
    """Return the JSON-ready snapshot of every stored object."""
    store = app.cluster.store
    objects = []
    for key in sorted(store.object_keys()):
        obj = store.get(key)
        if obj is not None:
            objects.append({"group": key.group, "resource": key.resource, "object": obj})
    return {"version": _FORMAT_VERSION, "resourceVersion": store.resource_version, "objects": objects}


def _write_atomically(path: Path, payload: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(payload)
    os.replace(temporary, path)


def save_state(app: ApiDouble, path: str | Path) -> None:
    """Write the state file now (blocking; from trio prefer :func:`keep_state_saved`)."""
    document = state_document(app)
    _write_atomically(Path(path), json.dumps(document))
    logger.debug("apidouble state saved", extra={"path": str(path), "objects": len(document["objects"])})


def load_state(app: ApiDouble, path: str | Path) -> int:
    """Restore objects from the state file if it exists; return how many were loaded."""
    source = Path(path)
    if not source.exists():
        return 0
    document = json.loads(source.read_text())
    if document.get("version") != _FORMAT_VERSION:
        raise ValueError(f"state file {source} has format {document.get('version')!r}, expected {_FORMAT_VERSION}")
    entries = document.get("objects", [])
    crds = [e for e in entries if (e["object"].get("apiVersion"), e["object"].get("kind")) == _CRD]
    for entry in crds:
        app.cluster.registry.register_crd(entry["object"]["metadata"]["name"], served_resources(entry["object"]))
    restored: list[tuple[ObjectKey, dict[str, Any]]] = []
    for entry in entries:
        obj = entry["object"]
        info = app.cluster.registry.lookup_kind(api_version=str(obj.get("apiVersion", "")),
                                                kind=str(obj.get("kind", "")))
        if info is None:
            logger.warning("apidouble state object skipped", extra={
                "api_version": obj.get("apiVersion"), "kind": obj.get("kind"),
                "object_name": obj.get("metadata", {}).get("name"),
            })
            continue
        metadata = obj.get("metadata", {})
        restored.append((ObjectKey(group=entry["group"], resource=entry["resource"],
                                   namespace=str(metadata.get("namespace", "")), name=str(metadata["name"])), obj))
    app.cluster.store.restore(restored, resource_version=int(document.get("resourceVersion", 1)))
    logger.info("apidouble state loaded", extra={"path": str(source), "objects": len(restored)})
    return len(restored)


async def keep_state_saved(
    app: ApiDouble,
    path: str | Path,
    *,
    debounce_s: float = 0.5,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Save the state after each burst of writes, and once more when cancelled."""
    target = Path(path)
    store = app.cluster.store
    saved = store.resource_version
    task_status.started()
    try:
        while True:
            await store.wait_for_change(saved)
            await trio.sleep(debounce_s)
            saved = store.resource_version
            payload = json.dumps(state_document(app))
            await trio.to_thread.run_sync(_write_atomically, target, payload)
    finally:
        if store.resource_version != saved:
            save_state(app, target)
