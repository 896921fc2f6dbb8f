"""Tenants and jobs from a directory of MetricAccess files (``tenants.source: files``).

For running without Kubernetes: every ``*.yaml``/``*.yml``/``*.json`` file in the
directory holds MetricAccess documents (multi-document YAML allowed). On start, and on
every change of the directory (filesystem events through ``watchfiles``, not polling),
all files are read again and the complete set of policies and jobs is published, so the
result is always level-based: it never depends on which edit happened first.

A bad document (invalid YAML, a schema error, a duplicate ``namespace/name``) is logged
with its file and field path and left out; every other object is still served. A file
being written may be read half-way; the next event reads it whole.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml
from marshmallow import ValidationError

from mtproxy.api import Config, MetricAccess, MetricAccessSchema, flatten_messages
from mtproxy.proxy import AccessPolicy
from mtproxy.reconcilers.metricaccess import JobDenied, desired_job
from mtproxy.reconcilers.tenants import desired_policy
from mtproxy.remotewrite.job import RemoteWriteJob

__all__ = ["DirectoryContents", "FilesSource", "read_directory", "read_directory_files"]

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


class FilesSource:
    """Publishes the directory's policies and jobs now and after every change."""

    def __init__(
        self,
        directory: str | Path,
        *,
        config: Config,
        publish_policies: Callable[[Mapping[str, AccessPolicy]], None],
        publish_jobs: Callable[[Mapping[str, RemoteWriteJob]], None] | None = None,
    ) -> None:
        self._directory = Path(directory)
        self._config = config
        self._publish_policies = publish_policies
        self._publish_jobs = publish_jobs
        self.synced = trio.Event()
        self.last_problems: tuple[str, ...] = ()
        self.denied: dict[str, str] = {}

    def has_synced(self) -> bool:
        """Whether the directory has been read once."""
        return self.synced.is_set()

    def informers(self) -> list[Any]:
        """None: files mode needs no Kubernetes."""
        return []

    def reload(self) -> None:
        """Read the directory and publish everything (sync: files are small)."""
        contents = read_directory(self._directory)
        for problem in contents.problems:
            logger.error("metricaccess file invalid", extra={"problem": problem})
        by_namespace: dict[str, list[MetricAccess]] = defaultdict(list)
        for access in contents.objects:
            by_namespace[access.metadata.namespace].append(access)
        policies: dict[str, AccessPolicy] = {}
        denied: dict[str, str] = {}
        for namespace, objects in by_namespace.items():
            decision = desired_policy(namespace, objects, guardrails=self._config.guardrails)
            denied.update(dict(decision.denied))
            if decision.policy is not None:
                policies[namespace] = decision.policy
        jobs: dict[str, RemoteWriteJob] = {}
        if self._config.remote_write.enabled:
            for access in contents.objects:
                job = desired_job(access, self._config)
                if isinstance(job, JobDenied):
                    denied[access.key] = job.message
                elif job is not None:
                    jobs[job.key] = job
        for key, reason in denied.items():
            logger.warning("metricaccess denied by guardrails", extra={"metricaccess": key, "reason": reason})
        self.last_problems = contents.problems
        self.denied = denied
        self._publish_policies(policies)
        if self._publish_jobs is not None:
            self._publish_jobs(jobs)
        logger.info(
            "tenants loaded",
            extra={
                "directory": str(self._directory),
                "tenants": len(policies),
                "jobs": len(jobs),
                "problems": len(contents.problems),
            },
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load, report started, then reload on every change of the directory until cancelled."""
        from watchfiles import awatch

        self.reload()
        self.synced.set()
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
