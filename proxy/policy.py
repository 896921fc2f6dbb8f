"""A tenant's access policy: the union of its rules, with a stable hash for cache keys.

The reconcilers build one ``AccessPolicy`` per namespace from all its MetricAccess
objects; the proxy only reads it. A series is visible iff some rule matches it (as the
backend decides; ``admits`` answers yes only where that is certain here). The hash
depends only on the set of rules, so two replicas (or two reconciles) that see the same
objects produce the same hash, and a cache keyed by it never serves one policy's answer
to another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mtproxy.api import Rule

__all__ = ["AccessPolicy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPolicy:
    """What one tenant namespace may see."""

    namespace: str
    rules: tuple[Rule, ...]
    """De-duplicated, in a canonical order (by selector text)."""
    isolated: bool = True
    """Whether every rule carries ``namespace="<namespace>"`` (all objects use metricIsolation)."""
    sources: tuple[str, ...] = ()
    """``namespace/name`` of the MetricAccess objects the rules came from, for debug pages."""
    digest: str = field(default="", compare=False)
    """Hex SHA-256 of the canonical rules; filled in by ``of``."""

    @classmethod
    def of(
        cls, namespace: str, rules: Iterable[Rule], *, isolated: bool = True, sources: Iterable[str] = ()
    ) -> AccessPolicy:
        """Build a policy in canonical form (sorted, unique rules) with its digest."""
        canonical = tuple(sorted(set(rules), key=lambda r: r.selector()))
        text = "\n".join([namespace, *(r.selector() for r in canonical)])
        return cls(
            namespace=namespace,
            rules=canonical,
            isolated=isolated,
            sources=tuple(sorted(sources)),
            digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )

    def admits(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with these labels is certainly visible to the tenant.

        Fails closed: a rule whose regex verdict the backend's Go regexp might not share
        (``Rule.verdict`` is None) admits nothing here.
        """
        return any(rule.verdict(labels) is True for rule in self.rules)
