"""Fixtures for the auth plugin tests: requests built from plain headers and parameters, and a
real kube-apiserver's reviewer with a tenant namespace on it (``cluster_tenant``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import pytest
from kubetesting import open_kube
from realservers.kubeapiserver import USERS, RunningKubeApiserver

from mtproxy.cmd.reviewer import KubernetesReviewer
from mtproxy.proxy.auth.base import AuthRequest
from mtproxy.proxy.params import RequestParams

RequestFactory = Callable[..., AuthRequest]


def build_request(
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | tuple[str, ...]] | None = None,
    *,
    method: str = "GET",
    path: str = "/api/v1/query",
) -> AuthRequest:
    """An ``AuthRequest`` with lower-cased header names, as the server builds it."""
    values = {name: (value,) if isinstance(value, str) else value for name, value in (params or {}).items()}
    return AuthRequest(
        method=method,
        path=path,
        headers={name.lower(): value for name, value in (headers or {}).items()},
        params=RequestParams(values=values),
    )


@pytest.fixture
def make_request() -> RequestFactory:
    return build_request


@dataclass(slots=True)
class ClusterTenant:
    """A namespace on the real server with a service account ``grafana`` and its real token.

    Nothing is granted until a ``grant_*`` method binds a Role allowing
    ``get metricaccesses.observability.ethos.io`` in the namespace.
    """

    server: RunningKubeApiserver
    namespace: str
    other_namespace: str
    token: str
    """A TokenRequest token of ``grafana``, for the API server's own audience."""
    other_audience_token: str
    """A token of ``grafana`` minted for audience ``somebody-else``."""
    alice_token: str = USERS["alice"].token
    """A static-token user in group ``tenants``."""

    def grant_service_account(self) -> None:
        self.server.grant(self.namespace, verbs=["get"], api_groups=["observability.ethos.io"],
                          resources=["metricaccesses"], service_account=(self.namespace, "grafana"))

    def grant_group(self, group: str) -> None:
        self.server.grant(self.namespace, verbs=["get"], api_groups=["observability.ethos.io"],
                          resources=["metricaccesses"], group=group)

    def delete_service_account(self) -> None:
        response = self.server.http().delete(f"/api/v1/namespaces/{self.namespace}/serviceaccounts/grafana")
        assert response.status_code == 200, response.text


@pytest.fixture
def cluster_tenant(kube_apiserver: RunningKubeApiserver) -> ClusterTenant:
    """A fresh tenant namespace on the session's kube-apiserver (and another, ungranted)."""
    namespace = kube_apiserver.create_namespace(prefix="auth-")
    other = kube_apiserver.create_namespace(prefix="auth-other-")
    token = kube_apiserver.service_account_token(namespace, "grafana")
    other_audience = kube_apiserver.service_account_token(namespace, "grafana", audiences=["somebody-else"])
    return ClusterTenant(server=kube_apiserver, namespace=namespace, other_namespace=other, token=token,
                         other_audience_token=other_audience)


@pytest.fixture
async def kube_reviewer(kube_apiserver: RunningKubeApiserver) -> AsyncIterator[KubernetesReviewer]:
    """The reviewer the service wires, on the real server, as the administrator."""
    client, http = open_kube(kube_apiserver.url)
    async with http:
        yield KubernetesReviewer(client)
