"""Fixtures for the API double's contract suite, which runs on the double and on a real kube-apiserver.

The contract tests ask for ``server`` (or a fixture built on it): it is the API double in
one run and a real kube-apiserver in the other (``api_server_kind``, see
``tests/conftest.py``), so every behaviour the double promises is checked against the real
thing. Tests marked ``apidouble_only`` use what only the double has (fault hooks,
configurable review answers, statistics) and ask for ``double``. Where the two servers
differ on purpose, a test says so with :func:`on_real_server`, and the difference is in the
table of ``apidouble/__init__.py``.

pytest-trio's async fixtures are function-scoped, so the session-wide double is a sync
fixture running :func:`mtproxy.apidouble.start_in_thread`; the real server is the control
plane's ``contract`` API server, a clean one of its own (this suite registers its test CRD
under the name the generated CRD has on the session's other server). Tests talk to either
over real HTTP with the official ``kubernetes`` client (or kubectl, or httpx), and each test
works in its own namespace so tests never see each other's objects.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config
from kubetesting import KubeServer, http_config, server_kind

from mtproxy.apidouble import RunningDouble, start_in_thread

GROUP = "observability.ethos.io"
VERSION = "v1alpha1"
PLURAL = "metricaccesses"
KIND = "MetricAccess"

# The test CRD: status subresource, printer columns (a date column named Age), a default
# and an enum. The lead will swap it for config/crd/bases/observability.ethos.io_metricaccesses.yaml.
METRICACCESS_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "names": {"kind": KIND, "plural": PLURAL, "singular": "metricaccess", "listKind": "MetricAccessList",
                  "shortNames": ["ma"], "categories": ["monitoring"]},
        "scope": "Namespaced",
        "versions": [{
            "name": VERSION,
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                {"name": "Metrics", "type": "integer", "jsonPath": ".status.validatedMetrics"},
                {"name": "Valid", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Valid")].status'},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {
                        "type": "object",
                        "required": ["metrics"],
                        "properties": {
                            "metrics": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                            "mode": {"type": "string", "enum": ["read", "write"], "default": "read"},
                            "metricIsolation": {"type": "boolean", "default": True},
                            "remoteWrite": {
                                "type": "object",
                                "properties": {
                                    "interval": {"type": "string", "pattern": "^[0-9]+(s|m|h)$", "default": "30s"},
                                    "extraLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                                },
                            },
                        },
                    },
                    "status": {
                        "type": "object",
                        "properties": {
                            "validatedMetrics": {"type": "integer"},
                            "conditions": {"type": "array", "items": {
                                "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                            }},
                        },
                    },
                },
            }},
        }],
    },
}


class MetricAccesses:
    """CustomObjectsApi bound to the test CRD's group, version and plural."""

    group = GROUP
    version = VERSION
    plural = PLURAL
    kind = KIND

    def __init__(self, api: client.CustomObjectsApi) -> None:
        self.api = api

    @staticmethod
    def body(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
        """Return a MetricAccess body with the given spec (``metrics`` defaults to ``["up"]``)."""
        spec.setdefault("metrics", ["up"])
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def get_status(self, namespace: str, name: str) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name)

    def patch(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)

    def patch_status(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, patch)

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)

    def replace_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.replace_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, body)

    def delete(self, namespace: str, name: str) -> dict[str, Any]:
        return self.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def list(self, namespace: str, **options: Any) -> dict[str, Any]:
        return self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **options)


def on_real_server(server: object) -> bool:
    """Whether ``server`` is the real kube-apiserver (for the few assertions that differ on purpose)."""
    return server_kind(server) == "kube-apiserver"


@pytest.fixture(scope="session")
def double() -> Iterator[RunningDouble]:
    """The session's API double, with fast bookmarks; double-only tests use it directly."""
    running = start_in_thread(bookmark_interval_s=0.2)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def server(api_server_kind: str, request: pytest.FixtureRequest) -> Any:
    """This run's server: the double, or the control plane's clean ``contract`` kube-apiserver."""
    if api_server_kind == "apidouble":
        return request.getfixturevalue("double")
    return request.getfixturevalue("kube_control_plane").apiserver("contract")


@pytest.fixture(scope="session")
def kubeconfig_path(server: KubeServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig file for this run's server."""
    return server.write_kubeconfig(tmp_path_factory.mktemp("apidouble") / "kubeconfig")


@pytest.fixture(scope="session")
def api_client(kubeconfig_path: Path) -> Iterator[client.ApiClient]:
    """An official kubernetes ApiClient configured from the generated kubeconfig."""
    api = config.new_client_from_config(config_file=str(kubeconfig_path))
    yield api
    api.close()


@pytest.fixture
def http(server: KubeServer) -> Iterator[httpx.Client]:
    """httpx on this run's server, authenticated (any token on the double, the admin's on the real one)."""
    facts = http_config(server.url, token="whatever")
    token = facts.token() or ""
    with httpx.Client(base_url=server.url, verify=facts.verify, headers={"Authorization": token}, timeout=10,
                      trust_env=False) as session:
        yield session


@pytest.fixture(scope="session")
def crd(api_client: client.ApiClient, server: KubeServer) -> dict[str, Any]:
    """The test CRD, registered once per server through the API (Established before it is used)."""
    if on_real_server(server):
        return server.install_crd(copy.deepcopy(METRICACCESS_CRD))  # type: ignore[attr-defined,no-any-return]
    extensions = client.ApiextensionsV1Api(api_client)
    try:
        created = extensions.create_custom_resource_definition(copy.deepcopy(METRICACCESS_CRD))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        created = extensions.read_custom_resource_definition(METRICACCESS_CRD["metadata"]["name"])
    return api_client.sanitize_for_serialization(created)  # type: ignore[no-any-return]


@pytest.fixture
def namespace(api_client: client.ApiClient) -> str:
    """A fresh namespace for one test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api on the session's double."""
    return client.CoreV1Api(api_client)


@pytest.fixture
def mas(api_client: client.ApiClient, crd: dict[str, Any]) -> MetricAccesses:
    """MetricAccess objects on the session's double, with the CRD registered."""
    return MetricAccesses(client.CustomObjectsApi(api_client))


@pytest.fixture(scope="session")
def metricaccess_crd() -> dict[str, Any]:
    """The test CRD manifest (a copy), for tests that register it themselves (kubectl)."""
    return copy.deepcopy(METRICACCESS_CRD)
