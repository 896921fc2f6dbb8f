"""MetricAccess v1alpha1 spec and status as typed, frozen values.

Field names are Python's; the JSON names (``metricIsolation``, ``remoteWrite`` …) live in
``mtproxy.api.schemas``, which loads and dumps these classes and from which the CRD is
generated. Defaults here are the original's (original-behaviour §1 and §8).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from mtproxy.api.durations import parse_duration_ms
from mtproxy.api.relabel import RelabelConfig

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "BasicAuth",
    "Condition",
    "ConditionStatus",
    "MetricAccess",
    "MetricAccessSpec",
    "MetricAccessStatus",
    "ObjectMeta",
    "PrometheusTarget",
    "PushgatewayTarget",
    "RemoteWriteEndpoint",
    "RemoteWriteSpec",
    "RemoteWriteStatus",
    "SecretKeyRef",
    "TLSConfig",
    "TargetStatus",
    "TargetType",
]

GROUP = "observability.ethos.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MetricAccess"
PLURAL = "metricaccesses"


class TargetType(enum.Enum):
    """Where a job's data goes (``spec.remoteWrite.target.type``)."""

    PROMETHEUS = "prometheus"
    PUSHGATEWAY = "pushgateway"
    REMOTE_WRITE = "remote_write"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretKeyRef:
    """A key of a Secret in the MetricAccess' own namespace."""

    name: str
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrometheusTarget:
    """A tenant Prometheus Service, or every replica of its StatefulSet through pod DNS."""

    service_name: str
    service_port: int = 9090
    replicas: int | None = None
    stateful_set_name: str | None = None
    target_namespace: str | None = None
    """Namespace of the Service; the MetricAccess' own when unset (guardrails may forbid others)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PushgatewayTarget:
    """A Pushgateway Service; series are pushed under ``job=<job_name>, namespace=<ns>``."""

    service_name: str
    job_name: str
    service_port: int = 9091


@dataclass(frozen=True, slots=True, kw_only=True)
class BasicAuth:
    """HTTP basic auth whose password is read from a Secret, never written in the spec."""

    username: str
    password_secret: SecretKeyRef


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """TLS options of a remote_write endpoint."""

    insecure_skip_verify: bool = False
    ca_secret: SecretKeyRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteWriteEndpoint:
    """Any Prometheus remote-write 1.0 receiver."""

    url: str
    basic_auth: BasicAuth | None = None
    bearer_token_secret: SecretKeyRef | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tls_config: TLSConfig | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteWriteSpec:
    """``spec.remoteWrite``: what to forward, how often, and where.

    The endpoint blocks are siblings of ``target`` as the original's code reads them; the
    schema also accepts them nested under ``target`` and normalises to this shape.
    """

    enabled: bool
    target_type: TargetType
    interval: str = "30s"
    prometheus: PrometheusTarget | None = None
    pushgateway: PushgatewayTarget | None = None
    remote_write: RemoteWriteEndpoint | None = None
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    honor_labels: bool = False
    metric_relabelings: tuple[RelabelConfig, ...] = ()

    @property
    def interval_ms(self) -> int:
        """The collection interval in milliseconds."""
        return parse_duration_ms(self.interval)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricAccessSpec:
    """``spec``: which series a tenant may read, and optionally where to copy them."""

    source: str
    metrics: tuple[str, ...]
    metric_isolation: bool = False
    label_selectors: Mapping[str, str] = field(default_factory=dict)
    remote_write: RemoteWriteSpec | None = None


class ConditionStatus(enum.Enum):
    """metav1.Condition status values."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """A metav1.Condition."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str = ""
    observed_generation: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetStatus:
    """Health of one destination (one replica, a Pushgateway or a URL)."""

    endpoint: str
    healthy: bool
    last_error: str | None = None
    last_success_time: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteWriteStatus:
    """``status.remoteWrite``: the original's fields, extended with totals and per-target health."""

    active: bool
    last_collection: str | None = None
    last_successful_write: str | None = None
    metrics_collected: int | None = None
    samples_forwarded: int | None = None
    last_error: str | None = None
    targets: tuple[TargetStatus, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricAccessStatus:
    """``status``, written by the controller through the status subresource."""

    observed_generation: int | None = None
    conditions: tuple[Condition, ...] = ()
    last_updated: str | None = None
    validated_metrics: tuple[str, ...] = ()
    remote_write: RemoteWriteStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectMeta:
    """The parts of ``metadata`` the project reads."""

    name: str
    namespace: str = ""
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricAccess:
    """A whole MetricAccess object."""

    metadata: ObjectMeta
    spec: MetricAccessSpec
    status: MetricAccessStatus | None = None

    @property
    def key(self) -> str:
        """``namespace/name``, the original's tenant ID."""
        return f"{self.metadata.namespace}/{self.metadata.name}"
