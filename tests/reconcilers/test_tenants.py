"""desired_policy: the union of a namespace's objects, under the platform's guardrails."""

from __future__ import annotations

from typing import Any

from mtproxy.api import GuardrailsConfig, MetricAccess, MetricAccessSchema
from mtproxy.reconcilers import desired_policy


def _access(name: str, namespace: str, *, isolation: bool, metrics: list[str], **spec: Any) -> MetricAccess:
    doc = {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": namespace, "metricIsolation": isolation, "metrics": metrics, **spec},
    }
    result: MetricAccess = MetricAccessSchema().load(doc)
    return result


def test_two_objects_in_one_namespace_grant_the_union() -> None:
    objects = [
        _access("a", "team-a", isolation=True, metrics=["up"]),
        _access("b", "team-a", isolation=True, metrics=["http_.*"], labelSelectors={"env": "prod"}),
    ]
    decision = desired_policy("team-a", objects, guardrails=GuardrailsConfig())
    assert decision.policy is not None
    admits = decision.policy.admits
    assert admits({"__name__": "up", "namespace": "team-a"})
    assert admits({"__name__": "http_x", "namespace": "team-a", "env": "prod"})
    assert not admits({"__name__": "http_x", "namespace": "team-a"})  # labelSelectors stay per object
    assert not admits({"__name__": "up", "namespace": "team-b"})
    assert decision.policy.sources == ("team-a/a", "team-a/b")
    assert decision.policy.isolated


def test_objects_of_other_namespaces_are_ignored() -> None:
    objects = [_access("a", "team-b", isolation=True, metrics=["up"])]
    assert desired_policy("team-a", objects, guardrails=GuardrailsConfig()).policy is None


def test_require_isolation_excludes_unisolated_object_and_says_why() -> None:
    objects = [
        _access("open", "team-a", isolation=False, metrics=["secret"]),
        _access("closed", "team-a", isolation=True, metrics=["up"]),
    ]
    decision = desired_policy("team-a", objects, guardrails=GuardrailsConfig(require_isolation=True))
    assert decision.policy is not None
    assert not decision.policy.admits({"__name__": "secret", "namespace": "team-b"})
    assert [key for key, _ in decision.denied] == ["team-a/open"]
    assert "guardrails.require_isolation" in decision.denied[0][1]


def test_unisolated_namespace_exception_is_honoured() -> None:
    objects = [_access("debug", "debug", isolation=False, metrics=["up"])]
    guardrails = GuardrailsConfig(require_isolation=True, unisolated_namespaces=("debug",))
    decision = desired_policy("debug", objects, guardrails=guardrails)
    assert decision.policy is not None
    assert decision.policy.admits({"__name__": "up", "namespace": "anything"})
    assert not decision.policy.isolated


def test_policy_digest_is_stable_across_object_order() -> None:
    objects = [
        _access("a", "team-a", isolation=True, metrics=["up"]),
        _access("b", "team-a", isolation=True, metrics=["foo"]),
    ]
    one = desired_policy("team-a", objects, guardrails=GuardrailsConfig()).policy
    two = desired_policy("team-a", list(reversed(objects)), guardrails=GuardrailsConfig()).policy
    assert one is not None and two is not None
    assert one.digest == two.digest
