"""``build_service``: the composition root wires a config into a Service without any I/O.

Found by the Kubernetes-mode acceptance suite (``tests/e2e_kube``), where ``mtproxy`` could not
start at all; these tests build the service in-process so the same mistakes fail in
milliseconds.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from realservers.ports import free_port

from mtproxy.api import load_config
from mtproxy.cmd.service import Connections, Service, ServiceOptions, build_service
from mtproxy.controller import KubeClient
from mtproxy.controller.clusterconfig import ClusterConfig


@pytest.fixture
async def connections() -> AsyncIterator[Connections]:
    async with httpx.AsyncHTTPTransport() as transport, httpx.AsyncClient() as remote:
        yield Connections(backend_transport=transport, remote_http=remote, kube=None, election_kube=None,
                          state_kube=None)


def _files_config(tmp_path: Path) -> Path:
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        "discovery: {static: {targets: ['http://127.0.0.1:9']}}\n"
        f"tenants: {{source: files, files: {{directory: '{tenants}'}}}}\n"
        "remote_write: {enabled: true}\n",
        encoding="utf-8",
    )
    return path


async def test_build_service_wires_a_files_mode_config_with_forwarding(
    tmp_path: Path, connections: Connections
) -> None:
    config = load_config(str(_files_config(tmp_path))).config
    service = build_service(config, ServiceOptions(handle_signals=False), connections)
    assert isinstance(service, Service)
    assert service.runner is not None
    assert set(service.statistics()) >= {"manager", "backends", "access", "runner"}


async def test_service_metrics_are_collected_from_the_services_statistics(
    tmp_path: Path, connections: Connections
) -> None:
    config = load_config(str(_files_config(tmp_path))).config
    service = build_service(config, ServiceOptions(handle_signals=False), connections)
    text = generate_latest(service.metrics.registry).decode()
    assert "metricaccess_objects" in text


@pytest.fixture
async def kube_connections() -> AsyncIterator[Connections]:
    """Connections to an API server nobody calls (building the service does no I/O)."""
    cluster = ClusterConfig(host="http://127.0.0.1:9", verify=False, token=lambda: None)
    async with (
        httpx.AsyncHTTPTransport() as transport,
        httpx.AsyncClient() as remote,
        httpx.AsyncClient(base_url=cluster.host) as kube_http,
    ):
        kube = KubeClient(kube_http, config=cluster)
        yield Connections(backend_transport=transport, remote_http=remote, kube=kube, election_kube=kube,
                          state_kube=kube)


def _kubernetes_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "discovery: {static: {targets: ['http://127.0.0.1:9']}}\n"
        "tenants: {source: kubernetes}\n"
        "remote_write: {enabled: true}\n",
        encoding="utf-8",
    )
    return path


async def test_replicas_on_one_host_without_pod_name_get_different_lease_identities(
    tmp_path: Path, kube_connections: Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes sharing a host name must not share an identity: each would take the
    # other's Lease for its own, both would lead and forward at once (found by tests/e2e_kube).
    monkeypatch.delenv("POD_NAME", raising=False)
    config = load_config(str(_kubernetes_config(tmp_path))).config
    options = ServiceOptions(handle_signals=False)
    first = build_service(config, options, kube_connections)
    second = build_service(config, options, kube_connections)
    assert first.elector is not None and second.elector is not None
    assert first.elector.identity != second.elector.identity
    assert first.elector.identity.startswith(socket.gethostname())


async def test_pod_name_is_the_lease_identity_when_set(
    tmp_path: Path, kube_connections: Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POD_NAME", "mtproxy-7d9f-abcde")
    config = load_config(str(_kubernetes_config(tmp_path))).config
    service = build_service(config, ServiceOptions(handle_signals=False), kube_connections)
    assert service.elector is not None and service.elector.identity == "mtproxy-7d9f-abcde"


async def test_debug_tenants_shows_the_tenants_own_verdicts_and_nobody_elses(
    tmp_path: Path, connections: Connections, nursery: Any
) -> None:
    config_path = _files_config(tmp_path)
    tenants = tmp_path / "tenants"
    (tenants / "a.yaml").write_text(
        "apiVersion: observability.ethos.io/v1alpha1\nkind: MetricAccess\n"
        "metadata: {name: good, namespace: team-a}\nspec: {source: team-a, metrics: [up], metricIsolation: true}\n"
        "---\napiVersion: observability.ethos.io/v1alpha1\nkind: MetricAccess\n"
        "metadata: {name: open, namespace: team-a}\nspec: {source: team-a, metrics: ['{namespace=\"team-b\"}']}\n"
        "---\napiVersion: observability.ethos.io/v1alpha1\nkind: MetricAccess\n"
        "metadata: {name: secret-b, namespace: team-b}\nspec: {source: team-b, metrics: [up], metricIsolation: true}\n",
        encoding="utf-8",
    )
    port = free_port()
    config = load_config(str(config_path)).config
    service = build_service(config, ServiceOptions(host="127.0.0.1", port=port, handle_signals=False), connections)
    await nursery.start(service.run)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        answer = await client.get("/debug/tenants", headers={"X-Tenant-Namespace": "team-a"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    objects = {o["name"]: o for o in body["objects"]}
    assert set(objects) == {"good", "open"}  # team-b's object is not named to team-a
    assert objects["good"]["inForce"] is True and objects["good"]["reason"] is None
    assert objects["open"]["inForce"] is False and objects["open"]["reason"] == "PolicyDenied"
    assert "guardrails.require_isolation" in objects["open"]["message"]
    assert objects["open"]["rules"] == []
    assert "secret-b" not in answer.text
    service.manager.stop()
