"""Fixtures of the Kubernetes-mode acceptance suite (see :mod:`harness <tests.e2e_kube.harness>`).

``source`` is shared by the session and both server kinds; ``cluster`` is one per server kind
(``api_server_kind``); ``replicas`` and ``http`` are per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from kubetesting import load_crd
from realservers import ScrapeTarget, ServerSet

from mtproxy.apidouble import RunningDouble, start_in_thread

from .harness import MONITORING, SCRAPE_S, Cluster, Replicas, Source, SourceThread, kubectl_for_double


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """One source for the session; each test registers its namespaces (``add_namespace``)."""
    servers = ServerSet(tmp_path_factory)
    thread: SourceThread | None = None
    try:
        pushgateway = servers.pushgateway()
        infra = servers.infrastructure_prometheus(
            targets=[ScrapeTarget(job="pushgateway", addresses=(pushgateway.address,), interval_s=SCRAPE_S,
                                  honor_labels=True)]
        )
        thread = SourceThread(pushgateway.url)
        thread.start()
        yield Source(infra=infra, pushgateway=pushgateway, driver=thread)
    finally:
        if thread is not None:
            thread.stop()
        servers.stop_all()


@pytest.fixture(scope="session")
def e2e_double() -> Iterator[RunningDouble]:
    """This suite's API double, with the generated CRD."""
    running = start_in_thread()
    running.seed([load_crd()])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def cluster(api_server_kind: str, request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """This run's API server with the ``monitoring`` namespace, an admin kubeconfig and kubectl."""
    workdir = tmp_path_factory.mktemp(f"e2e-kube-{api_server_kind}")
    server: Any
    if api_server_kind == "apidouble":
        server = request.getfixturevalue("e2e_double")
        kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        kubectl = kubectl_for_double()
    else:
        server = request.getfixturevalue("kube_apiserver")
        kubeconfig = server.kubeconfig_path
        if server.kubectl_binary is None:
            pytest.skip("kubectl is not built")
        kubectl = str(server.kubectl_binary)
    server.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING}}])
    return Cluster(kind=api_server_kind, server=server, kubeconfig=kubeconfig, kubectl_binary=kubectl,
                   workdir=workdir)


@pytest.fixture
def replicas(cluster: Cluster, source: Source, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """The test's mtproxy processes (none yet); stopped (SIGTERM) at its end, and then the
    MetricAccess objects of the namespaces the test created are deleted."""
    group = Replicas(cluster=cluster, source=source, workdir=tmp_path_factory.mktemp("mtproxy"))
    yield group
    group.stop_all()
    # after the service stopped, so that deleting them retires no job
    cluster.delete_metricaccesses(cluster.created)
    cluster.created.clear()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the proxy and the Prometheus servers (no proxy from the environment)."""
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        yield client
