"""KubeClient verbs against the API double: each answer, and each refusal as its error class."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from kubetesting import CONFIGMAPS, METRICACCESSES, configmap, metricaccess, open_kube

from mtproxy.apidouble import InjectedFailure, RunningDouble
from mtproxy.controller.client import EVENTS, KubeClient, open_http_client
from mtproxy.controller.clusterconfig import load_cluster_config
from mtproxy.controller.errors import (
    AlreadyExists,
    APIError,
    Conflict,
    Invalid,
    NotFound,
    RetryableError,
    TransportError,
)
from mtproxy.controller.resource import Resource


async def test_create_then_get_returns_the_stored_object(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(CONFIGMAPS, namespace, configmap(namespace, "a", "1"))
    fetched = await kube.get(CONFIGMAPS, namespace, "a")
    assert fetched["data"] == {"value": "1"}
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    assert fetched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_list_follows_continue_tokens_across_small_pages(double: RunningDouble, namespace: str) -> None:
    await trio.to_thread.run_sync(double.seed, [configmap(namespace, f"cm-{i}", str(i)) for i in range(7)])
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    client, http = open_kube(double.url, event_hooks={"request": [record]})
    async with http:
        items, resource_version = await client.list(CONFIGMAPS, namespace, page_size=2)
    assert [item["metadata"]["name"] for item in items] == [f"cm-{i}" for i in range(7)]
    assert int(resource_version) > 0
    # what the server received: four pages of two, each after the first carrying a continue token
    assert [request.url.params.get("limit") for request in sent] == ["2"] * 4
    assert [bool(request.url.params.get("continue")) for request in sent] == [False, True, True, True]


async def test_list_with_label_selector_returns_only_matching_objects(
    kube: KubeClient, double: RunningDouble, namespace: str
) -> None:
    labelled = configmap(namespace, "labelled", "1")
    labelled["metadata"]["labels"] = {"team": "a"}
    await trio.to_thread.run_sync(double.seed, [labelled, configmap(namespace, "plain", "2")])
    items, _ = await kube.list(CONFIGMAPS, namespace, label_selector="team=a")
    assert [item["metadata"]["name"] for item in items] == ["labelled"]


async def test_create_of_a_taken_name_is_already_exists(kube: KubeClient, namespace: str) -> None:
    await kube.create(CONFIGMAPS, namespace, configmap(namespace, "a", "1"))
    with pytest.raises(AlreadyExists) as caught:
        await kube.create(CONFIGMAPS, namespace, configmap(namespace, "a", "2"))
    assert caught.value.status == 409


async def test_update_with_a_stale_resource_version_is_conflict(kube: KubeClient, namespace: str) -> None:
    first = await kube.create(CONFIGMAPS, namespace, configmap(namespace, "a", "1"))
    second = dict(first, data={"value": "2"})
    updated = await kube.update(CONFIGMAPS, namespace, second)
    assert updated["data"] == {"value": "2"}
    stale = dict(first, data={"value": "3"})
    with pytest.raises(Conflict) as caught:
        await kube.update(CONFIGMAPS, namespace, stale)
    assert caught.value.status == 409 and caught.value.reason == "Conflict"
    assert (await kube.get(CONFIGMAPS, namespace, "a"))["data"] == {"value": "2"}


async def test_merge_patch_changes_only_the_named_keys(kube: KubeClient, namespace: str) -> None:
    body = configmap(namespace, "a", "1")
    body["data"]["other"] = "kept"
    await kube.create(CONFIGMAPS, namespace, body)
    patched = await kube.patch_merge(CONFIGMAPS, namespace, "a", {"data": {"value": "2"}})
    assert patched["data"] == {"value": "2", "other": "kept"}


async def test_patch_status_sets_status_and_leaves_spec_alone(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(METRICACCESSES, namespace, metricaccess(namespace, "ma", metrics=["up"]))
    status = {"conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}]}
    patched = await kube.patch_status(METRICACCESSES, namespace, "ma", status)
    assert patched["status"]["conditions"][0]["status"] == "True"
    assert patched["spec"] == created["spec"]
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]
    # a spec sneaked into a status write is ignored by the subresource
    sneaky = await kube.request(
        "PATCH",
        METRICACCESSES.path(namespace, "ma", subresource="status"),
        body={"spec": {"metrics": ["changed"]}},
        content_type="application/merge-patch+json",
    )
    assert sneaky["spec"] == created["spec"]


async def test_delete_removes_the_object(kube: KubeClient, namespace: str) -> None:
    await kube.create(CONFIGMAPS, namespace, configmap(namespace, "a", "1"))
    await kube.delete(CONFIGMAPS, namespace, "a")
    with pytest.raises(NotFound):
        await kube.get(CONFIGMAPS, namespace, "a")


async def test_create_event_records_an_event_about_the_object(kube: KubeClient, namespace: str) -> None:
    involved = await kube.create(CONFIGMAPS, namespace, configmap(namespace, "a", "1"))
    involved.setdefault("apiVersion", "v1")
    involved.setdefault("kind", "ConfigMap")
    event = await kube.create_event(involved, reason="Synced", message="all good", warning=True)
    assert event["involvedObject"]["uid"] == involved["metadata"]["uid"]
    assert (event["reason"], event["type"]) == ("Synced", "Warning")
    events, _ = await kube.list(EVENTS, namespace)
    assert [e["metadata"]["name"] for e in events] == [event["metadata"]["name"]]


@pytest.mark.parametrize(
    ("resource", "name"),
    [
        pytest.param(CONFIGMAPS, "missing", id="missing-object"),
        pytest.param(Resource(group="example.com", version="v1", plural="widgets"), "x", id="unknown-resource"),
    ],
)
async def test_missing_is_not_found(kube: KubeClient, namespace: str, resource: Resource, name: str) -> None:
    with pytest.raises(NotFound) as caught:
        await kube.get(resource, namespace, name)
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"metrics": []}, "spec.metrics", id="empty-metrics"),
        pytest.param({"metrics": ["up"], "remoteWrite": {"interval": "soon"}}, "spec.remoteWrite.interval",
                     id="bad-interval"),
    ],
)
async def test_schema_violation_is_invalid_with_causes_naming_the_field(
    kube: KubeClient, namespace: str, spec: dict[str, Any], field: str
) -> None:
    body = metricaccess(namespace, "bad", **spec)  # no pop: the parameter dict is shared by both servers
    with pytest.raises(Invalid) as caught:
        await kube.create(METRICACCESSES, namespace, body)
    assert caught.value.status == 422
    assert field in {cause.field for cause in caught.value.causes}, caught.value.causes


@pytest.mark.apidouble_only  # injected failures
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        pytest.param(500, "InternalError", id="500"),
        pytest.param(503, "ServiceUnavailable", id="503"),
        pytest.param(429, "TooManyRequests", id="429"),
    ],
)
async def test_server_errors_are_retryable(
    kube: KubeClient, double: RunningDouble, namespace: str, code: int, reason: str
) -> None:
    failure = InjectedFailure(code=code, reason=reason, path_prefix=f"/api/v1/namespaces/{namespace}/")
    await trio.to_thread.run_sync(double.fail_next, 1, failure)
    with pytest.raises(RetryableError) as caught:
        await kube.get(CONFIGMAPS, namespace, "anything")
    assert (caught.value.status, caught.value.reason) == (code, reason)
    assert not isinstance(caught.value, TransportError)
    # the failure was used up: the next call gets the real answer
    with pytest.raises(NotFound):
        await kube.get(CONFIGMAPS, namespace, "anything")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_transport_error() -> None:
    client, http = open_kube(f"http://127.0.0.1:{_closed_port()}")
    async with http:
        with pytest.raises(TransportError) as caught:
            await client.get(CONFIGMAPS, "default", "a")
    assert isinstance(caught.value, RetryableError) and isinstance(caught.value, APIError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_load_cluster_config_reads_the_doubles_kubeconfig(
    double: RunningDouble, kubeconfig_path: Path, namespace: str
) -> None:
    config = load_cluster_config(str(kubeconfig_path))
    assert config.host == double.url
    assert config.token() == "Bearer apidouble"
    async with open_http_client(config) as http:
        client = KubeClient(http, config=config)
        created = await client.create(CONFIGMAPS, namespace, configmap(namespace, "via-kubeconfig", "1"))
    assert created["metadata"]["namespace"] == namespace
