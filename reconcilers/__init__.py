"""Domain decisions: MetricAccess spec to remote-write jobs, access policies and backend sets."""

from mtproxy.reconcilers.tenants import *

__all__ = ["PolicyDecision", "desired_policy", "isolation_denied"]
