"""Contract: TokenReview and SubjectAccessReview.

The double answers reviews from a configurable rules table; a real server from its
authenticators and RBAC. The first tests run on both: the same facts are set up the way each
server takes them (rules on the double; a static token and RBAC objects on the real one)
and the answers must have the same shape and meaning. The rules-table tests that follow are
the double's alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubetesting import KubeServer
from realservers.kubeapiserver import USERS

from mtproxy.apidouble import AccessRule, ReviewRules, RunningDouble, UserInfo

from .conftest import on_real_server

RULES = ReviewRules(
    tokens={"token-alice": UserInfo(username="alice", uid="u1", groups=("tenants", "system:authenticated"))},
    access=(
        AccessRule(users=("alice",), verbs=("get",), api_groups=("",), resources=("namespaces",),
                   namespaces=("forbidden",), allowed=False, reason="explicitly denied"),
        AccessRule(groups=("tenants",), verbs=("get", "list"), api_groups=("",), resources=("namespaces",),
                   reason="tenants read namespaces"),
        AccessRule(users=("*",), verbs=("get",), non_resource_paths=("/healthz",)),
    ),
)


# -- on both servers ---------------------------------------------------------------------------

ALICE = USERS["alice"]
"""On the real server a static-token user; the double is given the same user as a rule."""


@pytest.fixture
def grant_tenants(server: KubeServer, namespace: str) -> Iterator[Callable[[], None]]:
    """Allow group ``tenants`` to get and list ConfigMaps in the test's namespace, as each server takes it."""

    def grant() -> None:
        if on_real_server(server):
            server.grant(namespace, verbs=["get", "list"], resources=["configmaps"],  # type: ignore[attr-defined]
                         group="tenants")
        else:
            assert isinstance(server, RunningDouble)
            server.set_review_rules(ReviewRules(
                tokens={ALICE.token: UserInfo(username=ALICE.name, uid=ALICE.uid,
                                              groups=(*ALICE.groups, "system:authenticated"))},
                access=(AccessRule(groups=("tenants",), verbs=("get", "list"), api_groups=("",),
                                   resources=("configmaps",), namespaces=(namespace,)),
                        AccessRule(groups=("system:authenticated",), verbs=("get",),
                                   non_resource_paths=("/healthz",))),
            ))

    if not on_real_server(server):
        grant_tokens_only = ReviewRules(tokens={ALICE.token: UserInfo(
            username=ALICE.name, uid=ALICE.uid, groups=(*ALICE.groups, "system:authenticated"))})
        server.set_review_rules(grant_tokens_only)  # type: ignore[attr-defined]
    yield grant
    if not on_real_server(server):
        server.set_review_rules(ReviewRules())  # type: ignore[attr-defined]


def _review(api_client: client.ApiClient, spec: dict[str, Any]) -> dict[str, Any]:
    answer = client.AuthorizationV1Api(api_client).create_subject_access_review({"spec": spec})
    status: dict[str, Any] = api_client.sanitize_for_serialization(answer)["status"]
    return status


def test_token_review_names_the_tokens_user(api_client: client.ApiClient,
                                            grant_tenants: Callable[[], None]) -> None:
    review = client.AuthenticationV1Api(api_client).create_token_review({"spec": {"token": ALICE.token}})
    assert review.status.authenticated is True and not review.status.error
    assert (review.status.user.username, review.status.user.uid) == (ALICE.name, ALICE.uid)
    assert review.status.user.groups == [*ALICE.groups, "system:authenticated"]


def test_token_review_of_an_unknown_token_says_why_and_leaves_authenticated_out(
    api_client: client.ApiClient, grant_tenants: Callable[[], None]
) -> None:
    answer = client.AuthenticationV1Api(api_client).create_token_review({"spec": {"token": "nope"}})
    status = api_client.sanitize_for_serialization(answer)["status"]
    assert status == {"user": {}, "error": "invalid bearer token"}


def test_access_review_follows_the_grant(api_client: client.ApiClient, namespace: str,
                                         grant_tenants: Callable[[], None]) -> None:
    spec = {"user": ALICE.name, "groups": [*ALICE.groups, "system:authenticated"],
            "resourceAttributes": {"verb": "get", "resource": "configmaps", "namespace": namespace}}
    assert _review(api_client, spec) == {"allowed": False}
    grant_tenants()
    allowed = _review(api_client, spec)
    assert allowed["allowed"] is True and "denied" not in allowed
    elsewhere = {**spec, "resourceAttributes": {"verb": "get", "resource": "configmaps", "namespace": "default"}}
    assert _review(api_client, elsewhere) == {"allowed": False}
    deleting = {**spec, "resourceAttributes": {"verb": "delete", "resource": "configmaps", "namespace": namespace}}
    assert _review(api_client, deleting) == {"allowed": False}


def test_access_review_of_a_non_resource_path(api_client: client.ApiClient,
                                              grant_tenants: Callable[[], None]) -> None:
    grant_tenants()
    status = _review(api_client, {"user": "anyone", "groups": ["system:authenticated"],
                                  "nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    assert status["allowed"] is True


# -- the double's rules table --------------------------------------------------------------------


@pytest.fixture
def rules(double: RunningDouble) -> Iterator[ReviewRules]:
    double.set_review_rules(RULES)
    yield RULES
    double.set_review_rules(ReviewRules())


def _access(api_client: client.ApiClient, spec: dict[str, object]) -> client.V1SubjectAccessReviewStatus:
    review = client.AuthorizationV1Api(api_client).create_subject_access_review({"spec": spec})
    return review.status


@pytest.mark.apidouble_only
def test_known_token_is_authenticated_with_its_user(api_client: client.ApiClient, rules: ReviewRules) -> None:
    review = client.AuthenticationV1Api(api_client).create_token_review(
        {"spec": {"token": "token-alice", "audiences": ["mtproxy"]}})
    assert review.status.authenticated is True
    assert review.status.user.username == "alice" and review.status.user.uid == "u1"
    assert review.status.user.groups == ["tenants", "system:authenticated"]
    assert review.status.audiences == ["mtproxy"]
    assert review.spec.token == "token-alice"


@pytest.mark.apidouble_only
def test_unknown_token_is_not_authenticated(api_client: client.ApiClient, rules: ReviewRules) -> None:
    review = client.AuthenticationV1Api(api_client).create_token_review({"spec": {"token": "nope"}})
    assert not review.status.authenticated and review.status.error


@pytest.mark.apidouble_only
def test_access_is_allowed_by_group_rule(api_client: client.ApiClient, rules: ReviewRules) -> None:
    status = _access(api_client, {"user": "bob", "groups": ["tenants"],
                                  "resourceAttributes": {"verb": "get", "resource": "namespaces", "namespace": "a"}})
    assert status.allowed is True and status.reason == "tenants read namespaces"


@pytest.mark.apidouble_only
def test_first_matching_rule_decides_and_can_deny(api_client: client.ApiClient, rules: ReviewRules) -> None:
    status = _access(api_client, {"user": "alice", "groups": ["tenants"], "resourceAttributes": {
        "verb": "get", "resource": "namespaces", "namespace": "forbidden"}})
    assert status.allowed is False and status.denied is True and status.reason == "explicitly denied"


@pytest.mark.apidouble_only
def test_no_matching_rule_is_not_allowed(api_client: client.ApiClient, rules: ReviewRules) -> None:
    status = _access(api_client, {"user": "bob", "groups": ["tenants"],
                                  "resourceAttributes": {"verb": "delete", "resource": "namespaces"}})
    assert status.allowed is False and not status.denied


@pytest.mark.apidouble_only
def test_non_resource_rules(api_client: client.ApiClient, rules: ReviewRules) -> None:
    status = _access(api_client, {"user": "anyone", "nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    assert status.allowed is True


def test_rules_load_from_a_mapping() -> None:
    loaded = ReviewRules.from_mapping({
        "tokens": {"t": {"username": "alice", "groups": ["g"]}},
        "access": [{"groups": ["g"], "verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
    })
    assert loaded.tokens["t"] == UserInfo(username="alice", groups=("g",))
    assert loaded.access == (AccessRule(groups=("g",), verbs=("get",), api_groups=("",), resources=("pods",)),)


def test_access_rule_needs_a_subject() -> None:
    with pytest.raises(ValueError, match="users or groups"):
        AccessRule(verbs=("get",))
