"""``build_service``: the composition root wires a config into a Service without any I/O.

Found by the Kubernetes-mode acceptance suite (``tests/e2e_kube``), where ``mtproxy`` could not
start at all; these tests build the service in-process so the same mistakes fail in
milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from mtproxy.api import load_config
from mtproxy.cmd.service import Connections, Service, ServiceOptions, build_service


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
