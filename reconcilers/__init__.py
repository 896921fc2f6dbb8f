"""Domain decisions: MetricAccess spec to remote-write jobs, access policies and backend sets."""

from mtproxy.reconcilers.metricaccess import *
from mtproxy.reconcilers.tenants import *

__all__ = ["JobDenied", "PolicyDecision", "desired_job", "desired_policy", "isolation_denied", "resolve_host_alias"]
