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

__all__ = ["PolicyDecision", "desired_policy", "isolation_denied"]


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


def desired_policy(namespace: str, objects: Iterable[MetricAccess], *, guardrails: GuardrailsConfig) -> PolicyDecision:
    """The merged policy of ``namespace`` from its MetricAccess ``objects``."""
    rules: list[Rule] = []
    sources: list[str] = []
    denied: list[tuple[str, str]] = []
    isolated = True
    for access in sorted(objects, key=lambda a: a.metadata.name):
        if access.metadata.namespace != namespace:
            continue
        reason = isolation_denied(access, guardrails)
        if reason is not None:
            denied.append((access.key, reason))
            continue
        spec = access.spec
        rules.extend(
            rules_for(
                spec.metrics,
                label_selectors=spec.label_selectors,
                isolation_namespace=namespace if spec.metric_isolation else None,
            )
        )
        sources.append(access.key)
        isolated = isolated and spec.metric_isolation
    if not rules:
        return PolicyDecision(policy=None, denied=tuple(denied))
    policy = AccessPolicy.of(namespace, rules, isolated=isolated, sources=sources)
    return PolicyDecision(policy=policy, denied=tuple(denied))
