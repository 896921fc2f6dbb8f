"""The composition root: a config in, the running service out (``mtproxy --config FILE``).

Builds every part from the config and hands them to one ``Manager``: the backend pool
and its health checks (servers level), the tenant source (files or Kubernetes
informers), the proxy's HTTP server (always on, every replica), and the remote-write
runner (leader only; with ``--leader-elect=false`` or without Kubernetes it runs here).
Nothing here decides anything: the decisions live in the packages it wires.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import trio

from mtproxy.api import Config, TenantSource, parse_duration_ms
from mtproxy.cmd.enforce import explain
from mtproxy.cmd.reviewer import KubernetesReviewer
from mtproxy.cmd.secrets import KubernetesSecretReader, load_secrets_file
from mtproxy.controller import KubeClient, LeaderElector, Manager, load_cluster_config, open_http_client
from mtproxy.proxy.app import ProxyApp
from mtproxy.proxy.auth import build_authenticator
from mtproxy.proxy.backends import BackendPool
from mtproxy.proxy.metrics import ProxyMetrics
from mtproxy.proxy.ops import CollectedJob, OpsHandler
from mtproxy.proxy.server import HTTPServer
from mtproxy.proxy.tenants import TenantPolicies
from mtproxy.reconcilers.discovery import KubernetesDiscovery
from mtproxy.reconcilers.filesource import FilesSource
from mtproxy.reconcilers.kubesource import KubernetesTenantSource
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
)

__all__ = ["ServiceOptions", "run_service"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceOptions:
    """What the command line adds to the config."""

    host: str = "0.0.0.0"
    port: int = 8080
    kubeconfig: str = ""
    leader_elect: bool = True
    leader_election_id: str = "prometheus-multi-tenant-proxy-remote-write"
    leader_election_namespace: str = "monitoring"
    handle_signals: bool = True


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


def _needs_kubernetes(config: Config) -> bool:
    return (
        config.tenants.source is TenantSource.KUBERNETES
        or config.auth.type.value == "kubernetes"
        or not config.discovery.static.targets
    )


async def run_service(config: Config, options: ServiceOptions) -> None:
    """Run until SIGTERM/SIGINT (or cancellation)."""
    backend_limits = httpx.Limits(
        max_connections=config.proxy.max_concurrent_requests * 2, max_keepalive_connections=64
    )
    async with (
        httpx.AsyncHTTPTransport(limits=backend_limits) as backend_transport,
        httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as remote_http,
    ):
        kube: KubeClient | None = None
        kube_http: httpx.AsyncClient | None = None
        if _needs_kubernetes(config):
            cluster = load_cluster_config(options.kubeconfig)
            kube_http = open_http_client(cluster)
            kube = KubeClient(kube_http, config=cluster)
        try:
            await _run(config, options, backend_transport=backend_transport, remote_http=remote_http, kube=kube)
        finally:
            if kube_http is not None:
                await kube_http.aclose()


async def _run(
    config: Config,
    options: ServiceOptions,
    *,
    backend_transport: httpx.AsyncBaseTransport,
    remote_http: httpx.AsyncClient,
    kube: KubeClient | None,
) -> None:
    """Wire and run everything; ``remote_http`` serves every outbound call but backend queries."""
    discovery = config.discovery
    pool = BackendPool(
        backend_transport,
        check_interval_s=parse_duration_ms(discovery.health_check_interval) / 1000,
        check_timeout_s=parse_duration_ms(discovery.health_check_timeout) / 1000,
        unhealthy_threshold=discovery.unhealthy_threshold,
        healthy_threshold=discovery.healthy_threshold,
    )
    pool.set_targets(discovery.static.targets)
    tenants = TenantPolicies()
    metrics = ProxyMetrics()
    reviewer = KubernetesReviewer(kube) if kube is not None else None
    authenticator = build_authenticator(config.auth, reviewer=reviewer, http=remote_http)

    runner: JobRunner | None = None
    if config.remote_write.enabled:
        secrets: SecretReader = (
            KubernetesSecretReader(kube)
            if kube is not None and config.tenants.source is TenantSource.KUBERNETES
            else load_secrets_file(config.remote_write.secrets_file)
        )

        def make_sender(job: RemoteWriteJob, index: int) -> RemoteWriteSender | PushgatewaySender:
            destination = job.destinations[index]
            if destination.kind is DestinationKind.PUSHGATEWAY:
                return PushgatewaySender(remote_http, destination, namespace=job.namespace)
            return RemoteWriteSender(remote_http, destination, namespace=job.namespace, secrets=secrets)

        store = FileStateStore(config.remote_write.state_dir) if config.remote_write.state_dir else MemoryStateStore()
        runner = JobRunner(
            collector=Collector(remote_http, source_urls=pool.healthy_targets),
            senders=make_sender,
            state_store=store,
            max_concurrent_jobs=config.remote_write.max_concurrent_jobs,
            safety_delay_ms=parse_duration_ms(config.remote_write.safety_delay),
        )

    publish_jobs = runner.set_jobs if runner is not None else None
    source: FilesSource | KubernetesTenantSource
    if config.tenants.source is TenantSource.FILES:
        assert config.tenants.files_directory is not None
        source = FilesSource(
            config.tenants.files_directory, config=config, publish_policies=tenants.publish, publish_jobs=publish_jobs
        )
    else:
        assert kube is not None
        source = KubernetesTenantSource(
            kube, config=config, publish_policies=tenants.publish, publish_jobs=publish_jobs
        )

    elector: LeaderElector | None = None
    if runner is not None and options.leader_elect and kube is not None:
        elector = LeaderElector(
            kube,
            name=options.leader_election_id,
            namespace=options.leader_election_namespace,
            identity=os.environ.get("POD_NAME") or socket.gethostname(),
        )

    ops = OpsHandler(
        config=config.proxy,
        tenants=tenants,
        backends=pool,
        metrics=metrics,
        ready=source.has_synced,
        leader=(lambda: elector.leading) if elector is not None else (lambda: None),
        collected=_Collected(runner) if runner is not None else None,
        explain=lambda namespace, query: explain(tenants.policy_for(namespace), namespace, query),
    )
    app = ProxyApp(
        config=config.proxy, tenants=tenants, authenticator=authenticator, backends=pool, metrics=metrics, ops=ops
    )
    server = HTTPServer(app, host=options.host, port=options.port)

    discovery_source: KubernetesDiscovery | None = None
    if not config.discovery.static.targets:
        assert kube is not None
        discovery_source = KubernetesDiscovery(kube, config.discovery.kubernetes, publish=pool.set_targets)

    manager = Manager(elector=elector, handle_signals=options.handle_signals)
    manager.add_server(pool.run)
    for informer in source.informers() + (discovery_source.informers() if discovery_source else []):
        manager.add_informer(informer)
    if discovery_source is not None:
        manager.add_runnable(discovery_source.run)
    manager.add_runnable(source.run)
    manager.add_runnable(server.run)
    if runner is not None:
        manager.add_runnable(runner.run, leader_only=True)
    logger.info(
        "service starting",
        extra={
            "port": options.port,
            "tenants_source": config.tenants.source.value,
            "remote_write": runner is not None,
            "leader_election": elector is not None,
        },
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
