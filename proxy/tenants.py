"""The tenants the proxy knows: namespace to access policy, read on every request.

The reconciler (or the files watcher) publishes the complete mapping with ``publish``;
readers get the mapping of that moment, never a half-updated one, at the cost of one
dict lookup. A namespace absent from it has no MetricAccess granting anything: its
tenant gets 403, never an empty success.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from mtproxy.proxy.policy import AccessPolicy

__all__ = ["TenantDirectory", "TenantPolicies"]


class TenantDirectory(Protocol):
    """Read-only view of the tenants' policies."""

    def policy_for(self, namespace: str) -> AccessPolicy | None: ...

    def all_policies(self) -> Mapping[str, AccessPolicy]: ...


class TenantPolicies:
    """The published policies (copy-on-publish)."""

    def __init__(self) -> None:
        self._policies: Mapping[str, AccessPolicy] = MappingProxyType({})
        self.version = 0

    def publish(self, policies: Mapping[str, AccessPolicy]) -> None:
        """Replace every policy at once."""
        self._policies = MappingProxyType(dict(policies))
        self.version += 1

    def policy_for(self, namespace: str) -> AccessPolicy | None:
        """The namespace's policy, or None."""
        return self._policies.get(namespace)

    def all_policies(self) -> Mapping[str, AccessPolicy]:
        """Every policy, by namespace."""
        return self._policies
