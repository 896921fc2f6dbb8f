"""Contract: create, get, update, patch, delete, status subresource and generation, driven by the
official kubernetes client against the double and a real kube-apiserver."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from kubernetes import client

if TYPE_CHECKING:
    from tests.apidouble.conftest import MetricAccesses

MERGE = "application/merge-patch+json"


def _status(exc: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_sets_server_fields_and_answers_201(mas: MetricAccesses, namespace: str) -> None:
    created = mas.create(namespace, mas.body("a", namespace))
    metadata = created["metadata"]
    assert metadata["generation"] == 1
    assert metadata["uid"] and metadata["creationTimestamp"].endswith("Z")
    assert int(metadata["resourceVersion"]) > 0
    assert created["apiVersion"] == f"{mas.group}/{mas.version}" and created["kind"] == "MetricAccess"


def test_create_with_generate_name_picks_a_name(core: client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "cfg-"}})
    second = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "cfg-"}})
    assert first.metadata.name.startswith("cfg-") and len(first.metadata.name) == len("cfg-") + 5
    assert first.metadata.name != second.metadata.name


def test_create_of_existing_name_is_409_already_exists(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dup"}})
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "dup"}})
    status = _status(caught.value)
    assert caught.value.status == 409 and status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "dup" already exists'


def test_get_of_missing_object_is_404_status(mas: MetricAccesses, namespace: str) -> None:
    with pytest.raises(client.ApiException) as caught:
        mas.get(namespace, "nope")
    status = _status(caught.value)
    assert caught.value.status == 404
    assert status["kind"] == "Status" and status["status"] == "Failure" and status["reason"] == "NotFound"
    assert status["message"] == f'{mas.plural}.{mas.group} "nope" not found'
    assert status["details"] == {"name": "nope", "group": mas.group, "kind": mas.plural}


def test_update_with_stale_resource_version_is_409_conflict(core: client.CoreV1Api, namespace: str) -> None:
    original = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"k": "1"}})
    original.data = {"k": "2"}
    core.replace_namespaced_config_map("c", namespace, original)
    original.data = {"k": "3"}
    with pytest.raises(client.ApiException) as caught:
        core.replace_namespaced_config_map("c", namespace, original)
    assert caught.value.status == 409 and _status(caught.value)["reason"] == "Conflict"
    assert "the object has been modified" in _status(caught.value)["message"]
    assert core.read_namespaced_config_map("c", namespace).data == {"k": "2"}


def test_update_bumps_resource_version_monotonically(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"k": "1"}})
    versions = [int(created.metadata.resource_version)]
    for value in ("2", "3"):
        patched = core.patch_namespaced_config_map("c", namespace, {"data": {"k": value}}, _content_type=MERGE)
        versions.append(int(patched.metadata.resource_version))
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_write_that_changes_nothing_keeps_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"k": "1"}})
    again = core.patch_namespaced_config_map("c", namespace, {"data": {"k": "1"}}, _content_type=MERGE)
    assert again.metadata.resource_version == created.metadata.resource_version


def test_merge_patch_follows_rfc7386(mas: MetricAccesses, namespace: str) -> None:
    body = mas.body("a", namespace, remoteWrite={"interval": "1m", "extraLabels": {"a": "1", "b": "2"}})
    mas.create(namespace, body)
    patch = {"spec": {"metrics": ["x", "y"], "remoteWrite": {"extraLabels": {"a": None, "c": "3"}}}}
    patched = mas.patch(namespace, "a", patch)
    assert patched["spec"]["metrics"] == ["x", "y"]
    assert patched["spec"]["remoteWrite"] == {"interval": "1m", "extraLabels": {"b": "2", "c": "3"}}


def test_json_patch_is_applied(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"k": "1"}})
    patched = core.patch_namespaced_config_map(
        "c", namespace, [{"op": "add", "path": "/data/j", "value": "2"}, {"op": "remove", "path": "/data/k"}],
        _content_type="application/json-patch+json",
    )
    assert patched.data == {"j": "2"}


def test_patch_with_stale_resource_version_is_409(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("c", namespace, {"data": {"k": "2"}}, _content_type=MERGE)
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {"k": "3"}}
    with pytest.raises(client.ApiException) as caught:
        core.patch_namespaced_config_map("c", namespace, stale, _content_type=MERGE)
    assert caught.value.status == 409


def test_main_resource_writes_ignore_status(mas: MetricAccesses, namespace: str) -> None:
    body = mas.body("a", namespace)
    body["status"] = {"validatedMetrics": 9}
    created = mas.create(namespace, body)
    assert "status" not in created
    mas.patch_status(namespace, "a",
                                                 {"status": {"validatedMetrics": 1}})
    patched = mas.patch(namespace, "a",
                                                    {"status": {"validatedMetrics": 5}, "spec": {"mode": "write"}})
    assert patched["status"] == {"validatedMetrics": 1}
    assert patched["spec"]["mode"] == "write"
    current = mas.get(namespace, "a")
    current["status"] = {"validatedMetrics": 7}
    replaced = mas.replace(namespace, "a", current)
    assert replaced["status"] == {"validatedMetrics": 1}


def test_status_writes_ignore_spec_and_metadata(mas: MetricAccesses, namespace: str) -> None:
    mas.create(namespace, mas.body("a", namespace))
    patch = {"metadata": {"labels": {"x": "y"}}, "spec": {"mode": "write"}, "status": {"validatedMetrics": 3}}
    patched = mas.patch_status(namespace, "a", patch)
    assert patched["status"] == {"validatedMetrics": 3}
    assert patched["spec"]["mode"] == "read"
    assert "labels" not in patched["metadata"]
    assert patched["metadata"]["generation"] == 1
    current = mas.get_status(namespace, "a")
    current["spec"]["metrics"] = ["changed"]
    current["status"]["validatedMetrics"] = 4
    replaced = mas.replace_status(namespace, "a", current)
    assert replaced["spec"]["metrics"] == ["up"] and replaced["status"]["validatedMetrics"] == 4


def test_generation_bumps_only_on_spec_change(mas: MetricAccesses, namespace: str) -> None:
    mas.create(namespace, mas.body("a", namespace))

    def generation_after(patch: dict[str, Any], *, status: bool = False) -> int:
        apply = mas.patch_status if status else mas.patch
        return int(apply(namespace, "a", patch)["metadata"]["generation"])

    assert generation_after({"metadata": {"labels": {"team": "a"}, "annotations": {"n": "1"}}}) == 1
    assert generation_after({"status": {"validatedMetrics": 2}}, status=True) == 1
    assert generation_after({"spec": {"mode": "write"}}) == 2
    assert generation_after({"spec": {"mode": "write"}}) == 2
    assert generation_after({"spec": {"metrics": ["a", "b"]}}) == 3


def test_schema_violation_is_422_naming_the_field(mas: MetricAccesses, namespace: str) -> None:
    body = mas.body("a", namespace, mode="sideways", remoteWrite={"interval": "soon"})
    with pytest.raises(client.ApiException) as caught:
        mas.create(namespace, body)
    status = _status(caught.value)
    assert caught.value.status == 422 and status["reason"] == "Invalid"
    causes = {cause["field"]: cause for cause in status["details"]["causes"]}
    assert causes["spec.mode"]["reason"] == "FieldValueNotSupported"
    assert causes["spec.mode"]["message"] == 'Unsupported value: "sideways": supported values: "read", "write"'
    assert causes["spec.remoteWrite.interval"]["reason"] == "FieldValueInvalid"
    assert status["message"].startswith('MetricAccess.observability.ethos.io "a" is invalid: [')


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        pytest.param({"metrics": None}, "spec.metrics", "FieldValueRequired", id="required"),
        pytest.param({"metrics": []}, "spec.metrics", "FieldValueInvalid", id="min-items"),
        pytest.param({"metrics": [1]}, "spec.metrics[0]", "FieldValueTypeInvalid", id="array-item-type"),
        pytest.param({"metricIsolation": "yes"}, "spec.metricIsolation", "FieldValueTypeInvalid", id="type"),
    ],
)
def test_schema_violations_name_kubernetes_field_paths(
    mas: MetricAccesses, namespace: str, spec: dict[str, Any], field: str, reason: str
) -> None:
    body = mas.body("a", namespace)
    body["spec"].update(spec)
    with pytest.raises(client.ApiException) as caught:
        mas.create(namespace, body)
    causes = _status(caught.value)["details"]["causes"]
    assert [(cause["field"], cause["reason"]) for cause in causes] == [(field, reason)]


def test_schema_defaults_are_applied_and_unknown_fields_pruned(mas: MetricAccesses,
                                                               namespace: str) -> None:
    body = mas.body("a", namespace, remoteWrite={}, bogus={"x": 1})
    created = mas.create(namespace, body)
    assert created["spec"] == {"metrics": ["up"], "mode": "read", "metricIsolation": True,
                               "remoteWrite": {"interval": "30s"}}


def test_update_is_validated_too(mas: MetricAccesses, namespace: str) -> None:
    mas.create(namespace, mas.body("a", namespace))
    with pytest.raises(client.ApiException) as caught:
        mas.patch(namespace, "a", {"spec": {"mode": "x"}})
    assert caught.value.status == 422
    assert mas.get(namespace, "a")["spec"]["mode"] == "read"


def test_invalid_name_is_422_on_metadata_name(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "Not_Valid"}})
    assert caught.value.status == 422
    assert _status(caught.value)["details"]["causes"][0]["field"] == "metadata.name"


def test_delete_answers_success_naming_the_object_and_removes_it(mas: MetricAccesses, namespace: str) -> None:
    created = mas.create(namespace, mas.body("a", namespace))
    deleted = mas.delete(namespace, "a")
    assert (deleted["kind"], deleted["status"]) == ("Status", "Success")
    assert deleted["details"] == {"name": "a", "group": mas.group, "kind": mas.plural,
                                  "uid": created["metadata"]["uid"]}
    with pytest.raises(client.ApiException) as caught:
        mas.delete(namespace, "a")
    assert caught.value.status == 404


def test_delete_of_a_service_answers_the_deleted_object(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_service(namespace, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    deleted = core.api_client.sanitize_for_serialization(core.delete_namespaced_service("s", namespace))
    assert deleted["kind"] == "Service" and deleted["metadata"]["name"] == "s"


def test_delete_with_finalizer_waits_for_its_removal(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("c", namespace)
    marked = core.read_namespaced_config_map("c", namespace)
    assert marked.metadata.deletion_timestamp is not None
    with pytest.raises(client.ApiException) as caught:
        core.patch_namespaced_config_map("c", namespace, {"metadata": {"finalizers": ["a", "b"]}},
                                         _content_type=MERGE)
    assert caught.value.status == 422
    core.patch_namespaced_config_map("c", namespace, {"metadata": {"finalizers": None}}, _content_type=MERGE)
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_config_map("c", namespace)
    assert gone.value.status == 404


def test_delete_precondition_mismatch_is_409(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    with pytest.raises(client.ApiException) as caught:
        core.delete_namespaced_config_map("c", namespace, body={"preconditions": {"uid": "other"}})
    assert caught.value.status == 409


def test_leases_create_update_and_conflict(http: httpx.Client, namespace: str) -> None:
    # httpx, not the python client: it prints a MicroTime as "...+00:00", which both servers refuse
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    spec = {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2024-01-01T00:00:00.000000Z"}
    created = http.post(leases, json={"metadata": {"name": "leader"}, "spec": spec})
    assert created.status_code == 201 and created.json()["spec"]["holderIdentity"] == "a"
    exists = http.post(leases, json={"metadata": {"name": "leader"}, "spec": spec})
    assert exists.status_code == 409 and exists.json()["reason"] == "AlreadyExists"
    version = created.json()["metadata"]["resourceVersion"]
    renewed = http.put(f"{leases}/leader", json={"metadata": {"name": "leader", "resourceVersion": version},
                                                 "spec": {**spec, "holderIdentity": "b"}})
    assert renewed.status_code == 200 and renewed.json()["spec"]["holderIdentity"] == "b"
    conflict = http.put(f"{leases}/leader", json={"metadata": {"name": "leader", "resourceVersion": version},
                                                  "spec": {**spec, "holderIdentity": "c"}})
    assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"
    assert "leases.coordination.k8s.io" in conflict.json()["message"]


@pytest.mark.parametrize("renew_time", ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123Z",
                                        "2024-01-01T00:00:00+00:00"])
def test_lease_micro_time_needs_six_fractional_digits(http: httpx.Client, namespace: str, renew_time: str) -> None:
    refused = http.post(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
                        json={"metadata": {"name": "l"}, "spec": {"renewTime": renew_time}})
    assert refused.status_code == 400 and refused.json()["reason"] == "BadRequest"
    assert refused.json()["message"].startswith(
        f'Lease in version "v1" cannot be handled as a Lease: parsing time "{renew_time}"')


def test_events_can_be_created_and_listed_by_involved_object(core: client.CoreV1Api, namespace: str) -> None:
    event = {"metadata": {"generateName": "ma-"}, "reason": "Validated", "type": "Normal", "message": "ok",
             "involvedObject": {"kind": "MetricAccess", "name": "a", "namespace": namespace}}
    core.create_namespaced_event(namespace, event)
    found = core.list_namespaced_event(namespace, field_selector="involvedObject.name=a,reason=Validated")
    assert [item.message for item in found.items] == ["ok"]


def test_events_api_and_core_events_are_the_same_objects(http: httpx.Client, namespace: str) -> None:
    new_api = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "ma.1"},
             "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "mtproxy",
             "reportingInstance": "mtproxy-0", "action": "Reconcile", "reason": "Validated", "type": "Normal",
             "note": "grants 1 rule", "regarding": {"kind": "MetricAccess", "name": "a", "namespace": namespace}}
    created = http.post(new_api, json=event)
    assert created.status_code == 201, created.text
    core = http.get(f"/api/v1/namespaces/{namespace}/events/ma.1").json()
    assert (core["message"], core["reportingComponent"], core["involvedObject"]["name"]) == (
        "grants 1 rule", "mtproxy", "a")
    selected = http.get(new_api, params={"fieldSelector": "regarding.name=a,reason=Validated"}).json()["items"]
    assert [item["note"] for item in selected] == ["grants 1 rule"]
    assert http.get(new_api, params={"fieldSelector": "regarding.name=b"}).json()["items"] == []
    bad_time = http.post(new_api, json={**event, "metadata": {"name": "ma.2"}, "eventTime": "2024-01-01T00:00:00Z"})
    assert bad_time.status_code == 400


def test_creating_in_a_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map("no-such-namespace", {"metadata": {"name": "c"}})
    status = _status(caught.value)
    assert caught.value.status == 404 and status["message"] == 'namespaces "no-such-namespace" not found'
    assert status["details"] == {"name": "no-such-namespace", "kind": "namespaces"}


def test_the_servers_own_namespaces_exist(core: client.CoreV1Api) -> None:
    names = {item.metadata.name for item in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    assert core.read_namespace("default").metadata.labels == {"kubernetes.io/metadata.name": "default"}


def test_deleting_a_namespace_marks_it_terminating_and_closes_it(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    core.delete_namespace(namespace)
    marked = core.read_namespace(namespace)
    assert marked.status.phase == "Terminating" and marked.metadata.deletion_timestamp is not None
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "d"}})
    assert refused.value.status == 403 and _status(refused.value)["reason"] == "Forbidden"


@pytest.mark.apidouble_only  # the namespace controller of kube-controller-manager does this; none runs in tests
def test_deleting_a_namespace_terminates_then_removes_it(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    core.delete_namespace(namespace)
    assert core.read_namespace(namespace).status.phase == "Terminating"
    from kubernetes import watch

    stream = watch.Watch().stream(core.list_namespace, field_selector=f"metadata.name={namespace}",
                                  timeout_seconds=5)
    assert any(event["type"] == "DELETED" for event in stream)
    assert core.list_namespaced_config_map(namespace).items == []


def _eventually(check: Callable[[], bool], *, timeout_s: float = 30.0) -> None:
    """Wait for ``check()``: the real server finishes CRD work (naming, finalizers) asynchronously."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not true after {timeout_s} s"
        time.sleep(0.05)


def _lists(custom: client.CustomObjectsApi, namespace: str) -> int:
    try:
        custom.list_namespaced_custom_object("example.com", "v1", namespace, "widgets")
    except client.ApiException as exc:
        return int(exc.status)
    return 200


def test_deleting_a_crd_removes_its_objects_and_stops_serving_it(api_client: client.ApiClient,
                                                                 namespace: str) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }

    def established() -> bool:
        conditions = extensions.read_custom_resource_definition("widgets.example.com").status.conditions or []
        states = {c.type: c.status for c in conditions}
        return states.get("NamesAccepted") == "True" and states.get("Established") == "True"

    extensions.create_custom_resource_definition(crd)
    _eventually(established)
    _eventually(lambda: _lists(custom, namespace) == 200)
    custom.create_namespaced_custom_object("example.com", "v1", namespace, "widgets",
                                           {"apiVersion": "example.com/v1", "kind": "Widget",
                                            "metadata": {"name": "w"}, "anything": {"goes": 1}})
    extensions.delete_custom_resource_definition("widgets.example.com")
    _eventually(lambda: _lists(custom, namespace) == 404)
    _eventually(lambda: "widgets.example.com" not in {
        item.metadata.name for item in extensions.list_custom_resource_definition().items})
    extensions.create_custom_resource_definition(crd)
    _eventually(established)
    _eventually(lambda: _lists(custom, namespace) == 200)
    listed = custom.list_namespaced_custom_object("example.com", "v1", namespace, "widgets")
    assert listed["items"] == [], "the objects went with the CRD"
    extensions.delete_custom_resource_definition("widgets.example.com")
    _eventually(lambda: "widgets.example.com" not in {
        item.metadata.name for item in extensions.list_custom_resource_definition().items})


def test_crd_with_wrong_name_is_422(api_client: client.ApiClient) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "wrong.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "things", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    with pytest.raises(client.ApiException) as caught:
        client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)
    assert caught.value.status == 422
    assert _status(caught.value)["details"]["causes"][0]["field"] == "metadata.name"
