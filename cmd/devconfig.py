"""The embedded local default config that ``make dev`` (``mtproxy dev``) runs with.

It needs no Kubernetes: tenants come from ``examples/dev/tenants`` (files mode) and the
backend is the demo Prometheus that ``mtproxy dev`` starts on loopback.
"""

from __future__ import annotations

__all__ = ["DEV_CONFIG_YAML"]

DEV_CONFIG_YAML = """\
# mtproxy dev: everything on 127.0.0.1, no Kubernetes needed.
discovery:
  static:
    targets: ["http://127.0.0.1:19090"]
  refresh_interval: 30s
tenants:
  source: files
  files:
    directory: examples/dev/tenants
proxy:
  enable_metrics: true
  enable_request_logging: true
  enable_caching: true
  cache_ttl: 30s
  max_concurrent_requests: 20
  backend_timeout: 30s
remote_write:
  enabled: false
  default_interval: 30s
  state_dir: .dev-state/remote-write
auth:
  type: none
guardrails:
  require_isolation: true
"""
