"""Keeps the objects of a directory applied to the API server, as ``mtproxy dev`` edits go live.

Level-based, like a reconciler: at start and after every change in the directory (watched
with ``watchfiles``, changes debounced), every ``*.yaml``/``*.yml`` file under it is read
again and the API server is made to hold what the files say:

- an object that does not exist is created; one whose file changed since the last pass,
  or that no longer holds what its file gives (any top-level field but ``status``, its
  labels and annotations; what the server adds, such as defaults, does not count), is replaced, carrying
  the resourceVersion it was read at; one that already matches is left alone, so saving a
  file unchanged bumps no ``generation``;
- an object this applier created or replaced earlier and that no file holds any more is
  deleted (objects made by someone else, e.g. with kubectl, are never touched). Namespaces
  are created but never deleted: deleting one deletes everything in it;
- Namespaces are applied before everything else, so a file may hold both;
- a file that does not parse, an unknown kind or a refusal of the API server is recorded
  in :meth:`DirectoryApplier.statistics` (the console shows it) and logged once; the other
  objects are applied all the same.

Kinds: Namespace, ConfigMap, Secret (core/v1) and MetricAccess.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml
from watchfiles import awatch

from mtproxy.api import GROUP, KIND, VERSION
from mtproxy.cmd.devkube import NAMESPACES
from mtproxy.controller import APIError, KubeClient, NotFound, Resource, TransportError

__all__ = ["KINDS", "ApplierStatistics", "DirectoryApplier", "read_objects"]

logger = logging.getLogger(__name__)

KINDS: Mapping[tuple[str, str], Resource] = {
    ("v1", "Namespace"): NAMESPACES,
    ("v1", "ConfigMap"): Resource(group="", version="v1", plural="configmaps"),
    ("v1", "Secret"): Resource(group="", version="v1", plural="secrets"),
    (f"{GROUP}/{VERSION}", KIND): Resource(group=GROUP, version=VERSION, plural="metricaccesses"),
}
"""(apiVersion, kind) to the resource the applier writes."""

_IGNORED_FIELDS = frozenset({"apiVersion", "kind", "metadata", "status"})
ObjectKey = tuple[Resource, str | None, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplierStatistics:
    """What the applier holds applied, and what it could not apply."""

    directory: str
    objects: int
    """Objects the files hold (and the API server was last made to hold)."""
    applies: int
    """Passes over the directory (the first one, then one per batch of changes)."""
    writes: int
    """Creates, replaces and deletes sent."""
    last_pass_at: float | None
    """Wall-clock time of the newest pass."""
    problems: tuple[str, ...]
    """What the newest pass could not apply, each naming its file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Wanted:
    key: ObjectKey
    body: dict[str, Any]
    source: str


def _describe(key: ObjectKey) -> str:
    resource, namespace, name = key
    return f"{resource.plural}/{namespace}/{name}" if namespace else f"{resource.plural}/{name}"


def read_objects(directory: Path) -> tuple[list[_Wanted], list[str]]:
    """Every object the files under ``directory`` hold (Namespaces first), and the problems found."""
    wanted: list[_Wanted] = []
    problems: list[str] = []
    files = sorted(p for pattern in ("*.yaml", "*.yml") for p in directory.rglob(pattern) if p.is_file())
    for path in files:
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problems.append(f"{path}: {where}not YAML: {getattr(exc, 'problem', None) or exc}")
            continue
        for number, document in enumerate(documents, 1):
            if document is None:
                continue
            metadata = document.get("metadata") if isinstance(document, dict) else None
            if not isinstance(metadata, dict) or not metadata.get("name"):
                problems.append(f"{path}: document {number}: not a Kubernetes object (no metadata.name)")
                continue
            kind_key = (str(document.get("apiVersion")), str(document.get("kind")))
            resource = KINDS.get(kind_key)
            if resource is None:
                known = ", ".join(kind for _, kind in KINDS)
                problems.append(f"{path}: document {number}: kind {kind_key[1]} ({kind_key[0]}) is not applied "
                                f"by mtproxy dev (only {known})")
                continue
            namespace = str(metadata.get("namespace") or "default") if resource.namespaced else None
            body = {k: v for k, v in document.items() if k != "status"}
            body["metadata"] = {**metadata, **({"namespace": namespace} if namespace else {})}
            wanted.append(_Wanted(key=(resource, namespace, str(metadata["name"])), body=body, source=str(path)))
    wanted.sort(key=lambda w: w.key[0] is not NAMESPACES)
    return wanted, problems


def _contains(live: Any, wanted: Any) -> bool:
    """Whether every value ``wanted`` gives is in ``live`` (the server may add defaults)."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(k in live and _contains(live[k], v) for k, v in wanted.items())
    return bool(live == wanted)


def _differs(current: Mapping[str, Any], body: Mapping[str, Any], last: Mapping[str, Any] | None) -> bool:
    """Whether ``current`` must be replaced by ``body``.

    The server defaults fields the file leaves out, so the live object is compared as a
    superset of the file; a field removed from the file leaves the live one a superset
    still, so a file that changed since the last write (``last``) is written regardless.
    """
    if body != last:
        return True
    fields = {k: v for k, v in body.items() if k not in _IGNORED_FIELDS}
    metadata = body.get("metadata") or {}
    fields["metadata"] = {f: metadata[f] for f in ("labels", "annotations") if metadata.get(f)}
    return not _contains(current, fields)


class DirectoryApplier:
    """Applies ``directory`` to the API server of ``kube`` now and after every change."""

    def __init__(self, kube: KubeClient, directory: Path, *, debounce_ms: int = 300) -> None:
        self._kube = kube
        self.directory = directory
        self._debounce_ms = debounce_ms
        self._applied: dict[ObjectKey, dict[str, Any]] = {}
        """What this applier last wrote (or found equal), by object."""
        self._objects = 0
        self._applies = 0
        self._writes = 0
        self._last_pass_at: float | None = None
        self._problems: tuple[str, ...] = ()
        self._logged: set[str] = set()

    def statistics(self) -> ApplierStatistics:
        """A snapshot for the console."""
        return ApplierStatistics(
            directory=str(self.directory),
            objects=self._objects,
            applies=self._applies,
            writes=self._writes,
            last_pass_at=self._last_pass_at,
            problems=self._problems,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply once, report started, then apply again after every change until cancelled."""
        await self.apply_directory()
        task_status.started()
        async for changes in awatch(self.directory, debounce=self._debounce_ms, recursive=True):
            logger.info("dev objects changed", extra={"files": sorted({path for _, path in changes})})
            await self.apply_directory()

    async def apply_directory(self) -> None:
        """One pass: make the API server hold what the files hold (see the module docstring)."""
        wanted, problems = await trio.to_thread.run_sync(read_objects, self.directory)
        applied: dict[ObjectKey, dict[str, Any]] = {}
        for item in wanted:
            try:
                await self._apply(item, self._applied.get(item.key))
            except (APIError, TransportError) as exc:
                problems.append(f"{item.source}: {_describe(item.key)}: {exc}")
            else:
                applied[item.key] = item.body
        for key in sorted(set(self._applied) - {w.key for w in wanted}, key=_describe):
            resource, namespace, name = key
            if resource is NAMESPACES:
                continue
            with contextlib.suppress(NotFound):
                try:
                    await self._kube.delete(resource, namespace, name)
                except (APIError, TransportError) as exc:
                    problems.append(f"{_describe(key)}: not deleted: {exc}")
                    applied[key] = self._applied[key]
                    continue
                self._writes += 1
                logger.info("dev object deleted", extra={"object": _describe(key)})
        self._applied = applied
        self._objects = len(wanted)
        self._applies += 1
        self._last_pass_at = time.time()
        self._problems = tuple(problems)
        for problem in problems:
            if problem not in self._logged:
                logger.warning("dev object not applied", extra={"problem": problem})
        self._logged = set(problems)

    async def _apply(self, item: _Wanted, last: Mapping[str, Any] | None) -> None:
        resource, namespace, name = item.key
        try:
            current = await self._kube.get(resource, namespace, name)
        except NotFound:
            await self._kube.create(resource, namespace, item.body)
            self._writes += 1
            logger.info("dev object created", extra={"object": _describe(item.key), "file": item.source})
            return
        if not _differs(current, item.body, last):
            return
        version = (current.get("metadata") or {}).get("resourceVersion")
        body = {**item.body, "metadata": {**item.body["metadata"], "resourceVersion": version}}
        await self._kube.update(resource, namespace, body)
        self._writes += 1
        logger.info("dev object replaced", extra={"object": _describe(item.key), "file": item.source})
