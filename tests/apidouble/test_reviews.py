"""Contract: TokenReview and SubjectAccessReview answered from the configurable rules table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from mtproxy.apidouble import AccessRule, ReviewRules, RunningDouble, UserInfo

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


@pytest.fixture
def rules(double: RunningDouble) -> Iterator[ReviewRules]:
    double.set_review_rules(RULES)
    yield RULES
    double.set_review_rules(ReviewRules())


def _access(api_client: client.ApiClient, spec: dict[str, object]) -> client.V1SubjectAccessReviewStatus:
    review = client.AuthorizationV1Api(api_client).create_subject_access_review({"spec": spec})
    return review.status


def test_known_token_is_authenticated_with_its_user(api_client: client.ApiClient, rules: ReviewRules) -> None:
    review = client.AuthenticationV1Api(api_client).create_token_review(
        {"spec": {"token": "token-alice", "audiences": ["mtproxy"]}})
    assert review.status.authenticated is True
    assert review.status.user.username == "alice" and review.status.user.uid == "u1"
    assert review.status.user.groups == ["tenants", "system:authenticated"]
    assert review.status.audiences == ["mtproxy"]
    assert review.spec.token == "token-alice"


def test_unknown_token_is_not_authenticated(api_client: client.ApiClient, rules: ReviewRules) -> None:
    review = client.AuthenticationV1Api(api_client).create_token_review({"spec": {"token": "nope"}})
    assert review.status.authenticated is False and review.status.error


def test_access_is_allowed_by_group_rule(api_client: client.ApiClient, rules: ReviewRules) -> None:
    status = _access(api_client, {"user": "bob", "groups": ["tenants"],
                                  "resourceAttributes": {"verb": "get", "resource": "namespaces", "namespace": "a"}})
    assert status.allowed is True and status.reason == "tenants read namespaces"


def test_first_matching_rule_decides_and_can_deny(api_client: client.ApiClient, rules: ReviewRules) -> None:
    status = _access(api_client, {"user": "alice", "groups": ["tenants"], "resourceAttributes": {
        "verb": "get", "resource": "namespaces", "namespace": "forbidden"}})
    assert status.allowed is False and status.denied is True and status.reason == "explicitly denied"


def test_no_matching_rule_is_not_allowed(api_client: client.ApiClient, rules: ReviewRules) -> None:
    status = _access(api_client, {"user": "bob", "groups": ["tenants"],
                                  "resourceAttributes": {"verb": "delete", "resource": "namespaces"}})
    assert status.allowed is False and not status.denied


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
