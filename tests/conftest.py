"""Fixtures shared by every test package: the real servers.

Session-scoped servers are sync fixtures, because pytest-trio's async fixtures are
function-scoped only (python-trio/pytest-trio#89). The factories are function-scoped and stop
what they started when the test ends. The machinery lives in :mod:`realservers`.

Real Kubernetes: ``kube_control_plane`` is one etcd for the session; ``kube_apiserver`` is
the API server of it with the generated MetricAccess CRD installed, shared by every suite
that runs Kubernetes-mode behaviour on a real server (see :mod:`realservers.kubeapiserver`
for what it offers: kubeconfigs, an admin client, RBAC grants, service-account tokens).
A suite runs against both the API double and the real server by asking for
``api_server_kind`` (directly or through a fixture): :func:`pytest_generate_tests` gives it
the two values, and the real one carries the ``kube_apiserver`` marker. Tests marked
``apidouble_only`` get the double alone (they use what only the double can do).

Markers are also added from the fixtures a test uses: ``kube_apiserver`` for the real API
server, ``prometheus3`` for the Prometheus 3 fixtures, so ``-m kube_apiserver`` and
``-m prometheus3`` select every test that needs those binaries. A binary that is not built
skips its tests with the reason, except with ``CI=true``, where it fails them
(:mod:`realservers.testbin`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from kubetesting import API_SERVER_KINDS, load_crd
from realservers import (
    DEBIAN,
    InfrastructurePrometheusFactory,
    LoadedPrometheus,
    PrometheusBinaries,
    ServerProcess,
    ServerSet,
    TenantPrometheusFactory,
    VictoriaMetricsFactory,
    VmauthFactory,
    build_dataset,
    start_prometheus_with_data,
)
from realservers.kubeapiserver import ControlPlane, RunningKubeApiserver
from realservers.testbin import PROMETHEUS_FLAVOURS, prometheus3, prometheus_build

from mtproxy.apidouble import RunningDouble, start_in_thread

_KUBE_FIXTURES = frozenset({"kube_control_plane", "kube_apiserver"})
_PROMETHEUS3_FIXTURES = frozenset({"prometheus3_binaries"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that asks for ``api_server_kind`` on the double and on kube-apiserver."""
    if "api_server_kind" not in metafunc.fixturenames:
        return
    double_only = metafunc.definition.get_closest_marker("apidouble_only") is not None
    kinds = API_SERVER_KINDS[:1] if double_only else API_SERVER_KINDS
    metafunc.parametrize(
        "api_server_kind",
        [pytest.param(kind, id=kind, marks=[pytest.mark.kube_apiserver] if kind == "kube-apiserver" else [])
         for kind in kinds],
        scope="session",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use a real API server or Prometheus 3 through their fixtures."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _KUBE_FIXTURES and item.get_closest_marker("kube_apiserver") is None:
            item.add_marker(pytest.mark.kube_apiserver)
        if names & _PROMETHEUS3_FIXTURES and item.get_closest_marker("prometheus3") is None:
            item.add_marker(pytest.mark.prometheus3)


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


# -- real Kubernetes ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def api_server_kind() -> str:
    """Replaced by :func:`pytest_generate_tests`'s parameter; reaching this is a wiring bug."""
    raise RuntimeError("api_server_kind is a parameter: pytest_generate_tests should have set it")


@pytest.fixture(scope="session")
def crd_double() -> Iterator[RunningDouble]:
    """The session's API double, with the generated CRD and fast bookmarks."""
    running = start_in_thread(bookmark_interval_s=0.2)
    running.seed([load_crd()])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def kube_server(api_server_kind: str, request: pytest.FixtureRequest) -> Any:
    """This run's API server with the CRD: ``crd_double``, or the real ``kube_apiserver`` (``KubeServer`` shape)."""
    if api_server_kind == "apidouble":
        return request.getfixturevalue("crd_double")
    return request.getfixturevalue("kube_apiserver")


@pytest.fixture(scope="session")
def kube_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One etcd for the session; API servers start on it by name (``plane.apiserver(name)``)."""
    plane = ControlPlane.start(tmp_path_factory.mktemp("kube-control-plane"))
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kube_apiserver(kube_control_plane: ControlPlane) -> RunningKubeApiserver:
    """A real kube-apiserver with the generated MetricAccess CRD installed and Established.

    Shared by the session: work in a namespace of your own (``create_namespace()``).
    """
    return kube_control_plane.apiserver("cluster", crds=[load_crd()])


# -- Prometheus 3 ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prometheus3_binaries() -> PrometheusBinaries:
    """Prometheus 3 and its promtool, built by ``make testbin`` (skips if missing, fails in CI)."""
    return prometheus3()


@pytest.fixture(scope="session", params=PROMETHEUS_FLAVOURS)
def prometheus_binaries(request: pytest.FixtureRequest) -> PrometheusBinaries:
    """Each Prometheus build in turn (2.42 from Debian, 3 from ``make testbin``)."""
    return prometheus_build(request)


@pytest.fixture(scope="session")
def infra_prometheus3_with_data(
    tmp_path_factory: pytest.TempPathFactory, prometheus3_binaries: PrometheusBinaries
) -> Iterator[LoadedPrometheus]:
    """Prometheus 3 holding the :mod:`realservers.testdata` set. Shared: never write to it.

    The blocks are written by Debian's promtool, so the data is the same as
    ``infra_prometheus_with_data``'s (promtool 3 would store ``le="1"`` as ``le="1.0"``).
    """
    binaries = dataclasses.replace(prometheus3_binaries, promtool=DEBIAN.promtool)
    loaded = start_prometheus_with_data(tmp_path_factory.mktemp("prometheus3-with-data"), build_dataset(),
                                        binaries=binaries)
    yield loaded
    loaded.server.stop()


@pytest.fixture
def prometheus3_server_set(
    tmp_path_factory: pytest.TempPathFactory, prometheus3_binaries: PrometheusBinaries
) -> Iterator[ServerSet]:
    """Like ``server_set``, but every Prometheus it starts is Prometheus 3."""
    servers = ServerSet(tmp_path_factory, prometheus=prometheus3_binaries)
    yield servers
    servers.stop_all()


@pytest.fixture
def prometheus3_tenant_factory(prometheus3_server_set: ServerSet) -> TenantPrometheusFactory:
    """Tenant-role Prometheus 3 servers (remote-write receiver on), stopped when the test ends."""
    return prometheus3_server_set.tenant_prometheus


@pytest.fixture
def prometheus3_infra_factory(prometheus3_server_set: ServerSet) -> InfrastructurePrometheusFactory:
    """Infrastructure-role Prometheus 3 servers, stopped when the test ends."""
    return prometheus3_server_set.infrastructure_prometheus
