"""Contract at the HTTP level (httpx): discovery, OpenAPI v3, Table rendering, field validation,
error Statuses for unknown paths, verbs and media types, and chunked watch framing.

Each test runs on the double and on a real kube-apiserver; the few lines that differ on
purpose say so with ``on_real_server`` (the differences table in ``apidouble/__init__.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from kubetesting import KubeServer
from realservers.testbin import Program, version_of

from .conftest import on_real_server

if TYPE_CHECKING:
    from tests.apidouble.conftest import MetricAccesses

TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
         "application/json")


def _resources(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in document["resources"]}


def test_core_discovery_lists_resources_with_verbs_and_short_names(http: httpx.Client) -> None:
    assert http.get("/api").json()["versions"] == ["v1"]
    core = _resources(http.get("/api/v1").json())
    assert {"namespaces", "services", "pods", "endpoints", "secrets", "events", "configmaps"} <= set(core)
    assert core["configmaps"]["shortNames"] == ["cm"] and core["configmaps"]["namespaced"] is True
    assert core["namespaces"]["namespaced"] is False
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert "watch" in core["services"]["verbs"]


def test_group_discovery_includes_registered_crds(http: httpx.Client, mas: MetricAccesses) -> None:
    groups = {group["name"]: group for group in http.get("/apis").json()["groups"]}
    for name in ("discovery.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io", "authentication.k8s.io",
                 "authorization.k8s.io", mas.group):
        assert name in groups
    assert groups[mas.group]["preferredVersion"]["version"] == mas.version
    resources = _resources(http.get(f"/apis/{mas.group}/{mas.version}").json())
    entry = resources[mas.plural]
    assert entry["kind"] == "MetricAccess" and entry["singularName"] == "metricaccess"
    assert entry["shortNames"] == ["ma"] and entry["categories"] == ["monitoring"]
    assert f"{mas.plural}/status" in resources
    reviews = _resources(http.get("/apis/authentication.k8s.io/v1").json())["tokenreviews"]
    assert reviews["verbs"] == ["create"]


def test_openapi_v3_advertises_field_validation_for_patch(http: httpx.Client, mas: MetricAccesses,
                                                          server: KubeServer) -> None:
    index = http.get("/openapi/v3").json()["paths"]
    url = index[f"apis/{mas.group}/{mas.version}"]["serverRelativeURL"]
    document = http.get(url).json()
    (operation,) = [path["patch"] for name, path in document["paths"].items()
                    if name.endswith(f"/namespaces/{{namespace}}/{mas.plural}/{{name}}")]
    assert operation["x-kubernetes-group-version-kind"]["kind"] == "MetricAccess"
    assert "fieldValidation" in [parameter["name"] for parameter in operation["parameters"]]
    # the double serves no OpenAPI v2 (kubectl reads v3 once it answers); the real server serves both
    assert http.get("/openapi/v2").status_code == (200 if on_real_server(server) else 404)


def test_table_rendering_uses_printer_columns(http: httpx.Client, mas: MetricAccesses, namespace: str) -> None:
    mas.create(namespace, mas.body("a", namespace, mode="write"))
    mas.patch_status(namespace, "a", {"status": {"validatedMetrics": 3,
                                                 "conditions": [{"type": "Valid", "status": "True"}]}})
    response = http.get(f"/apis/{mas.group}/{mas.version}/namespaces/{namespace}/{mas.plural}",
                        headers={"Accept": TABLE})
    table = response.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Mode", "Metrics", "Valid", "Age"]
    assert table["columnDefinitions"][0]["format"] == "name"
    (row,) = table["rows"]
    name, mode, metrics, valid, age = row["cells"]
    assert (name, mode, metrics, valid) == ("a", "write", 3, "True")
    assert age.endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["namespace"] == namespace


@pytest.mark.parametrize(
    ("path", "body", "columns", "cells"),
    [
        pytest.param("configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}},
                     ["Name", "Data", "Age"], ["c", 2], id="configmap"),
        pytest.param("secrets", {"metadata": {"name": "c"}, "type": "Opaque", "data": {"a": "AA=="}},
                     ["Name", "Type", "Data", "Age"], ["c", "Opaque", 1], id="secret"),
        pytest.param("serviceaccounts", {"metadata": {"name": "c"}}, ["Name", "Age"], ["c"], id="service-account"),
    ],
)
def test_table_for_builtins_has_the_real_columns(http: httpx.Client, namespace: str, path: str,
                                                 body: dict[str, Any], columns: list[str], cells: list[Any]) -> None:
    assert http.post(f"/api/v1/namespaces/{namespace}/{path}", json=body).status_code == 201
    table = http.get(f"/api/v1/namespaces/{namespace}/{path}/c", headers={"Accept": TABLE}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == columns
    assert {c["type"] for c in table["columnDefinitions"]} == {"string"}
    row = table["rows"][0]["cells"]
    assert row[:-1] == cells and row[-1].endswith("s")


def test_table_for_namespaces_shows_their_phase(http: httpx.Client, namespace: str) -> None:
    table = http.get(f"/api/v1/namespaces/{namespace}", headers={"Accept": TABLE}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert table["rows"][0]["cells"][:2] == [namespace, "Active"]


def test_strict_field_validation_refuses_unknown_fields(http: httpx.Client, mas: MetricAccesses,
                                                        namespace: str) -> None:
    body = mas.body("a", namespace, bogus=1)
    url = f"/apis/{mas.group}/{mas.version}/namespaces/{namespace}/{mas.plural}"
    refused = http.post(url, params={"fieldValidation": "Strict"}, json=body)
    assert refused.status_code == 400
    assert refused.json()["message"] == ('MetricAccess in version "v1alpha1" cannot be handled as a MetricAccess: '
                                         'strict decoding error: unknown field "spec.bogus"')
    warned = http.post(url, json=body)
    assert warned.status_code == 201
    assert warned.headers["warning"] == '299 - "unknown field \\"spec.bogus\\""'
    assert "bogus" not in warned.json()["spec"]


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        pytest.param("GET", "/apis/coordination.k8s.io/v9/leases", 404, "NotFound", id="unknown-version"),
        pytest.param("GET", "/api/v1/widgets", 404, "NotFound", id="unknown-resource"),
        pytest.param("GET", "/api/v1/namespaces/x/configmaps/c/scale", 404, "NotFound", id="unknown-subresource"),
        pytest.param("GET", "/apis/authentication.k8s.io/v1/tokenreviews", 405, "MethodNotAllowed",
                     id="list-of-create-only"),
        pytest.param("PUT", "/api/v1/namespaces/x/configmaps", 405, "MethodNotAllowed", id="put-on-collection"),
    ],
)
def test_errors_are_status_bodies(http: httpx.Client, method: str, path: str, status: int, reason: str) -> None:
    response = http.request(method, path, json={})
    body = response.json()
    assert response.status_code == status
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == reason
    assert body["code"] == status


def test_unknown_api_group_is_a_plain_404_page(http: httpx.Client) -> None:
    response = http.get("/apis/nope.example.com/v1/things")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.strip() == "404 page not found"


def test_unknown_patch_media_type_is_415(http: httpx.Client, namespace: str) -> None:
    http.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "c"}})
    response = http.patch(f"/api/v1/namespaces/{namespace}/configmaps/c", content=b"{}",
                          headers={"Content-Type": "application/x-unknown-patch"})
    assert response.status_code == 415 and response.json()["reason"] == "UnsupportedMediaType"


def test_server_side_apply_is_served_by_the_real_server_only(http: httpx.Client, namespace: str,
                                                             server: KubeServer) -> None:
    """A known gap of the double (see its differences table): our code never applies server-side."""
    response = http.patch(f"/api/v1/namespaces/{namespace}/configmaps/c", params={"fieldManager": "test"},
                          content=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
                          headers={"Content-Type": "application/apply-patch+yaml"})
    if on_real_server(server):
        assert response.status_code == 201 and response.json()["data"] == {"k": "v"}
    else:
        assert response.status_code == 415 and response.json()["reason"] == "UnsupportedMediaType"


def test_dry_run_does_not_store(http: httpx.Client, namespace: str) -> None:
    created = http.post(f"/api/v1/namespaces/{namespace}/configmaps", params={"dryRun": "All"},
                        json={"metadata": {"name": "c"}})
    assert created.status_code == 201
    assert http.get(f"/api/v1/namespaces/{namespace}/configmaps/c").status_code == 404


def test_watch_is_chunked_newline_delimited_json(http: httpx.Client, namespace: str) -> None:
    http.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "c"}})
    with http.stream("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                     params={"watch": "1", "timeoutSeconds": "1"}) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in lines] == [("ADDED", "c")]


def test_legacy_watch_path_is_served(http: httpx.Client, namespace: str) -> None:
    http.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "c"}})
    with http.stream("GET", f"/api/v1/watch/namespaces/{namespace}/configmaps/c",
                     params={"timeoutSeconds": "1"}) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [event["type"] for event in lines] == ["ADDED"]


def test_version_and_health_endpoints(http: httpx.Client, server: KubeServer) -> None:
    # the double says 1.32 (the kubectl of these machines); the real server its own version
    expected = version_of(Program.KUBE_APISERVER.build).split(".")[1] if on_real_server(server) else "32"
    assert http.get("/version").json()["minor"] == expected
    assert http.get("/healthz").text == "ok"


def test_yaml_bodies_are_accepted(http: httpx.Client, namespace: str) -> None:
    # not "y" as a name: the real server's YAML (go-yaml v2) reads y/n/on/off as booleans
    created = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                        content=b"metadata:\n  name: from-yaml\ndata:\n  k: v\n",
                        headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201 and created.json()["data"] == {"k": "v"}
