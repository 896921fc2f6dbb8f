"""desired_targets: the original's URL forms, port by name or number, annotation filters."""

from __future__ import annotations

from typing import Any

from mtproxy.api import KubernetesDiscoveryConfig
from mtproxy.reconcilers.discovery import desired_targets


def _meta(name: str, **annotations: str) -> dict[str, Any]:
    return {"name": name, "namespace": "monitoring", "annotations": annotations}


SERVICE = {"metadata": _meta("prom"), "spec": {"ports": [{"name": "web", "port": 9090}, {"name": "x", "port": 1}]}}
POD = {
    "metadata": _meta("prom-0"),
    "spec": {"containers": [{"ports": [{"name": "web", "containerPort": 9090}]}]},
    "status": {"phase": "Running", "podIP": "10.0.0.5"},
}
PENDING_POD = {**POD, "status": {"phase": "Pending", "podIP": "10.0.0.6"}}
ENDPOINTS = {
    "metadata": _meta("prom"),
    "subsets": [{"addresses": [{"ip": "10.0.0.5"}, {"ip": "10.0.0.7"}], "ports": [{"name": "web", "port": 9090}]}],
}
SLICE = {
    "metadata": _meta("prom-abc"),
    "ports": [{"name": "web", "port": 9090}],
    "endpoints": [
        {"addresses": ["10.0.0.8"], "conditions": {"ready": True}},
        {"addresses": ["10.0.0.9"], "conditions": {"ready": False}},
    ],
}


def test_every_resource_type_gives_the_original_url_form() -> None:
    config = KubernetesDiscoveryConfig(port="9090")
    targets = desired_targets(
        {"Service": [SERVICE], "Pod": [POD, PENDING_POD], "Endpoints": [ENDPOINTS], "EndpointSlice": [SLICE]}, config
    )
    assert targets == (
        "http://10.0.0.5:9090",
        "http://10.0.0.7:9090",
        "http://10.0.0.8:9090",
        "http://prom.monitoring.svc.cluster.local:9090",
    )


def test_port_by_name_and_no_guessing_when_absent() -> None:
    assert desired_targets({"Service": [SERVICE]}, KubernetesDiscoveryConfig(port="web")) == (
        "http://prom.monitoring.svc.cluster.local:9090",
    )
    assert desired_targets({"Service": [SERVICE]}, KubernetesDiscoveryConfig(port="metrics")) == ()


def test_annotation_selectors_filter_objects() -> None:
    annotated = {**SERVICE, "metadata": _meta("prom", shard="a")}
    config = KubernetesDiscoveryConfig(port="9090", annotation_selectors={"shard": "a"})
    assert desired_targets({"Service": [SERVICE, annotated]}, config) == (
        "http://prom.monitoring.svc.cluster.local:9090",
    )
    assert desired_targets({"Service": [SERVICE]}, config) == ()
