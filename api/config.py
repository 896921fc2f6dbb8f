"""The service's config file as typed, frozen values with the original's defaults.

Key names are the original's snake_case (original-behaviour §2, §8); the loader is
``mtproxy.api.config_schema``. Durations stay strings as written and are read through
the ``*_ms`` properties, so a dumped config reads back the same.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from mtproxy.api.durations import parse_duration_ms

__all__ = [
    "ApiKeyAuthConfig",
    "AuthConfig",
    "AuthType",
    "Config",
    "DiscoveryConfig",
    "GuardrailsConfig",
    "JWTAuthConfig",
    "KubernetesAuthConfig",
    "KubernetesDiscoveryConfig",
    "ProxyConfig",
    "QueryMode",
    "RemoteWriteConfig",
    "StaticDiscoveryConfig",
    "TenantSource",
    "TenantsConfig",
]


class AuthType(enum.Enum):
    """How the proxy learns who the tenant is (``auth.type``)."""

    NONE = "none"
    KUBERNETES = "kubernetes"
    JWT = "jwt"
    APIKEY = "apikey"


class TenantSource(enum.Enum):
    """Where MetricAccess objects come from (``tenants.source``)."""

    KUBERNETES = "kubernetes"
    FILES = "files"


class QueryMode(enum.Enum):
    """How several backends answer one query (``proxy.query_mode``)."""

    LOAD_BALANCE = "load_balance"
    FAN_OUT = "fan_out"


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesDiscoveryConfig:
    """``discovery.kubernetes``: which objects are infrastructure Prometheus backends."""

    namespaces: tuple[str, ...] = ()
    """Empty: every namespace."""
    label_selectors: Mapping[str, str] = field(default_factory=lambda: {"app": "prometheus"})
    annotation_selectors: Mapping[str, str] = field(default_factory=dict)
    port: str = "9090"
    resource_types: tuple[str, ...] = ("Service",)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticDiscoveryConfig:
    """``discovery.static``: fixed backend URLs, for running without Kubernetes."""

    targets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryConfig:
    """``discovery``."""

    refresh_interval: str = "30s"
    kubernetes: KubernetesDiscoveryConfig = field(default_factory=KubernetesDiscoveryConfig)
    static: StaticDiscoveryConfig = field(default_factory=StaticDiscoveryConfig)
    health_check_interval: str = "10s"
    health_check_timeout: str = "5s"
    unhealthy_threshold: int = 2
    healthy_threshold: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantsConfig:
    """``tenants``: where tenants' MetricAccess objects are read from."""

    watch_all_namespaces: bool = False
    watch_namespaces: tuple[str, ...] = ()
    """Empty (and ``watch_all_namespaces`` false) also means every namespace, as in the original."""
    source: TenantSource = TenantSource.KUBERNETES
    files_directory: str | None = None
    """``tenants.files.directory``: MetricAccess YAML files, for ``source: files``."""
    status_interval: str = "30s"
    """How often, at most, status counters (series, samples, last write) are written back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyConfig:
    """``proxy``: the query side."""

    enable_caching: bool = False
    cache_ttl: str = "5m"
    cache_max_bytes: int = 64 * 1024 * 1024
    enable_metrics: bool = False
    enable_request_logging: bool = False
    enable_debug_endpoints: bool = True
    max_concurrent_requests: int = 100
    max_concurrent_requests_per_tenant: int | None = None
    """One tenant's share of ``max_concurrent_requests``; None: a quarter of it, at least 1."""
    queue_timeout: str = "5s"
    backend_timeout: str = "30s"
    query_mode: QueryMode = QueryMode.LOAD_BALANCE
    replica_labels: tuple[str, ...] = ()
    max_request_body_bytes: int = 4 * 1024 * 1024
    max_query_bytes: int = 256 * 1024
    """Longest ``query`` (or ``match[]`` list) a tenant may send; beyond it: 400."""
    max_query_range: str | None = None
    """Longest ``end - start`` of a range query; None: no limit."""
    max_points: int | None = None
    """Most points per series of a range query (``(end - start) / step + 1``); None: no limit."""
    backend_compression: bool = False
    """Ask backends for gzip (a backend behind a slow or metered link); by default they answer
    uncompressed and the proxy compresses for clients (see mtproxy.proxy.encoding)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteWriteConfig:
    """``remote_write``: the forwarding side."""

    enabled: bool = False
    default_interval: str = "30s"
    max_concurrent_jobs: int = 10
    collection_timeout: str = "30s"
    retry_attempts: int = 3
    retry_delay: str = "5s"
    batch_size: int = 5000
    max_backfill: str = "1h"
    host_aliases: Mapping[str, str] = field(default_factory=dict)
    """In-cluster host name to ``host:port``, for running outside a cluster."""
    state_dir: str | None = None
    """Where files mode keeps each job's last collection time across restarts."""
    secrets_file: str | None = None
    """Files mode: YAML ``namespace: {secret: {key: value}}`` standing in for Kubernetes Secrets."""
    safety_delay: str = "2s"
    """How far behind now a cycle reads: at least the source's scrape duration."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JWTAuthConfig:
    """``auth.jwt``."""

    secret_key: str | None = None
    jwks_file: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    namespaces_claim: str = "namespaces"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyAuthConfig:
    """``auth.apikey``: static keys mapped to the namespaces they may read."""

    header_name: str = "X-API-Key"
    static_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    keys_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesAuthConfig:
    """``auth.kubernetes``: TokenReview, then SubjectAccessReview on the requested namespace."""

    verb: str = "get"
    group: str = "observability.ethos.io"
    resource: str = "metricaccesses"
    cache_ttl: str = "10s"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    """``auth``."""

    type: AuthType = AuthType.NONE
    jwt: JWTAuthConfig = field(default_factory=JWTAuthConfig)
    apikey: ApiKeyAuthConfig = field(default_factory=ApiKeyAuthConfig)
    kubernetes: KubernetesAuthConfig = field(default_factory=KubernetesAuthConfig)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardrailsConfig:
    """``guardrails``: limits set by the platform team, not by MetricAccess authors.

    Closed by default: whoever may write a MetricAccess in its own namespace must not be able
    to grant itself another namespace's series, so isolation is required unless the platform
    lists the namespaces that may go without (the original's openness is
    ``require_isolation: false``).
    """

    require_isolation: bool = True
    unisolated_namespaces: tuple[str, ...] = ()
    """Namespaces allowed ``metricIsolation: false`` when ``require_isolation`` is on."""
    allow_foreign_target_namespace: bool = False
    remote_write_url_allowlist: tuple[str, ...] = ()
    """URL prefixes a ``remote_write`` target may use; empty: no remote_write targets at all."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole config file."""

    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    tenants: TenantsConfig = field(default_factory=TenantsConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    remote_write: RemoteWriteConfig = field(default_factory=RemoteWriteConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    guardrails: GuardrailsConfig = field(default_factory=GuardrailsConfig)

    @property
    def backend_timeout_ms(self) -> int:
        """``proxy.backend_timeout`` in milliseconds."""
        return parse_duration_ms(self.proxy.backend_timeout)
