"""The proxy's own Prometheus metrics, on a registry of their own.

Names are the original's (dashboards query them): ``prometheus_proxy_requests_total``
``{method,path,status}`` with ``path`` the route template (bounded cardinality, unlike
the original's raw path), ``prometheus_proxy_request_duration_seconds``,
``prometheus_proxy_backend_requests_total{backend,status}``,
``prometheus_proxy_targets_discovered``, ``prometheus_proxy_tenants_active``; plus
cache, authentication, enforcement and per-tenant counters; and the fair queue's
(``prometheus_proxy_queue_rejections_total``, ``prometheus_proxy_requests_queued``,
``prometheus_proxy_tenant_requests_in_flight``/``_queued{tenant}``,
``prometheus_proxy_tenant_queue_rejections_total{tenant}``), read from its
``statistics()`` snapshot at each scrape rather than counted a second time.

Per-tenant series carry only namespaces that have a policy: a name comes from the client
(a header in ``auth.type: none``), so labelling every name would let any client add series
and would list every namespace that was ever tried. Requests of other namespaces are
counted in one unlabelled counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mtproxy.proxy.fairqueue import FairQueueStatistics

__all__ = ["ProxyMetrics"]


class _QueueCollector(Collector):
    """The fair queue's metrics, read from its ``statistics()`` snapshot at each scrape."""

    def __init__(self, read: Callable[[], FairQueueStatistics], has_policy: Callable[[str], bool]) -> None:
        self._read = read
        self._has_policy = has_policy

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        rejected = CounterMetricFamily(
            "prometheus_proxy_queue_rejections",
            "Requests refused (429 at the tenant's share, 503 when full) after waiting queue_timeout for a slot.",
            value=stats.rejected,
        )
        queued = GaugeMetricFamily("prometheus_proxy_requests_queued", "Requests waiting for a slot.", stats.waiting)
        tenant_in_flight = GaugeMetricFamily(
            "prometheus_proxy_tenant_requests_in_flight", "Requests of a tenant holding a slot.", labels=["tenant"]
        )
        tenant_queued = GaugeMetricFamily(
            "prometheus_proxy_tenant_requests_queued", "Requests of a tenant waiting for a slot.", labels=["tenant"]
        )
        tenant_rejected = CounterMetricFamily(
            "prometheus_proxy_tenant_queue_rejections",
            "Requests of a tenant refused after waiting queue_timeout for a slot.",
            labels=["tenant"],
        )
        for tenant, load in stats.tenants.items():
            if not self._has_policy(tenant):
                continue
            tenant_in_flight.add_metric([tenant], load.in_flight)
            tenant_queued.add_metric([tenant], load.waiting)
            tenant_rejected.add_metric([tenant], load.rejected)
        yield from (rejected, queued, tenant_in_flight, tenant_queued, tenant_rejected)


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
        self.in_flight = Gauge("prometheus_proxy_backend_requests_in_flight", "Backend calls running.", registry=r)
        self._queue_collector: _QueueCollector | None = None

    def watch_queue(self, read: Callable[[], FairQueueStatistics], *, has_policy: Callable[[str], bool]) -> None:
        """Export the fair queue's snapshot (``read``) at each scrape; tenants only where ``has_policy``.

        A later call replaces the earlier queue (one proxy app per registry).
        """
        if self._queue_collector is not None:
            self.registry.unregister(self._queue_collector)
        self._queue_collector = _QueueCollector(read, has_policy)
        self.registry.register(self._queue_collector)
