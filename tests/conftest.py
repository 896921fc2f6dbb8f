"""Fixtures shared by every test package: the real servers.

Session-scoped servers are sync fixtures, because pytest-trio's async fixtures are
function-scoped only (python-trio/pytest-trio#89). The factories are function-scoped and stop
what they started when the test ends. The machinery lives in :mod:`realservers`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from realservers import (
    InfrastructurePrometheusFactory,
    LoadedPrometheus,
    ServerProcess,
    ServerSet,
    TenantPrometheusFactory,
    VictoriaMetricsFactory,
    VmauthFactory,
    build_dataset,
    start_prometheus_with_data,
)


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undo a test's ``configure_logging`` (via ``main``): its handler writes to this test's captured
    stderr, which pytest closes afterwards, so later tests' log records would fail to print."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def infra_prometheus_with_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """A Prometheus holding the :mod:`realservers.testdata` set. Shared: never write to it."""
    loaded = start_prometheus_with_data(tmp_path_factory.mktemp("prometheus-with-data"), build_dataset())
    yield loaded
    loaded.server.stop()


@pytest.fixture
def server_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerSet]:
    """The servers this test starts; all are stopped when it ends."""
    servers = ServerSet(tmp_path_factory)
    yield servers
    servers.stop_all()


@pytest.fixture
def tenant_prometheus_factory(server_set: ServerSet) -> TenantPrometheusFactory:
    return server_set.tenant_prometheus


@pytest.fixture
def infra_prometheus_factory(server_set: ServerSet) -> InfrastructurePrometheusFactory:
    return server_set.infrastructure_prometheus


@pytest.fixture
def victoriametrics_factory(server_set: ServerSet) -> VictoriaMetricsFactory:
    return server_set.victoriametrics


@pytest.fixture
def vmauth_factory(server_set: ServerSet) -> VmauthFactory:
    return server_set.vmauth


@pytest.fixture
def pushgateway(server_set: ServerSet) -> ServerProcess:
    return server_set.pushgateway()
