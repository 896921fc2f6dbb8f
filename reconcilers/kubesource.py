"""Tenants and jobs from MetricAccess objects in the cluster, kept current by an informer.

Level-based: a change only marks its namespace (for the policy) and its object (for the
job) dirty; a single task then recomputes exactly those from the informer's store and
publishes the complete result, so bursts of events coalesce and nothing depends on event
order. A deleted MetricAccess revokes its access at once (the original kept it until a
restart). An object that does not validate is logged with its field path and grants
nothing; every other object keeps being served. Writing status back is the status
reconciler's job, not this one's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio
from marshmallow import ValidationError

from mtproxy.api import GROUP, PLURAL, VERSION, Config, MetricAccess, MetricAccessSchema, flatten_messages
from mtproxy.controller import Change, Informer, KubeClient, Resource
from mtproxy.proxy import AccessPolicy
from mtproxy.reconcilers.metricaccess import JobDenied, desired_job
from mtproxy.reconcilers.tenants import desired_policy
from mtproxy.remotewrite.job import RemoteWriteJob

__all__ = ["METRICACCESSES", "KubernetesTenantSource"]

logger = logging.getLogger(__name__)

METRICACCESSES = Resource(group=GROUP, version=VERSION, plural=PLURAL)


class KubernetesTenantSource:
    """Informer-driven policies and jobs."""

    def __init__(
        self,
        client: KubeClient,
        *,
        config: Config,
        publish_policies: Callable[[Mapping[str, AccessPolicy]], None],
        publish_jobs: Callable[[Mapping[str, RemoteWriteJob]], None] | None = None,
    ) -> None:
        watched = config.tenants.watch_namespaces
        single = watched[0] if len(watched) == 1 and not config.tenants.watch_all_namespaces else None
        self._namespaces = frozenset(watched) if watched and not config.tenants.watch_all_namespaces else None
        self._config = config
        self._informer = Informer(client, METRICACCESSES, namespace=single)
        self._informer.add_handler(self._on_change)
        self._publish_policies = publish_policies
        self._publish_jobs = publish_jobs
        self._dirty_namespaces: set[str] = set()
        self._dirty_objects: set[tuple[str, str]] = set()
        self._wakeup = trio.Event()
        self._decoded: dict[tuple[str, str], tuple[str, MetricAccess | None]] = {}
        self._policies: dict[str, AccessPolicy] = {}
        self._jobs: dict[str, RemoteWriteJob] = {}
        self.denied: dict[str, str] = {}

    def informers(self) -> list[Informer]:
        """The informer the manager must run and wait for."""
        return [self._informer]

    def has_synced(self) -> bool:
        """Whether the first list has been applied."""
        return self._informer.has_synced()

    def _on_change(self, change: Change) -> None:
        if self._namespaces is not None and change.namespace not in self._namespaces:
            return
        self._dirty_namespaces.add(change.namespace)
        self._dirty_objects.add((change.namespace, change.name))
        self._wakeup.set()

    def _decode(self, namespace: str, name: str, raw: dict[str, Any]) -> MetricAccess | None:
        version = str((raw.get("metadata") or {}).get("resourceVersion", ""))
        cached = self._decoded.get((namespace, name))
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            access: MetricAccess | None = MetricAccessSchema().load(raw)
        except ValidationError as exc:
            access = None
            for problem in flatten_messages(exc.messages):
                logger.error(
                    "metricaccess invalid", extra={"metricaccess": f"{namespace}/{name}", "problem": str(problem)}
                )
        self._decoded[(namespace, name)] = (version, access)
        return access

    def _recompute(self) -> None:
        namespaces, objects = self._dirty_namespaces, self._dirty_objects
        self._dirty_namespaces, self._dirty_objects = set(), set()
        store = self._informer.store
        for namespace in namespaces:
            accesses = [
                access
                for name, raw in store.in_namespace(namespace).items()
                if (access := self._decode(namespace, name, raw)) is not None
            ]
            decision = desired_policy(namespace, accesses, guardrails=self._config.guardrails)
            for key, reason in decision.denied:
                self.denied[key] = reason
            if decision.policy is None:
                self._policies.pop(namespace, None)
            else:
                self._policies[namespace] = decision.policy
        for namespace, name in objects:
            key = f"{namespace}/{name}"
            raw = store.get(namespace, name)
            access = self._decode(namespace, name, raw) if raw is not None else None
            if raw is None:
                self._decoded.pop((namespace, name), None)
                self.denied.pop(key, None)
            job = (
                desired_job(access, self._config) if access is not None and self._config.remote_write.enabled else None
            )
            if isinstance(job, JobDenied):
                self.denied[key] = job.message
                job = None
            if job is None:
                self._jobs.pop(key, None)
            else:
                self._jobs[key] = job
        self._publish_policies(dict(self._policies))
        if self._publish_jobs is not None:
            self._publish_jobs(dict(self._jobs))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish after every burst of changes until cancelled (the informer runs in the manager)."""
        await self._informer.wait_synced()
        self._recompute()
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            await trio.sleep(0)  # let a burst of handler calls land before recomputing
            self._recompute()
