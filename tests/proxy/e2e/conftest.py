"""Fixtures of the proxy's end-to-end tests: real Prometheus, the API double, a JWKS issuer.

Session-scoped servers are sync fixtures (pytest-trio's async fixtures are function-scoped):
the end-to-end Prometheus (data set + exporter + rules), the exporter, the API double with
the tenants' TokenReview/SubjectAccessReview answers, and the JWKS server. The proxy itself
is per test, started by ``run_service`` in the test's own nursery (``start_service``).

The end-to-end Prometheus runs once per build (Debian's 2.42, then Prometheus 3 from
``make testbin``), so every endpoint test, ``match[]`` endpoints included, runs on both. Its
blocks are written by Debian's promtool in both runs: promtool 3 would store ``le="1"`` as
``le="1.0"``, and the tests compare answers with the data set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realservers import LoadedPrometheus, ServerProcess, use_binaries
from realservers.testbin import PROMETHEUS_FLAVOURS, prometheus_build

from mtproxy.apidouble import RunningDouble, start_in_thread

from .credentials import (
    AUTH_MODES,
    AuthMode,
    JWTIssuer,
    apikey_mode,
    jwt_mode,
    kubernetes_mode,
    none_mode,
    review_rules,
)
from .servers import JWKSServer, StaticExporter, start_e2e_prometheus
from .tenancy import EXPORTER_TEXT, RULES, write_tenant_files


@pytest.fixture(scope="session")
def exporter() -> Iterator[StaticExporter]:
    served = StaticExporter(EXPORTER_TEXT)
    yield served
    served.stop()


@pytest.fixture(scope="session", params=PROMETHEUS_FLAVOURS)
def e2e_prometheus(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    infra_prometheus_with_data: LoadedPrometheus,
    exporter: StaticExporter,
) -> Iterator[ServerProcess]:
    """The shared data set (same anchor as ``infra_prometheus_with_data``), the exporter, the rules; per build."""
    # the blocks come from one promtool in both runs (see prometheus_build), so the data is the same
    with use_binaries(prometheus_build(request, blocks_by_debian_promtool=True)):
        server = start_e2e_prometheus(
            tmp_path_factory.mktemp("prometheus-e2e"),
            infra_prometheus_with_data.data,
            exporter_address=exporter.address,
            rules=RULES,
        )
    yield server
    server.stop()


@pytest.fixture
def tenants_dir(tmp_path: Path) -> Path:
    """This test's directory of MetricAccess files, one per tenant of :data:`tenancy.PATTERNS`."""
    return write_tenant_files(tmp_path / "tenants")


@pytest.fixture(scope="session")
def review_double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDouble, Path]]:
    """The API double answering the tenants' reviews, and a kubeconfig pointing at it."""
    double = start_in_thread(rules=review_rules())
    kubeconfig = double.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
    yield double, kubeconfig
    double.stop()


@pytest.fixture(scope="session")
def jwt_issuer() -> JWTIssuer:
    return JWTIssuer()


@pytest.fixture(scope="session")
def jwks_server(jwt_issuer: JWTIssuer) -> Iterator[JWKSServer]:
    server = JWKSServer(jwt_issuer.jwks()).start()
    yield server
    server.stop()


@pytest.fixture(params=AUTH_MODES)
def auth_mode(request: pytest.FixtureRequest) -> AuthMode:
    """Each ``auth.type`` in turn, with its credentials for the three tenants."""
    if request.param == "none":
        return none_mode()
    if request.param == "kubernetes":
        _, kubeconfig = request.getfixturevalue("review_double")
        return kubernetes_mode(str(kubeconfig))
    if request.param == "jwt":
        issuer: JWTIssuer = request.getfixturevalue("jwt_issuer")
        server: JWKSServer = request.getfixturevalue("jwks_server")
        return jwt_mode(issuer, server.url)
    return apikey_mode()
