"""The composition root: a config in, the running service out (``mtproxy --config FILE``).

``open_service`` opens the connections and ``build_service`` wires the parts into a
``Service``; ``Service.run`` hands them to one ``Manager``:

- servers level (from the first second, before any cache has synced): the backend pool
  and its health checks, and the HTTP server (``/-/healthy`` at once, ``/-/ready`` and
  tenant requests once the policies are loaded, ``proxy.startgate``);
- informers: MetricAccess objects (or the files watcher), and discovery;
- always-on, every replica: the MetricAccess controller (verdicts → policies and jobs)
  and discovery's controller;
- leader only: the remote-write job runner and the status writer, each started afresh
  for every leadership term and cancelled the moment it ends.

Leader election talks to the API server over a connection of its own, so renewals never
wait behind informers' lists or status writes. Nothing here decides anything: the
decisions live in the packages it wires. Each part has ``statistics()``; the service's
``statistics()`` gathers them for ``/metrics`` and the dev console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from mtproxy.api import GROUP, PLURAL, VERSION, Config, TenantSource, parse_duration_ms
from mtproxy.cmd.enforce import explain
from mtproxy.cmd.reviewer import KubernetesReviewer
from mtproxy.cmd.secrets import KubernetesSecretReader, load_secrets_file
from mtproxy.cmd.servicemetrics import ServiceCollector
from mtproxy.controller import (
    EventRecorder,
    Informer,
    KubeClient,
    LeaderElector,
    Manager,
    Resource,
    load_cluster_config,
    open_http_client,
)
from mtproxy.proxy.app import ProxyApp
from mtproxy.proxy.auth import build_authenticator
from mtproxy.proxy.backends import BackendPool
from mtproxy.proxy.metrics import ProxyMetrics
from mtproxy.proxy.ops import CollectedJob, OpsHandler
from mtproxy.proxy.server import HTTPServer
from mtproxy.proxy.startgate import StartGate
from mtproxy.proxy.tenants import TenantPolicies
from mtproxy.reconcilers.accesscontroller import MetricAccessController
from mtproxy.reconcilers.discovery import KubernetesDiscovery
from mtproxy.reconcilers.filesource import FilesSource
from mtproxy.reconcilers.jobstate import ClusterStateStore
from mtproxy.reconcilers.statuswriter import StatusWriter
from mtproxy.reconcilers.verdict import Verdict
from mtproxy.remotewrite import (
    Collector,
    DestinationKind,
    FileStateStore,
    JobRunner,
    MemoryStateStore,
    PushgatewaySender,
    RemoteWriteJob,
    RemoteWriteSender,
    SecretReader,
    StateStore,
)

__all__ = ["METRICACCESSES", "Service", "ServiceOptions", "build_service", "open_service", "run_service"]

logger = logging.getLogger(__name__)

METRICACCESSES = Resource(group=GROUP, version=VERSION, plural=PLURAL)
_COMPONENT = f"{GROUP}/prometheus-multi-tenant-proxy"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceOptions:
    """What the command line adds to the config."""

    host: str = "0.0.0.0"
    port: int = 8080
    kubeconfig: str = ""
    leader_elect: bool = True
    leader_election_id: str = "prometheus-multi-tenant-proxy-remote-write"
    leader_election_namespace: str = "monitoring"
    """Also where remote-write progress is kept (one ConfigMap per job)."""
    handle_signals: bool = True
    identity: str = ""
    """This replica's name in the Lease; when empty, the POD_NAME variable, else the host name
    with a random suffix (two replicas on one host must not share a name: both would lead)."""
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0


class _Collected:
    """``/collected-metrics`` reads the runner's last cycle, per tenant namespace."""

    def __init__(self, runner: JobRunner) -> None:
        self._runner = runner

    def collected_jobs(self, namespace: str) -> Sequence[CollectedJob]:
        return [
            CollectedJob(key=key, read_series=self._runner.forwarded_reader(key))
            for key in self._runner.job_keys()
            if key.split("/", 1)[0] == namespace
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Connections:
    """What ``open_service`` opens and ``build_service`` uses."""

    backend_transport: httpx.AsyncBaseTransport
    remote_http: httpx.AsyncClient
    """Every outbound call but backend queries and the API server."""
    kube: KubeClient | None
    election_kube: KubeClient | None
    """A client on a connection of its own, for leader election only."""
    state_kube: KubeClient | None
    """A client with its own rate limit, for remote-write progress."""


@dataclass(slots=True, kw_only=True)
class Service:
    """The wired parts; ``run`` runs them until SIGTERM (or cancellation)."""

    config: Config
    options: ServiceOptions
    manager: Manager
    pool: BackendPool
    tenants: TenantPolicies
    access: MetricAccessController
    source: Informer | FilesSource
    server: HTTPServer
    app: ProxyApp
    metrics: ProxyMetrics
    runner: JobRunner | None = None
    status_writer: StatusWriter | None = None
    elector: LeaderElector | None = None
    state_store: StateStore | None = None
    discovery: KubernetesDiscovery | None = None

    def statistics(self) -> dict[str, Any]:
        """Every part's snapshot, by part name (what /metrics and the console read)."""
        parts: dict[str, Any] = {
            "manager": self.manager.statistics(),
            "backends": self.pool.statistics(),
            "targets": self.pool.targets(),
            "queue": self.app.queue.statistics(),
            "access": self.access.statistics(),
        }
        if isinstance(self.source, Informer):
            parts["informer"] = self.source.statistics()
        if self.runner is not None:
            parts["runner"] = self.runner.statistics()
        if self.status_writer is not None:
            parts["status"] = self.status_writer.statistics()
        if self.elector is not None:
            parts["leader"] = self.elector.statistics()
        if isinstance(self.state_store, ClusterStateStore):
            parts["state"] = self.state_store.statistics()
        return parts

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every part under the manager until it stops."""
        logger.info(
            "service starting",
            extra={
                "port": self.options.port,
                "tenants_source": self.config.tenants.source.value,
                "remote_write": self.runner is not None,
                "leader_election": self.elector is not None,
            },
        )
        try:
            await self.manager.run(task_status=task_status)
        finally:
            self.app.close()  # the worker processes go with the service, not at interpreter exit


def _unique_identity() -> str:
    """``<host name>_<uuid>``, as controller-runtime names a replica outside a pod."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _verdict_summary(verdict: Verdict) -> dict[str, Any]:
    """One object's verdict for ``/debug/tenants`` (its own namespace's tenant only)."""
    return {
        "name": verdict.name,
        "generation": verdict.generation,
        "inForce": verdict.in_force,
        "reason": verdict.reason.value if verdict.reason is not None else None,
        "message": verdict.message or None,
        "rules": [rule.selector() for rule in verdict.rules],
        "forwarding": verdict.job is not None,
    }


def _needs_kubernetes(config: Config) -> bool:
    return (
        config.tenants.source is TenantSource.KUBERNETES
        or config.auth.type.value == "kubernetes"
        or not config.discovery.static.targets
    )


@contextlib.asynccontextmanager
async def open_service(config: Config, options: ServiceOptions) -> AsyncIterator[Service]:
    """Open the connections the config needs, build the service, and close them afterwards."""
    backend_limits = httpx.Limits(
        max_connections=config.proxy.max_concurrent_requests * 2, max_keepalive_connections=64
    )
    async with contextlib.AsyncExitStack() as stack:
        backend_transport = await stack.enter_async_context(httpx.AsyncHTTPTransport(limits=backend_limits))
        remote_http = await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(30.0)))
        kube = election_kube = state_kube = None
        if _needs_kubernetes(config):
            cluster = load_cluster_config(options.kubeconfig)
            kube_http = await stack.enter_async_context(open_http_client(cluster))
            kube = KubeClient(kube_http, config=cluster)
            election_http = await stack.enter_async_context(open_http_client(cluster, timeout_s=5.0))
            election_kube = KubeClient(election_http, config=cluster, qps=5.0, burst=10)
            state_kube = KubeClient(kube_http, config=cluster, qps=200.0, burst=400)
        yield build_service(
            config,
            options,
            Connections(
                backend_transport=backend_transport,
                remote_http=remote_http,
                kube=kube,
                election_kube=election_kube,
                state_kube=state_kube,
            ),
        )


async def run_service(config: Config, options: ServiceOptions) -> None:
    """Run until SIGTERM/SIGINT (or cancellation)."""
    async with open_service(config, options) as service:
        await service.run()


def _state_store(config: Config, options: ServiceOptions, connections: Connections) -> StateStore:
    if config.remote_write.state_dir:
        return FileStateStore(config.remote_write.state_dir)
    if config.tenants.source is TenantSource.KUBERNETES and connections.state_kube is not None:
        return ClusterStateStore(connections.state_kube, options.leader_election_namespace)
    return MemoryStateStore()


def build_service(config: Config, options: ServiceOptions, connections: Connections) -> Service:
    """Wire every part from the config (no I/O: everything starts in ``Service.run``)."""
    kube = connections.kube
    kubernetes_tenants = config.tenants.source is TenantSource.KUBERNETES
    discovery_config = config.discovery
    pool = BackendPool(
        connections.backend_transport,
        check_interval_s=parse_duration_ms(discovery_config.health_check_interval) / 1000,
        check_timeout_s=parse_duration_ms(discovery_config.health_check_timeout) / 1000,
        unhealthy_threshold=discovery_config.unhealthy_threshold,
        healthy_threshold=discovery_config.healthy_threshold,
    )
    pool.set_targets(discovery_config.static.targets)
    tenants = TenantPolicies()
    metrics = ProxyMetrics()
    reviewer = KubernetesReviewer(kube) if kube is not None else None
    authenticator = build_authenticator(config.auth, reviewer=reviewer, http=connections.remote_http)

    runner: JobRunner | None = None
    state_store: StateStore | None = None
    if config.remote_write.enabled:
        secrets: SecretReader = (
            KubernetesSecretReader(kube)
            if kube is not None and kubernetes_tenants
            else load_secrets_file(config.remote_write.secrets_file)
        )
        remote_http = connections.remote_http

        def make_sender(job: RemoteWriteJob, index: int) -> RemoteWriteSender | PushgatewaySender:
            destination = job.destinations[index]
            if destination.kind is DestinationKind.PUSHGATEWAY:
                return PushgatewaySender(remote_http, destination, namespace=job.namespace)
            return RemoteWriteSender(remote_http, destination, namespace=job.namespace, secrets=secrets)

        state_store = _state_store(config, options, connections)
        runner = JobRunner(
            collector=Collector(remote_http, source_urls=pool.healthy_targets),
            senders=make_sender,
            state_store=state_store,
            max_concurrent_jobs=config.remote_write.max_concurrent_jobs,
            safety_delay_ms=parse_duration_ms(config.remote_write.safety_delay),
        )

    source: Informer | FilesSource
    watched = config.tenants.watch_namespaces
    namespaces = frozenset(watched) if watched and not config.tenants.watch_all_namespaces else None
    if kubernetes_tenants:
        assert kube is not None
        single = next(iter(namespaces)) if namespaces is not None and len(namespaces) == 1 else None
        source = Informer(kube, METRICACCESSES, namespace=single)
    else:
        assert config.tenants.files_directory is not None
        source = FilesSource(config.tenants.files_directory)

    status_interval_s = parse_duration_ms(config.tenants.status_interval) / 1000
    status_writer: StatusWriter | None = None
    access = MetricAccessController(
        source,
        config=config,
        publish_policies=tenants.publish,
        publish_jobs=runner.set_jobs if runner is not None else None,
        notify_status=lambda key: status_writer.enqueue(key) if status_writer is not None else None,
        namespaces=namespaces,
        resync_s=max(60.0, 10 * status_interval_s),
    )
    identity = options.identity or os.environ.get("POD_NAME") or _unique_identity()
    if kubernetes_tenants and isinstance(source, Informer):
        assert kube is not None
        status_writer = StatusWriter(
            kube,
            METRICACCESSES,
            store=source.store,
            verdict_of=access.verdict,
            job_status_of=runner.job_status if runner is not None else (lambda key: None),
            forwarding_enabled=config.remote_write.enabled,
            status_interval_s=status_interval_s,
            recorder=EventRecorder(kube, controller=_COMPONENT, instance=identity),
            namespaces=namespaces,
        )
        if runner is not None:
            runner.add_listener(status_writer.enqueue)

    elector: LeaderElector | None = None
    leader_only = runner is not None or status_writer is not None
    if leader_only and options.leader_elect and connections.election_kube is not None:
        elector = LeaderElector(
            connections.election_kube,
            name=options.leader_election_id,
            namespace=options.leader_election_namespace,
            identity=identity,
            lease_duration_s=options.lease_duration_s,
            renew_deadline_s=options.renew_deadline_s,
            retry_period_s=options.retry_period_s,
        )

    ops = OpsHandler(
        config=config.proxy,
        tenants=tenants,
        backends=pool,
        metrics=metrics,
        ready=access.has_synced,
        leader=(lambda: elector.leading) if elector is not None else (lambda: None),
        collected=_Collected(runner) if runner is not None else None,
        explain=lambda namespace, query: explain(tenants.policy_for(namespace), namespace, query),
        objects=lambda namespace: [_verdict_summary(v) for v in access.verdicts_in(namespace)],
    )
    app = ProxyApp(
        config=config.proxy, tenants=tenants, authenticator=authenticator, backends=pool, metrics=metrics, ops=ops
    )
    server = HTTPServer(StartGate(app, ready=access.has_synced), host=options.host, port=options.port)

    discovery: KubernetesDiscovery | None = None
    if not config.discovery.static.targets:
        assert kube is not None
        discovery = KubernetesDiscovery(kube, config.discovery.kubernetes, publish=pool.set_targets)

    manager = Manager(elector=elector, handle_signals=options.handle_signals)
    manager.add_server(pool.run)
    manager.add_server(server.run)
    if isinstance(source, Informer):
        manager.add_informer(source)
    else:
        manager.add_runnable(source.run)
    for informer in discovery.informers() if discovery is not None else []:
        manager.add_informer(informer)
    if discovery is not None:
        manager.add_runnable(discovery.run)
    manager.add_runnable(access.run)
    if runner is not None:
        manager.add_runnable(runner.run, leader_only=True)
    if status_writer is not None:
        manager.add_runnable(status_writer.run, leader_only=True)
    service = Service(
        config=config,
        options=options,
        manager=manager,
        pool=pool,
        tenants=tenants,
        access=access,
        source=source,
        server=server,
        app=app,
        metrics=metrics,
        runner=runner,
        status_writer=status_writer,
        elector=elector,
        state_store=state_store,
        discovery=discovery,
    )
    # after the service exists: the registry collects once at registration (auto_describe)
    metrics.registry.register(ServiceCollector(service.statistics, runner=runner))
    return service
