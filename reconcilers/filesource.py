"""MetricAccess objects from a directory of files (``tenants.source: files``).

For running without Kubernetes: every ``*.yaml``/``*.yml``/``*.json`` file in the
directory holds MetricAccess documents (multi-document YAML allowed). ``FilesSource`` is
an object source like an informer: on start, and on every change of the directory
(filesystem events through ``watchfiles``, not polling), all files are read again into
a store of raw objects, and the differences are handed to the handlers as changes. The
MetricAccess controller (``reconcilers.accesscontroller``) judges them exactly as it
judges objects from the cluster: one derivation of policies and jobs for both modes.

A document that cannot be an object (invalid YAML, no name or namespace, a duplicate
``namespace/name``) is logged with its file and left out; a schema error is the
verdict's to report, with its field path. Every other object is still served. A file
being written may be read half-way; the next event reads it whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml
from marshmallow import ValidationError

from mtproxy.api import MetricAccess, MetricAccessSchema, flatten_messages
from mtproxy.controller import Change, ChangeType, Store, StoreReader

__all__ = ["DirectoryContents", "FilesSource", "read_directory", "read_directory_documents", "read_directory_files"]

logger = logging.getLogger(__name__)

_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryContents:
    """The valid objects of a directory and the problems of the rest."""

    objects: tuple[MetricAccess, ...]
    problems: tuple[str, ...]


def read_directory(directory: Path) -> DirectoryContents:
    """Every valid MetricAccess in ``directory`` (not recursive), in file order."""
    if not directory.is_dir():
        return DirectoryContents(objects=(), problems=(f"{directory}: not a directory",))
    return read_directory_files(sorted(p for p in directory.iterdir() if p.suffix in _SUFFIXES and p.is_file()))


def read_directory_files(paths: Iterable[str | Path]) -> DirectoryContents:
    """Every valid MetricAccess in the given files, in order."""
    objects: dict[str, MetricAccess] = {}
    problems: list[str] = []
    for path in map(Path, paths):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
            problems.append(f"{path}: cannot read: {str(exc)[:256]}")
            continue
        for index, document in enumerate(documents):
            if not isinstance(document, dict) or document.get("kind") != "MetricAccess":
                continue
            try:
                access: MetricAccess = MetricAccessSchema().load(document)
            except ValidationError as exc:
                for problem in flatten_messages(exc.messages):
                    problems.append(f"{path} document {index + 1}: {problem}")
                continue
            if not access.metadata.namespace:
                problems.append(f"{path} document {index + 1}: metadata.namespace: required in files mode")
                continue
            if access.key in objects:
                problems.append(f"{path} document {index + 1}: {access.key} is defined twice; the first one is used")
                continue
            objects[access.key] = access
    return DirectoryContents(objects=tuple(objects.values()), problems=tuple(problems))


def read_directory_documents(directory: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], tuple[str, ...]]:
    """Every MetricAccess document of ``directory`` by (namespace, name), raw, and the problems."""
    if not directory.is_dir():
        return {}, (f"{directory}: not a directory",)
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    problems: list[str] = []
    for path in sorted(p for p in directory.iterdir() if p.suffix in _SUFFIXES and p.is_file()):
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
            problems.append(f"{path}: cannot read: {str(exc)[:256]}")
            continue
        for index, document in enumerate(loaded):
            if not isinstance(document, dict) or document.get("kind") != "MetricAccess":
                continue
            metadata = document.get("metadata")
            namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
            name = metadata.get("name") if isinstance(metadata, dict) else None
            if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
                problems.append(f"{path} document {index + 1}: metadata.name and metadata.namespace are required")
                continue
            if (namespace, name) in documents:
                problems.append(f"{path} document {index + 1}: {namespace}/{name} is defined twice; the first is used")
                continue
            documents[(namespace, name)] = document
    return documents, tuple(problems)


class FilesSource:
    """An object source over a directory: a store of raw documents, changes to handlers."""

    def __init__(self, directory: str | Path) -> None:
        self._directory = Path(directory)
        self._store: Store[dict[str, Any]] = Store()
        self._handlers: list[Callable[[Change], None]] = []
        self._synced = trio.Event()
        self.last_problems: tuple[str, ...] = ()
        self.reloads = 0

    @property
    def store(self) -> StoreReader[dict[str, Any]]:
        """The documents read last, by namespace and name."""
        return self._store

    def add_handler(self, handler: Callable[[Change], None]) -> None:
        """Register a handler before ``run``; it is called once per changed document."""
        self._handlers.append(handler)

    def has_synced(self) -> bool:
        """Whether the directory has been read once."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait for the first read."""
        await self._synced.wait()

    def reload(self) -> None:
        """Read the directory; store the documents; tell the handlers what changed."""
        documents, problems = read_directory_documents(self._directory)
        for problem in problems:
            if problem not in self.last_problems:
                logger.error("metricaccess file invalid", extra={"problem": problem})
        self.last_problems = problems
        previous = {(namespace, name): obj for namespace, name, obj in self._store.items()}
        self._store.replace_all(documents)
        changes: list[Change] = []
        for key, obj in documents.items():
            old = previous.get(key)
            if old is None:
                changes.append(Change(type=ChangeType.ADDED, namespace=key[0], name=key[1], old=None, new=obj))
            elif old != obj:
                changes.append(Change(type=ChangeType.UPDATED, namespace=key[0], name=key[1], old=old, new=obj))
        for key, old in previous.items():
            if key not in documents:
                changes.append(Change(type=ChangeType.DELETED, namespace=key[0], name=key[1], old=old, new=old))
        for change in changes:
            for handler in self._handlers:
                handler(change)
        self.reloads += 1
        logger.info(
            "tenant files read",
            extra={"directory": str(self._directory), "objects": len(documents), "problems": len(problems)},
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read, report started, then read again on every change of the directory until cancelled."""
        from watchfiles import awatch

        self.reload()
        self._synced.set()
        task_status.started()
        # awatch waits in a worker thread that trio cannot interrupt; without a stop event it
        # returns only on a change or after its 5 s timeout, so cancelling would hang that long
        stop = trio.Event()  # only is_set() is read from the worker thread

        async def stop_on_cancel() -> None:
            try:
                await trio.sleep_forever()
            finally:
                stop.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_cancel)
            async for _changes in awatch(self._directory, debounce=200, recursive=False, stop_event=stop):
                self.reload()
