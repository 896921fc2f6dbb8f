"""The MetricAccess controller: objects → verdicts → tenant policies and remote-write jobs.

It runs on every replica (the proxy everywhere needs the policies), as two controllers on
the ``controller`` package's work queues:

- ``metricaccess`` (key: the object): judges the object (``reconcilers.verdict``) when
  its fingerprint (uid, generation, labels, annotations) changed, updates the job set,
  asks the ``tenants`` controller to rebuild the namespace, and tells the status writer;
- ``tenants`` (key: the namespace): merges the verdicts in force into the namespace's
  ``AccessPolicy`` and publishes every policy at once.

Informer (or files) events only enqueue keys; reconciles read the current object from the
store, never the event (level-based). An update that leaves the fingerprint unchanged
(every status write, ours included) re-runs no spec work: it only reaches the status
writer, which repairs a status someone else changed. A resync every ``resync_s`` hands
every object to the status writer again. A failing reconcile is retried with backoff by
the controller and never stops the others.

Before it reports started, the controller judges every object once and publishes the
complete policies and jobs, so a replica is never ready with half its tenants.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from mtproxy.api import Config
from mtproxy.controller import Change, ChangeType, Controller, ControllerStatistics, Request, Result, StoreReader
from mtproxy.proxy import AccessPolicy
from mtproxy.reconcilers.tenants import policy_of
from mtproxy.reconcilers.verdict import Verdict, fingerprint_of, judge
from mtproxy.remotewrite.job import RemoteWriteJob

__all__ = ["AccessControllerStatistics", "MetricAccessController", "ObjectSource"]

logger = logging.getLogger(__name__)

RawObject = dict[str, Any]


class ObjectSource(Protocol):
    """Where MetricAccess objects come from: an informer, or the files watcher."""

    @property
    def store(self) -> StoreReader[RawObject]: ...

    def add_handler(self, handler: Callable[[Change], None]) -> None: ...

    def has_synced(self) -> bool: ...

    async def wait_synced(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessControllerStatistics:
    """Verdict counts and the two controllers' queues."""

    objects: int
    in_force: int
    invalid: int
    denied: int
    tenants: int
    jobs: int
    synced: bool
    controllers: tuple[ControllerStatistics, ...]


class MetricAccessController:
    """Keeps verdicts, policies and jobs equal to the objects of a source."""

    def __init__(
        self,
        source: ObjectSource,
        *,
        config: Config,
        publish_policies: Callable[[Mapping[str, AccessPolicy]], None],
        publish_jobs: Callable[[Mapping[str, RemoteWriteJob]], None] | None = None,
        notify_status: Callable[[str], None] | None = None,
        namespaces: frozenset[str] | None = None,
        workers: int = 2,
        resync_s: float = 300.0,
    ) -> None:
        if resync_s <= 0:
            raise ValueError(f"resync_s: must be positive, got {resync_s}")
        self._source = source
        self._config = config
        self._publish_policies = publish_policies
        self._publish_jobs = publish_jobs
        self._notify_status = notify_status
        self._namespaces = namespaces
        self._resync_s = resync_s
        self.objects = Controller("metricaccess", self._reconcile_object, workers=workers)
        self.tenants = Controller("tenants", self._reconcile_namespace, workers=1)
        self._verdicts: dict[str, dict[str, Verdict]] = defaultdict(dict)
        self._policies: dict[str, AccessPolicy] = {}
        self._jobs: dict[str, RemoteWriteJob] = {}
        self._logged: set[tuple[str, int | None, str]] = set()
        self._synced = trio.Event()
        source.add_handler(self.on_change)

    # --- what others read ----------------------------------------------------------------

    def verdict(self, key: str) -> Verdict | None:
        """The verdict on ``namespace/name``, or None when there is no such object (yet)."""
        namespace, _, name = key.partition("/")
        return self._verdicts.get(namespace, {}).get(name)

    def verdicts(self) -> list[Verdict]:
        """Every verdict, by key."""
        return sorted((v for by_name in self._verdicts.values() for v in by_name.values()), key=lambda v: v.key)

    def verdicts_in(self, namespace: str) -> list[Verdict]:
        """The verdicts on one namespace's objects, by name."""
        by_name = self._verdicts.get(namespace, {})
        return [by_name[name] for name in sorted(by_name)]

    def has_synced(self) -> bool:
        """Whether every object of the first list has been judged and published."""
        return self._synced.is_set()

    def statistics(self) -> AccessControllerStatistics:
        """A snapshot for /metrics, /health and the console."""
        verdicts = [v for by_name in self._verdicts.values() for v in by_name.values()]
        return AccessControllerStatistics(
            objects=len(verdicts),
            in_force=sum(1 for v in verdicts if v.in_force),
            invalid=sum(1 for v in verdicts if v.access is None),
            denied=sum(1 for v in verdicts if v.access is not None and v.guardrail is not None),
            tenants=len(self._policies),
            jobs=len(self._jobs),
            synced=self.has_synced(),
            controllers=(self.objects.statistics(), self.tenants.statistics()),
        )

    # --- events --------------------------------------------------------------------------

    def _watched(self, namespace: str) -> bool:
        return self._namespaces is None or namespace in self._namespaces

    def on_change(self, change: Change) -> None:
        """Informer handler: enqueue the object, or only its status when its spec work is unchanged."""
        if not self._watched(change.namespace):
            return
        if (
            change.type is ChangeType.UPDATED
            and change.old is not None
            and fingerprint_of(change.old) == fingerprint_of(change.new)
            and fingerprint_of(change.new)[1] is not None  # no generation (files): compare by judging
        ):
            self._status(f"{change.namespace}/{change.name}")
            return
        self.objects.enqueue(change.namespace, change.name)

    def _status(self, key: str) -> None:
        if self._notify_status is not None:
            self._notify_status(key)

    # --- reconciles ----------------------------------------------------------------------

    def _judge(self, namespace: str, name: str) -> bool:
        """Bring the verdict of one object up to date; True when it changed."""
        key = f"{namespace}/{name}"
        raw = self._source.store.get(namespace, name)
        by_name = self._verdicts[namespace]
        if raw is None:
            removed = by_name.pop(name, None)
            if not by_name:
                del self._verdicts[namespace]
            self._jobs.pop(key, None)
            return removed is not None
        previous = by_name.get(name)
        fingerprint = fingerprint_of(raw)
        if previous is not None and previous.fingerprint == fingerprint and fingerprint[1] is not None:
            return False
        verdict = judge(raw, self._config)
        if previous is not None and previous == verdict:
            return False
        by_name[name] = verdict
        if verdict.job is not None:
            self._jobs[key] = verdict.job
        else:
            self._jobs.pop(key, None)
        self._log(verdict)
        return True

    def _log(self, verdict: Verdict) -> None:
        if verdict.in_force or verdict.reason is None:
            return
        logged = (verdict.key, verdict.generation, verdict.message)
        if logged in self._logged:
            return
        self._logged.add(logged)
        logger.warning(
            "metricaccess not in force",
            extra={
                "metricaccess": verdict.key,
                "generation": verdict.generation,
                "reason": verdict.reason.value,
                "problem": verdict.message[:1024],
            },
        )

    def _rebuild(self, namespace: str) -> None:
        grants = [g for v in self._verdicts.get(namespace, {}).values() if (g := v.grant) is not None]
        policy = policy_of(namespace, grants)
        if policy is None:
            self._policies.pop(namespace, None)
        else:
            self._policies[namespace] = policy

    def _publish(self, *, jobs: bool) -> None:
        self._publish_policies(dict(self._policies))
        if jobs and self._publish_jobs is not None:
            self._publish_jobs(dict(self._jobs))

    async def _reconcile_object(self, request: Request) -> Result:
        if self._judge(request.namespace, request.name):
            self.tenants.enqueue(request.namespace, "")
            if self._publish_jobs is not None:
                self._publish_jobs(dict(self._jobs))
        self._status(f"{request.namespace}/{request.name}")
        await trio.lowlevel.checkpoint()
        return Result()

    async def _reconcile_namespace(self, request: Request) -> Result:
        self._rebuild(request.namespace)
        self._publish(jobs=False)
        await trio.lowlevel.checkpoint()
        return Result()

    # --- running -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Judge everything listed, publish, then follow changes until cancelled."""
        await self._source.wait_synced()
        store = self._source.store
        for namespace in store.namespaces():
            if not self._watched(namespace):
                continue
            for name in list(store.in_namespace(namespace)):
                self._judge(namespace, name)
                await trio.lowlevel.checkpoint()
            self._rebuild(namespace)
        self._publish(jobs=True)
        self._synced.set()
        logger.info(
            "metricaccess verdicts ready",
            extra={"objects": len(self.verdicts()), "tenants": len(self._policies), "jobs": len(self._jobs)},
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self.objects.run)
            await nursery.start(self.tenants.run)
            nursery.start_soon(self._resync)
            task_status.started()

    async def _resync(self) -> None:
        while True:
            await trio.sleep(self._resync_s)
            for verdict in self.verdicts():
                self._status(verdict.key)
