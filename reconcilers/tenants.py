"""Tenant policies: all MetricAccess objects of a namespace merged into one AccessPolicy.

``desired_policy`` is pure: the rules of every object in the namespace, each object's
patterns ANDed with its own ``labelSelectors`` and, where that object has
``metricIsolation: true``, with ``namespace="<ns>"``. The union is the policy (the
original filtered a namespace with two objects to nothing; §3.2). Guardrails decide
which objects count: with ``require_isolation`` on, an object without isolation outside
``unisolated_namespaces`` grants nothing and is reported, never silently widened or
narrowed. A namespace whose objects grant nothing has no policy, and its tenant gets 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mtproxy.api import GuardrailsConfig, MetricAccess, Rule, rules_for
from mtproxy.proxy import AccessPolicy

__all__ = ["Grant", "PolicyDecision", "desired_policy", "granted_rules", "isolation_denied", "policy_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecision:
    """A namespace's policy (None: no access) and the objects the guardrails excluded."""

    policy: AccessPolicy | None
    denied: tuple[tuple[str, str], ...] = ()
    """(``namespace/name``, reason) of each object that grants nothing."""


def isolation_denied(access: MetricAccess, guardrails: GuardrailsConfig) -> str | None:
    """Why the guardrails refuse this object's lack of isolation, or None when they do not."""
    if access.spec.metric_isolation or not guardrails.require_isolation:
        return None
    if access.metadata.namespace in guardrails.unisolated_namespaces:
        return None
    return (
        "metricIsolation: false is not allowed in this namespace "
        "(guardrails.require_isolation; ask the platform team to list it in guardrails.unisolated_namespaces)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """What one object in force grants its namespace."""

    key: str
    """``namespace/name`` of the object."""
    rules: tuple[Rule, ...]
    isolated: bool


def granted_rules(access: MetricAccess) -> tuple[Rule, ...]:
    """The rules one object grants: each pattern ANDed with its label selectors and, under
    isolation, with its own namespace. The one place rules are derived from a spec."""
    spec = access.spec
    return rules_for(
        spec.metrics,
        label_selectors=spec.label_selectors,
        isolation_namespace=access.metadata.namespace if spec.metric_isolation else None,
    )


def policy_of(namespace: str, grants: Iterable[Grant]) -> AccessPolicy | None:
    """The union of the grants of one namespace's objects in force; None when they grant nothing."""
    rules: list[Rule] = []
    sources: list[str] = []
    isolated = True
    for grant in sorted(grants, key=lambda g: g.key):
        rules.extend(grant.rules)
        sources.append(grant.key)
        isolated = isolated and grant.isolated
    if not rules:
        return None
    return AccessPolicy.of(namespace, rules, isolated=isolated, sources=sources)


def desired_policy(namespace: str, objects: Iterable[MetricAccess], *, guardrails: GuardrailsConfig) -> PolicyDecision:
    """The merged policy of ``namespace`` from its MetricAccess ``objects`` (tools and tests;
    the service derives the same from its verdicts, ``mtproxy.reconcilers.verdict``)."""
    grants: list[Grant] = []
    denied: list[tuple[str, str]] = []
    for access in objects:
        if access.metadata.namespace != namespace:
            continue
        reason = isolation_denied(access, guardrails)
        if reason is not None:
            denied.append((access.key, reason))
            continue
        grants.append(Grant(key=access.key, rules=granted_rules(access), isolated=access.spec.metric_isolation))
    return PolicyDecision(policy=policy_of(namespace, grants), denied=tuple(sorted(denied)))
