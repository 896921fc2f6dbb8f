"""Fixtures of the proxy's end-to-end tests: real Prometheus, the API double, a JWKS issuer.

Session-scoped servers are sync fixtures (pytest-trio's async fixtures are function-scoped):
the end-to-end Prometheus (data set + exporter + rules), the exporter, the API double with
the tenants' TokenReview/SubjectAccessReview answers, and the JWKS server. The proxy itself
is per test, started by ``run_service`` in the test's own nursery (``start_service``).

``auth.type: kubernetes`` runs twice: against the API double's review rules, and against a
real kube-apiserver (``kubernetes-apiserver``), where each tenant is a service account with
a real TokenRequest token and an RBAC grant in its own namespace.

The end-to-end Prometheus runs once per build (Debian's 2.42, then Prometheus 3 from
``make testbin``), so every endpoint test, ``match[]`` endpoints included, runs on both. On
Prometheus 3 the auth modes that only change who the tenant is (``kubernetes`` on the
double, ``jwt``, ``apikey``) are deselected: ``none`` and ``kubernetes-apiserver`` cover the
backend, and the suite stays within the time budget. Its
blocks are written by Debian's promtool in both runs: promtool 3 would store ``le="1"`` as
``le="1.0"``, and the tests compare answers with the data set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realservers import LoadedPrometheus, ServerProcess, use_binaries
from realservers.kubeapiserver import RunningKubeApiserver
from realservers.testbin import PROMETHEUS_FLAVOURS, prometheus_build

from mtproxy.apidouble import RunningDouble, start_in_thread

from .credentials import (
    AUTH_MODES,
    NAMESPACE_HEADER,
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

_AUTH_MODES_ON_PROMETHEUS2_ONLY = frozenset({"kubernetes", "jwt", "apikey"})


def _prometheus2_only(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("e2e_prometheus") == "3" and params.get("auth_mode") in _AUTH_MODES_ON_PROMETHEUS2_ONLY


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the Prometheus 3 copies of the endpoint tests with two auth modes, not five (see above)."""
    dropped = [item for item in items if _prometheus2_only(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        kept = set(map(id, dropped))
        items[:] = [item for item in items if id(item) not in kept]


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


@pytest.fixture(scope="session")
def apiserver_auth_mode(kube_apiserver: RunningKubeApiserver) -> AuthMode:
    """``auth.type: kubernetes`` on the real kube-apiserver: one service account per tenant namespace.

    Each of team-a, team-b and team-c gets a service account whose real token (TokenRequest)
    may ``get metricaccesses`` in its own namespace only (team-c has no MetricAccess, as in
    the other modes). The service reviews them with the administrator's kubeconfig.
    """
    tokens: dict[str, str] = {}
    for namespace in ("team-a", "team-b", "team-c"):
        if kube_apiserver.http().get(f"/api/v1/namespaces/{namespace}").status_code == 404:
            kube_apiserver.create_namespace(namespace)
        tokens[namespace] = kube_apiserver.service_account_token(namespace, "e2e-reader")
        kube_apiserver.grant(namespace, verbs=["get"], api_groups=["observability.ethos.io"],
                             resources=["metricaccesses"], service_account=(namespace, "e2e-reader"))

    def headers(ns: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[ns]}", NAMESPACE_HEADER: ns}

    return AuthMode(
        name="kubernetes",
        auth={"type": "kubernetes", "kubernetes": {"cache_ttl": "10s"}},
        headers_for=headers,
        spoofed=lambda own, other: {"Authorization": f"Bearer {tokens[own]}", NAMESPACE_HEADER: other},
        kubeconfig=str(kube_apiserver.kubeconfig_path),
    )


@pytest.fixture(params=[*AUTH_MODES, pytest.param("kubernetes-apiserver", marks=pytest.mark.kube_apiserver)])
def auth_mode(request: pytest.FixtureRequest) -> AuthMode:
    """Each ``auth.type`` in turn (kubernetes on the double and on a real server), with its credentials."""
    if request.param == "none":
        return none_mode()
    if request.param == "kubernetes":
        _, kubeconfig = request.getfixturevalue("review_double")
        return kubernetes_mode(str(kubeconfig))
    if request.param == "kubernetes-apiserver":
        mode: AuthMode = request.getfixturevalue("apiserver_auth_mode")
        return mode
    if request.param == "jwt":
        issuer: JWTIssuer = request.getfixturevalue("jwt_issuer")
        server: JWKSServer = request.getfixturevalue("jwks_server")
        return jwt_mode(issuer, server.url)
    return apikey_mode()
