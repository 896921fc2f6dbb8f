"""Contract: watch streams through ``kubernetes.watch.Watch``: initial state, resume from a
resourceVersion, 410 on compacted history, selectors, bookmarks and timeouts.

Compaction is etcd's on both servers: compacting at revision C keeps C, so a watch may still
resume after C - 1; the compaction tests write twice after their starting version. The real
server sends bookmarks from its watch cache only, about once a minute, so the periodic
bookmark test is the double's; the initial-events bookmark is checked on both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from kubernetes import client, watch
from kubetesting import KubeServer

if TYPE_CHECKING:
    from tests.apidouble.conftest import MetricAccesses

MERGE = "application/merge-patch+json"


def collect(list_function: Callable[..., Any], *args: Any, count: int, timeout_s: int = 2,
            **kwargs: Any) -> list[tuple[str, dict[str, Any]]]:
    """Watch until ``count`` events arrived or the server ended the stream after ``timeout_s``."""
    stream = watch.Watch()
    events: list[tuple[str, dict[str, Any]]] = []
    for event in stream.stream(list_function, *args, timeout_seconds=timeout_s, **kwargs):
        events.append((event["type"], event["raw_object"]))
        if len(events) >= count:
            stream.stop()
    return events


def _summary(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(kind, obj["metadata"].get("name", "")) for kind, obj in events]


def test_watch_without_version_starts_with_synthetic_added(core: client.CoreV1Api, namespace: str) -> None:
    for name in ("a", "b"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    events = collect(core.list_namespaced_config_map, namespace, count=2)
    assert _summary(events) == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_resumes_after_resource_version_in_order(mas: MetricAccesses, namespace: str) -> None:
    start = mas.list(namespace)["metadata"]["resourceVersion"]
    mas.create(namespace, mas.body("a", namespace))
    mas.patch(namespace, "a", {"spec": {"mode": "write"}})
    mas.patch_status(namespace, "a", {"status": {"validatedMetrics": 1}})
    mas.delete(namespace, "a")
    events = collect(mas.api.list_namespaced_custom_object, mas.group, mas.version, namespace, mas.plural,
                     resource_version=start, count=4)
    assert [kind for kind, _ in events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    versions = [int(obj["metadata"]["resourceVersion"]) for _, obj in events]
    assert versions == sorted(versions) and versions[0] > int(start)
    assert events[1][1]["spec"]["mode"] == "write" and events[2][1]["status"] == {"validatedMetrics": 1}
    assert all(obj["kind"] == "MetricAccess" for _, obj in events)


def test_watch_resumes_from_the_middle_of_history(core: client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    events = collect(core.list_namespaced_config_map, namespace, resource_version=first.metadata.resource_version,
                     count=1)
    assert _summary(events) == [("ADDED", "b")]


def test_watch_from_compacted_version_fails_with_410(core: client.CoreV1Api, namespace: str,
                                                     server: KubeServer) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    for name in ("a", "b"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    server.compact()
    with pytest.raises(client.ApiException) as caught:
        collect(core.list_namespaced_config_map, namespace, resource_version=start, count=1)
    assert caught.value.status == 410


def test_watch_from_compacted_version_sends_error_event(core: client.CoreV1Api, namespace: str,
                                                        server: KubeServer, http: httpx.Client) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    for name in ("a", "b"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    server.compact()
    with http.stream("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                      params={"watch": "true", "resourceVersion": start, "timeoutSeconds": "2"}) as response:
        assert response.status_code == 200
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"


def test_watch_with_label_selector_sees_objects_enter_and_leave(core: client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"team": "x"}}}, _content_type=MERGE)
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "v"}}, _content_type=MERGE)
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"team": None}}}, _content_type=MERGE)
    events = collect(core.list_namespaced_config_map, namespace, resource_version=start, label_selector="team=x",
                     count=3)
    assert [kind for kind, _ in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_with_field_selector_on_name(core: client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    for name in ("a", "b"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    core.delete_namespaced_config_map("b", namespace)
    events = collect(core.list_namespaced_config_map, namespace, resource_version=start,
                     field_selector="metadata.name=b", count=2)
    assert _summary(events) == [("ADDED", "b"), ("DELETED", "b")]


def test_watch_resumes_right_after_the_compaction_revision(core: client.CoreV1Api, namespace: str,
                                                          server: KubeServer) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    server.compact()
    assert _summary(collect(core.list_namespaced_config_map, namespace, resource_version=start, count=1)) == [
        ("ADDED", "a")], "etcd keeps the compaction revision itself"


def test_namespaced_watch_sees_only_its_namespace(core: client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    elsewhere = f"{namespace}-elsewhere"
    core.create_namespace({"metadata": {"name": elsewhere}})
    core.create_namespaced_config_map(elsewhere, {"metadata": {"name": "x"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "mine"}})
    assert _summary(collect(core.list_namespaced_config_map, namespace, resource_version=start, count=1)) == [
        ("ADDED", "mine")]


@pytest.mark.apidouble_only  # the real watch cache sends one about once a minute (60 s measured): too slow here
def test_bookmarks_are_sent_when_allowed(core: client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_secret(namespace).metadata.resource_version
    events = collect(core.list_namespaced_secret, namespace, resource_version=start,
                     allow_watch_bookmarks=True, count=1)
    assert events[0][0] == "BOOKMARK"
    bookmark = events[0][1]
    assert bookmark["kind"] == "Secret" and bookmark["apiVersion"] == "v1"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(start)


def test_no_bookmarks_unless_asked_and_timeout_ends_the_stream(core: client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    began = time.monotonic()
    assert collect(core.list_namespaced_config_map, namespace, resource_version=start, count=1, timeout_s=1) == []
    assert 0.9 <= time.monotonic() - began < 3


def test_send_initial_events_ends_with_marked_bookmark(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    events = collect(core.list_namespaced_config_map, namespace, send_initial_events=True,
                     resource_version_match="NotOlderThan", allow_watch_bookmarks=True, count=2)
    assert [kind for kind, _ in events] == ["ADDED", "BOOKMARK"]
    assert events[1][1]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_delivers_changes_made_while_it_is_open(core: client.CoreV1Api, namespace: str,
                                                      server: KubeServer) -> None:
    import threading

    start = core.list_namespaced_config_map(namespace).metadata.resource_version

    def write_later() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "late"}})

    writer = threading.Thread(target=write_later)
    writer.start()
    events = collect(core.list_namespaced_config_map, namespace, resource_version=start, count=1, timeout_s=3)
    writer.join()
    assert _summary(events) == [("ADDED", "late")]
