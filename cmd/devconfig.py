"""The config ``mtproxy dev`` runs the service with: Kubernetes mode on loopback, built from the port plan.

Tenants come from MetricAccess objects in the dev API server (``tenants.source:
kubernetes``), the backend is the demo's infrastructure Prometheus, and forwarding is on:
each demo tenant's in-cluster Prometheus name (``prometheus.<tenant>.svc.cluster.local``,
what a MetricAccess with a ``prometheus`` target resolves to) and Pushgateway name
(``pushgateway.<tenant>.svc.cluster.local``) are mapped to the demo servers on loopback
through ``remote_write.host_aliases``. Intervals are short so that a newcomer sees status,
counters and forwarded series within seconds; the guardrails are the secure defaults.
"""

from __future__ import annotations

from mtproxy.api import Config, load_config_text
from mtproxy.cmd.devports import LOOPBACK, DevPorts

__all__ = ["LEASE_NAMESPACE", "dev_config", "dev_config_yaml"]

LEASE_NAMESPACE = "mtproxy-system"
"""Where the service keeps its Lease and remote-write progress (``--leader-election-namespace``)."""


def dev_config_yaml(ports: DevPorts) -> str:
    """The config text for ``ports`` (shown by ``mtproxy dev --print-config``)."""
    aliases = []
    for tenant, port in ports.tenant_prometheus.items():
        aliases.append(f"    prometheus.{tenant}.svc.cluster.local: {LOOPBACK}:{port}")
        aliases.append(f"    pushgateway.{tenant}.svc.cluster.local: {LOOPBACK}:{ports.pushgateway}")
    return f"""\
# mtproxy dev: Kubernetes mode against the dev API server, everything on {LOOPBACK}.
discovery:
  static:
    targets: ["http://{LOOPBACK}:{ports.infra_prometheus}"]
  health_check_interval: 2s
  health_check_timeout: 1s
tenants:
  source: kubernetes
  watch_all_namespaces: true
  status_interval: 5s
proxy:
  enable_metrics: true
  enable_request_logging: true
  enable_caching: true
  cache_ttl: 10s
  max_concurrent_requests: 20
  backend_timeout: 30s
remote_write:
  enabled: true
  default_interval: 10s
  safety_delay: 2s
  max_backfill: 10m
  host_aliases:
{chr(10).join(aliases) if aliases else "    {}"}
auth:
  type: none
guardrails:
  require_isolation: true
"""


def dev_config(ports: DevPorts) -> Config:
    """The config for ``ports``.

    Raises:
        APIValidationError: never for a valid port plan (a test loads it).
    """
    return load_config_text(dev_config_yaml(ports)).config
