"""Contract: list resourceVersion semantics, label and field selectors, limit/continue paging."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from kubernetes import client
from kubetesting import KubeServer

if TYPE_CHECKING:
    from tests.apidouble.conftest import MetricAccesses


def _names(items: list[client.V1ConfigMap]) -> list[str]:
    return [item.metadata.name for item in items]


@pytest.fixture
def labelled(core: client.CoreV1Api, namespace: str) -> str:
    """Four config maps: a(env=prod,tier=web) b(env=dev,tier=db) c(env=test) d(no labels)."""
    for name, labels in (("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev", "tier": "db"}),
                         ("c", {"env": "test"}), ("d", {})):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})
    return namespace


def test_list_carries_the_store_resource_version(core: client.CoreV1Api, namespace: str,
                                                 server: KubeServer) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    listed = core.list_namespaced_config_map(namespace)
    # the store's version at the list: at least the write before it, at most the server's now
    # (a real kube-apiserver writes its own Leases meanwhile, so equality would be a race)
    assert int(created.metadata.resource_version) <= int(listed.metadata.resource_version)
    assert int(listed.metadata.resource_version) <= server.resource_version()
    assert _names(listed.items) == ["a"]


def test_list_items_are_sorted_by_namespace_then_name(core: client.CoreV1Api, namespace: str) -> None:
    for name in ("zeta", "alpha", "mid"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    assert _names(core.list_namespaced_config_map(namespace).items) == ["alpha", "mid", "zeta"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("env=prod", ["a"], id="equals"),
        pytest.param("env==dev", ["b"], id="double-equals"),
        pytest.param("env!=prod", ["b", "c", "d"], id="not-equals-includes-unlabelled"),
        pytest.param("env in (prod, dev)", ["a", "b"], id="in"),
        pytest.param("env notin (prod,dev)", ["c", "d"], id="notin-includes-unlabelled"),
        pytest.param("tier", ["a", "b"], id="exists"),
        pytest.param("!tier", ["c", "d"], id="does-not-exist"),
        pytest.param("env in (prod,dev),tier=db", ["b"], id="conjunction"),
    ],
)
def test_label_selectors(core: client.CoreV1Api, labelled: str, selector: str, expected: list[str]) -> None:
    assert _names(core.list_namespaced_config_map(labelled, label_selector=selector).items) == expected


def test_field_selectors_on_name_and_namespace(core: client.CoreV1Api, labelled: str) -> None:
    assert _names(core.list_namespaced_config_map(labelled, field_selector="metadata.name=b").items) == ["b"]
    assert _names(core.list_namespaced_config_map(labelled, field_selector="metadata.name!=b").items) == [
        "a", "c", "d"]
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={labelled}")
    assert _names(everywhere.items) == ["a", "b", "c", "d"]


def test_unsupported_field_selector_is_400(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_config_map(namespace, field_selector="data.k=v")
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["message"] == \
        '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_unparsable_label_selector_is_400(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_config_map(namespace, label_selector="env in (a")
    assert caught.value.status == 400


def test_paging_returns_every_item_once_at_one_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    for index in range(5):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{index}"}})
    first = core.list_namespaced_config_map(namespace, limit=2)
    assert _names(first.items) == ["c0", "c1"]
    assert first.metadata.remaining_item_count == 3 and first.metadata._continue
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c9"}})
    core.delete_namespaced_config_map("c3", namespace)
    seen = _names(first.items)
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(namespace, limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        seen += _names(page.items)
        token = page.metadata._continue
    assert seen == ["c0", "c1", "c2", "c3", "c4"]


def test_paging_with_selector_fills_pages_with_matches(core: client.CoreV1Api, labelled: str) -> None:
    page = core.list_namespaced_config_map(labelled, label_selector="env", limit=2)
    assert _names(page.items) == ["a", "b"]
    rest = core.list_namespaced_config_map(labelled, label_selector="env", limit=2, _continue=page.metadata._continue)
    assert _names(rest.items) == ["c"] and not rest.metadata._continue


def test_continue_token_older_than_history_is_410(core: client.CoreV1Api, namespace: str,
                                                  server: KubeServer) -> None:
    for index in range(3):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{index}"}})
    first = core.list_namespaced_config_map(namespace, limit=1)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "later"}})
    server.compact()
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_config_map(namespace, limit=1, _continue=first.metadata._continue)
    assert caught.value.status == 410 and json.loads(caught.value.body)["reason"] == "Expired"


def test_exact_list_at_an_older_version_shows_that_state(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}, "data": {"v": "1"}})
    before = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.patch_namespaced_config_map("a", namespace, {"data": {"v": "2"}},
                                     _content_type="application/merge-patch+json")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    old = core.list_namespaced_config_map(namespace, resource_version=before, resource_version_match="Exact")
    assert [(item.metadata.name, item.data) for item in old.items] == [("a", {"v": "1"})]
    assert old.metadata.resource_version == before


def test_exact_list_at_a_compacted_version_is_410(core: client.CoreV1Api, namespace: str,
                                                  server: KubeServer) -> None:
    before = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    server.compact()
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_config_map(namespace, resource_version=before, resource_version_match="Exact")
    assert caught.value.status == 410


def test_not_older_than_list_serves_current_state(core: client.CoreV1Api, namespace: str) -> None:
    before = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    listed = core.list_namespaced_config_map(namespace, resource_version=before,
                                             resource_version_match="NotOlderThan")
    assert _names(listed.items) == ["a"] and int(listed.metadata.resource_version) > int(before)


def test_custom_object_lists_carry_kind_and_list_kind(mas: MetricAccesses, namespace: str) -> None:
    mas.create(namespace, mas.body("a", namespace))
    listed = mas.list(namespace)
    assert listed["kind"] == "MetricAccessList" and listed["apiVersion"] == "observability.ethos.io/v1alpha1"
    assert listed["items"][0]["kind"] == "MetricAccess"
    assert listed["metadata"]["resourceVersion"]
