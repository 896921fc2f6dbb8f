"""Domain decisions: MetricAccess spec to remote-write jobs, access policies and backend sets."""

from mtproxy.reconcilers.metricaccess import *
from mtproxy.reconcilers.tenants import *

__all__ = [
    "Grant",
    "JobDenied",
    "PolicyDecision",
    "desired_job",
    "desired_policy",
    "granted_rules",
    "isolation_denied",
    "policy_of",
    "resolve_host_alias",
]
