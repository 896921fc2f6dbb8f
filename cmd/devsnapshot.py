"""What the dev console shows, as one frozen value, and the reader that takes it from the running parts.

:class:`DevSnapshot` is plain data: the console renders it (``mtproxy.cmd.console``, pure),
the plain log mode prints it, the golden test builds one by hand. :class:`SnapshotReader`
is the one place that looks at the running system, and it reads only what the parts
offer for it: ``Service.statistics()`` and the read-only views the service exposes
(verdicts, job status, published policies, the pool's target list, the informer's store
for the status the cluster holds), the demo stack's, applier's, probe's and request
buffer's ``statistics()``. It keeps the previous counters to turn them into rates.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mtproxy.cmd.devapply import DirectoryApplier
from mtproxy.cmd.devprobe import BackendProbe
from mtproxy.cmd.devrequests import RecentRequests, RequestRecord
from mtproxy.cmd.devstack import DemoStack
from mtproxy.cmd.service import Service
from mtproxy.controller import Informer, LeaderElectorStatistics, ManagerStatistics

__all__ = [
    "AccessView",
    "BackendView",
    "DestinationView",
    "DevInfo",
    "DevSnapshot",
    "JobView",
    "ServerView",
    "SnapshotReader",
    "TenantView",
    "short_destination",
]

_RATE_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerView:
    """One demo server."""

    name: str
    url: str
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendView:
    """One backend of the proxy: the pool's health, the probe's latency."""

    url: str
    healthy: bool
    latency_ms: float | None
    error: str | None
    consecutive_failures: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantView:
    """One tenant namespace with a policy, or one that only sent requests."""

    namespace: str
    objects: int
    rules: int
    per_second: float
    requests: int
    rejected: int
    errors: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessView:
    """One MetricAccess object: its conditions as the cluster holds them (or the verdict before the first write)."""

    key: str
    generation: int | None
    valid: str
    forwarding: str
    """``-`` when the object asks for no forwarding."""
    ready: str
    message: str
    """Why the first condition that is not True is so; empty when all are."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationView:
    """One destination of a job."""

    name: str
    healthy: bool
    series_last_cycle: int
    samples_forwarded: int
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobView:
    """One remote-write job."""

    key: str
    running: bool
    last_collection_ms: int | None
    series: int
    samples_per_s: float
    samples_forwarded: int
    destinations: tuple[DestinationView, ...]
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DevInfo:
    """What does not change while ``mtproxy dev`` runs."""

    proxy_url: str
    kube_kind: str
    kube_url: str
    kubeconfig: str
    objects_dir: str
    commands: tuple[str, ...]
    started_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DevSnapshot:
    """Everything the console shows at one moment."""

    info: DevInfo
    taken_at: float
    """Wall-clock time; the console shows ages relative to it, so rendering stays pure."""
    phase: str
    leader: str
    servers: tuple[ServerView, ...] = ()
    backends: tuple[BackendView, ...] = ()
    tenants: tuple[TenantView, ...] = ()
    objects: tuple[AccessView, ...] = ()
    jobs: tuple[JobView, ...] = ()
    requests: tuple[RequestRecord, ...] = ()
    notes: tuple[str, ...] = ()
    """Problems to show above everything: missing binaries, files not applied, warnings logged."""


def short_destination(name: str) -> str:
    """``http://prometheus.team-a.svc.cluster.local:9090/api/v1/write`` → ``prometheus.team-a:9090``."""
    netloc = urlsplit(name).netloc or name
    return netloc.replace(".svc.cluster.local", "")


def _conditions(obj: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    status = (obj or {}).get("status") or {}
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}


def _leader_text(leader: LeaderElectorStatistics | None) -> str:
    if leader is None:
        return "no election"
    if leader.leading:
        return f"this process ({leader.identity})"
    return leader.holder or "nobody yet"


class SnapshotReader:
    """Reads a :class:`DevSnapshot` from the running parts; call ``read`` about once a second."""

    def __init__(
        self,
        *,
        service: Service,
        info: DevInfo,
        requests: RecentRequests,
        probe: BackendProbe,
        stack: DemoStack | None = None,
        applier: DirectoryApplier | None = None,
        notes: Callable[[], Sequence[str]] = tuple,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._info = info
        self._requests = requests
        self._probe = probe
        self._stack = stack
        self._applier = applier
        self._notes = notes
        self._clock = clock
        self._samples: dict[str, collections.deque[tuple[float, int]]] = {}

    def read(self) -> DevSnapshot:
        """A snapshot of now."""
        now = self._clock()
        parts = self._service.statistics()
        manager: ManagerStatistics = parts["manager"]
        notes = list(self._notes())
        servers: tuple[ServerView, ...] = ()
        if self._stack is not None:
            stack = self._stack.statistics()
            servers = (
                ServerView(name="demo exporter", url=self._stack.exporter_url, state="running"),
                *(
                    ServerView(
                        name=s.name,
                        url=s.url,
                        state=s.state.value + (f" ({s.exit_code})" if s.exit_code not in (None, 0) else ""),
                    )
                    for s in stack.servers
                ),
            )
        if self._applier is not None:
            notes.extend(self._applier.statistics().problems)
        return DevSnapshot(
            info=self._info,
            taken_at=now,
            phase=manager.phase,
            leader=_leader_text(parts.get("leader")),
            servers=servers,
            backends=self._backends(),
            tenants=self._tenants(),
            objects=self._objects(),
            jobs=self._jobs(now),
            requests=self._requests.statistics(newest=8).recent,
            notes=tuple(notes),
        )

    def _backends(self) -> tuple[BackendView, ...]:
        probes = self._probe.statistics()
        views = []
        for target in self._service.pool.targets():
            probe = probes.get(target.url)
            views.append(
                BackendView(
                    url=target.url,
                    healthy=target.healthy,
                    latency_ms=probe.latency_ms if probe is not None else None,
                    error=probe.error if probe is not None else None,
                    consecutive_failures=target.consecutive_failures,
                )
            )
        return tuple(views)

    def _tenants(self) -> tuple[TenantView, ...]:
        policies = self._service.tenants.all_policies()
        requests = self._requests.statistics(newest=0).tenants
        views = []
        for namespace in sorted(set(policies) | {t for t in requests if t}):
            policy = policies.get(namespace)
            counts = requests.get(namespace)
            views.append(
                TenantView(
                    namespace=namespace,
                    objects=len(policy.sources) if policy is not None else 0,
                    rules=len(policy.rules) if policy is not None else 0,
                    per_second=counts.per_second if counts is not None else 0.0,
                    requests=counts.requests if counts is not None else 0,
                    rejected=counts.rejected if counts is not None else 0,
                    errors=counts.errors if counts is not None else 0,
                )
            )
        return tuple(views)

    def _objects(self) -> tuple[AccessView, ...]:
        source = self._service.source
        views = []
        for verdict in self._service.access.verdicts():
            obj = source.store.get(verdict.namespace, verdict.name) if isinstance(source, Informer) else None
            conditions = _conditions(obj)
            if conditions:
                valid = conditions.get("Valid", {})
                forwarding = conditions.get("Forwarding")
                ready = conditions.get("Ready", {})
                first_wrong = next(
                    (c for c in (valid, forwarding or {}, ready) if c and c.get("status") != "True"), {}
                )
                views.append(
                    AccessView(
                        key=verdict.key,
                        generation=verdict.generation,
                        valid=str(valid.get("status", "Unknown")),
                        forwarding=str(forwarding.get("status", "Unknown")) if forwarding is not None else "-",
                        ready=str(ready.get("status", "Unknown")),
                        message=" ".join(str(first_wrong.get(k) or "") for k in ("reason", "message")).strip(),
                    )
                )
            else:
                # before the status writer's first visit (or files mode): what the verdict says
                views.append(
                    AccessView(
                        key=verdict.key,
                        generation=verdict.generation,
                        valid="True" if verdict.in_force else "False",
                        forwarding="Unknown" if verdict.job is not None else "-",
                        ready="Unknown" if verdict.in_force else "False",
                        message="" if verdict.in_force else f"{verdict.reason.value if verdict.reason else ''} "
                        f"{verdict.message}".strip(),
                    )
                )
        return tuple(views)

    def _jobs(self, now: float) -> tuple[JobView, ...]:
        runner = self._service.runner
        wanted = sorted(v.key for v in self._service.access.verdicts() if v.job is not None)
        views = []
        for key in wanted:
            status = runner.job_status(key) if runner is not None else None
            if status is None:
                views.append(
                    JobView(
                        key=key, running=False, last_collection_ms=None, series=0, samples_per_s=0.0,
                        samples_forwarded=0, destinations=(), last_error=None,
                    )
                )
                continue
            samples = self._samples.setdefault(key, collections.deque())
            samples.append((now, status.samples_forwarded))
            while len(samples) > 2 and samples[0][0] < now - _RATE_WINDOW_S:
                samples.popleft()
            span = samples[-1][0] - samples[0][0]
            rate = (samples[-1][1] - samples[0][1]) / span if span > 0 else 0.0
            views.append(
                JobView(
                    key=key,
                    running=status.active,
                    last_collection_ms=status.last_collection_ms,
                    series=status.series_collected,
                    samples_per_s=max(rate, 0.0),
                    samples_forwarded=status.samples_forwarded,
                    destinations=tuple(
                        DestinationView(
                            name=short_destination(d.destination),
                            healthy=d.healthy and d.cycle_failure is None,
                            series_last_cycle=d.series_last_cycle,
                            samples_forwarded=d.samples_forwarded,
                            last_error=d.last_error,
                        )
                        for d in status.destinations
                    ),
                    last_error=status.last_error,
                )
            )
        self._samples = {k: v for k, v in self._samples.items() if k in wanted}
        return tuple(views)
