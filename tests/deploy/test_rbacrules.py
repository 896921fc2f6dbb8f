"""The RBAC arithmetic of the RBAC proof: request attributes, grants of bound roles, what is missing or unused."""

from __future__ import annotations

from typing import Any

import pytest
from deploy.rbacrules import Access, Grant, NonResource, access_of, grants_of, missing, unused

SA = ("monitoring", "proxy")


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        pytest.param("GET", "/apis/observability.ethos.io/v1alpha1/metricaccesses", {"limit": "500"},
                     Access("observability.ethos.io", "metricaccesses", "", "list", None), id="list-all-namespaces"),
        pytest.param("GET", "/apis/observability.ethos.io/v1alpha1/metricaccesses", {"watch": "true"},
                     Access("observability.ethos.io", "metricaccesses", "", "watch", None), id="watch"),
        pytest.param("PATCH", "/apis/observability.ethos.io/v1alpha1/namespaces/a/metricaccesses/x/status", {},
                     Access("observability.ethos.io", "metricaccesses", "status", "patch", "a"), id="status-patch"),
        pytest.param("GET", "/api/v1/namespaces/a/secrets/s", {}, Access("", "secrets", "", "get", "a"),
                     id="core-get"),
        pytest.param("PUT", "/apis/coordination.k8s.io/v1/namespaces/m/leases/l", {},
                     Access("coordination.k8s.io", "leases", "", "update", "m"), id="update"),
        pytest.param("DELETE", "/api/v1/namespaces/m/configmaps/c", {}, Access("", "configmaps", "", "delete", "m"),
                     id="delete"),
        pytest.param("DELETE", "/api/v1/namespaces/m/configmaps", {},
                     Access("", "configmaps", "", "deletecollection", "m"), id="deletecollection"),
        pytest.param("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {},
                     Access("authentication.k8s.io", "tokenreviews", "", "create", None), id="cluster-scoped-create"),
        pytest.param("POST", "/api/v1/namespaces/m/serviceaccounts/sa/token", {},
                     Access("", "serviceaccounts", "token", "create", "m"), id="subresource-create"),
        pytest.param("GET", "/api/v1/namespaces/a", {}, Access("", "namespaces", "", "get", "a"), id="a-namespace"),
        pytest.param("GET", "/api/v1/namespaces", {}, Access("", "namespaces", "", "list", None), id="namespaces"),
        pytest.param("PUT", "/api/v1/namespaces/a/finalize", {}, Access("", "namespaces", "finalize", "update", "a"),
                     id="namespace-subresource"),
        pytest.param("GET", "/version", {}, NonResource("/version", "get"), id="non-resource"),
        pytest.param("GET", "/apis/events.k8s.io/v1", {}, NonResource("/apis/events.k8s.io/v1", "get"),
                     id="discovery-document"),
    ],
)
def test_access_of_gives_the_attributes_rbac_authorizes(
    method: str, path: str, query: dict[str, str], expected: Access | NonResource
) -> None:
    assert access_of(method, path, query) == expected


def _manifests(*, role_rules: list[dict[str, Any]], cluster_rules: list[dict[str, Any]],
               subject: tuple[str, str] = SA) -> list[dict[str, Any]]:
    account = {"kind": "ServiceAccount", "namespace": subject[0], "name": subject[1]}
    return [
        {"kind": "ClusterRole", "metadata": {"name": "c"}, "rules": cluster_rules},
        {"kind": "ClusterRoleBinding", "metadata": {"name": "c"}, "subjects": [account],
         "roleRef": {"kind": "ClusterRole", "name": "c"}},
        {"kind": "Role", "metadata": {"name": "r", "namespace": "monitoring"}, "rules": role_rules},
        {"kind": "RoleBinding", "metadata": {"name": "r", "namespace": "monitoring"}, "subjects": [account],
         "roleRef": {"kind": "Role", "name": "r"}},
    ]


def test_grants_expand_every_group_resource_and_verb_of_bound_roles_only() -> None:
    documents = _manifests(
        role_rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "delete"]}],
        cluster_rules=[{"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]}],
    )
    assert sorted(grants_of(documents, SA)) == [
        Grant("", "configmaps", "delete", "monitoring", "Role/r"),
        Grant("", "configmaps", "get", "monitoring", "Role/r"),
        Grant("", "events", "create", None, "ClusterRole/c"),
        Grant("events.k8s.io", "events", "create", None, "ClusterRole/c"),
    ]
    assert grants_of(documents, ("monitoring", "someone-else")) == []


@pytest.mark.parametrize("rule", [
    pytest.param({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}, id="wildcard-group"),
    pytest.param({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}, id="wildcard-verb"),
    pytest.param({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["p"]},
                 id="resource-names"),
])
def test_grants_refuse_rules_they_cannot_expand_exactly(rule: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        grants_of(_manifests(role_rules=[], cluster_rules=[rule]), SA)


def test_a_role_grant_allows_its_namespace_only_and_a_cluster_grant_allows_all() -> None:
    in_role = Grant("", "configmaps", "get", "monitoring", "Role/r")
    everywhere = Grant("", "secrets", "get", None, "ClusterRole/c")
    assert in_role.allows(Access("", "configmaps", "", "get", "monitoring"))
    assert not in_role.allows(Access("", "configmaps", "", "get", "team-a"))
    assert not in_role.allows(Access("", "configmaps", "", "get", None))
    assert everywhere.allows(Access("", "secrets", "", "get", "team-a"))
    assert not everywhere.allows(Access("", "secrets", "status", "get", "team-a"))
    assert missing([Access("", "configmaps", "", "get", "team-a")], [in_role]) == [
        Access("", "configmaps", "", "get", "team-a")]


def test_a_cluster_grant_used_only_in_the_own_namespace_is_unused() -> None:
    """It belongs in the Role: the ClusterRole would grant it in every namespace."""
    grant = Grant("coordination.k8s.io", "leases", "get", None, "ClusterRole/c")
    own = Access("coordination.k8s.io", "leases", "", "get", "monitoring")
    elsewhere = Access("coordination.k8s.io", "leases", "", "get", "team-a")
    assert unused([grant], [own], "monitoring") == [grant]
    assert unused([grant], [own, elsewhere], "monitoring") == []


def test_a_grant_for_another_verb_or_subresource_is_unused() -> None:
    grants = [Grant("observability.ethos.io", "metricaccesses/status", "patch", None, "ClusterRole/c"),
              Grant("observability.ethos.io", "metricaccesses/status", "update", None, "ClusterRole/c")]
    used = [Access("observability.ethos.io", "metricaccesses", "status", "patch", "team-a")]
    assert unused(grants, used, "monitoring") == [grants[1]]
