"""The desired forwarding work of one MetricAccess, as a frozen value the runner executes.

The reconciler computes it from the spec and the config (``reconcilers.metricaccess``);
the runner compares jobs by value, so an edit of any field that matters (rules, relabel
contents, honorLabels, destinations, secrets referenced) gives a different job and a
restart of that job only. Secrets are referenced, never copied in: the runner reads
them when it sends.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from mtproxy.api import RelabelConfig, Rule, SecretKeyRef

__all__ = ["Destination", "DestinationKind", "RemoteWriteJob"]


class DestinationKind(enum.Enum):
    """How data is delivered."""

    REMOTE_WRITE = "remote_write"
    """Prometheus remote-write 1.0 (a tenant Prometheus replica or any receiver)."""
    PUSHGATEWAY = "pushgateway"
    """PUT of the newest values to a Pushgateway group."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    """One place data goes; each has its own queue, backoff and high-water marks."""

    kind: DestinationKind
    url: str
    """Remote write: the full write URL. Pushgateway: the base URL (the group path is added)."""
    name: str
    """What status and logs call it (the in-cluster URL, before host aliases)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    basic_auth_username: str | None = None
    basic_auth_password: SecretKeyRef | None = None
    bearer_token: SecretKeyRef | None = None
    insecure_skip_verify: bool = False
    ca_secret: SecretKeyRef | None = None
    pushgateway_job: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteWriteJob:
    """Everything needed to forward one MetricAccess' series."""

    namespace: str
    name: str
    rules: tuple[Rule, ...]
    interval_ms: int
    destinations: tuple[Destination, ...]
    relabel: tuple[RelabelConfig, ...] = ()
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    honor_labels: bool = False
    batch_size: int = 5000
    max_backfill_ms: int = 3_600_000
    collection_timeout_ms: int = 30_000
    generation: int | None = None

    @property
    def key(self) -> str:
        """``namespace/name``, the original's job ID."""
        return f"{self.namespace}/{self.name}"
