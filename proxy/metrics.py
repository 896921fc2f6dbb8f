"""The proxy's own Prometheus metrics, on a registry of their own.

Names are the original's (dashboards query them): ``prometheus_proxy_requests_total``
``{method,path,status}`` with ``path`` the route template (bounded cardinality, unlike
the original's raw path), ``prometheus_proxy_request_duration_seconds``,
``prometheus_proxy_backend_requests_total{backend,status}``,
``prometheus_proxy_targets_discovered``, ``prometheus_proxy_tenants_active``; plus
cache, authentication, enforcement and per-tenant counters.

Per-tenant series carry only namespaces that have a policy: a name comes from the client
(a header in ``auth.type: none``), so labelling every name would let any client add series
and would list every namespace that was ever tried. Requests of other namespaces are
counted in one unlabelled counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ProxyMetrics"]


@dataclass
class ProxyMetrics:
    """Every metric the proxy exports, registered on ``registry``."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "prometheus_proxy_requests_total", "Requests answered.", ["method", "path", "status"], registry=r
        )
        self.duration = Histogram(
            "prometheus_proxy_request_duration_seconds", "Request duration.", ["method", "path"], registry=r
        )
        self.backend_requests = Counter(
            "prometheus_proxy_backend_requests_total", "Requests sent to backends.", ["backend", "status"], registry=r
        )
        self.targets = Gauge("prometheus_proxy_targets_discovered", "Backends known.", registry=r)
        self.healthy_targets = Gauge("prometheus_proxy_targets_healthy", "Backends healthy.", registry=r)
        self.tenants = Gauge("prometheus_proxy_tenants_active", "Namespaces with a policy.", registry=r)
        self.tenant_requests = Counter(
            "prometheus_proxy_tenant_requests_total",
            "Requests per tenant with a policy.",
            ["tenant", "status"],
            registry=r,
        )
        self.unknown_tenant_requests = Counter(
            "prometheus_proxy_unknown_tenant_requests_total",
            "Requests from namespaces without a policy (one unlabelled series, so no client adds series).",
            registry=r,
        )
        self.auth_failures = Counter(
            "prometheus_proxy_auth_failures_total", "Requests refused by authentication.", ["reason"], registry=r
        )
        self.enforcement_refusals = Counter(
            "prometheus_proxy_enforcement_refusals_total", "Queries refused by enforcement.", ["reason"], registry=r
        )
        self.enforcement_violations = Counter(
            "prometheus_proxy_enforcement_violations_total",
            "Foreign series found in backend answers after enforcement (a bug if ever non-zero).",
            registry=r,
        )
        self.cache_hits = Counter("prometheus_proxy_cache_hits_total", "Answers served from cache.", registry=r)
        self.cache_misses = Counter(
            "prometheus_proxy_cache_misses_total", "Cacheable answers not in cache.", registry=r
        )
        self.queue_rejections = Counter(
            "prometheus_proxy_queue_rejections_total", "Requests refused with 503 after waiting for a slot.", registry=r
        )
        self.in_flight = Gauge("prometheus_proxy_backend_requests_in_flight", "Backend calls running.", registry=r)
