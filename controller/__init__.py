"""Generic controller runtime: Kubernetes client, informers, stores, work queues, leader election.

No domain words live here; reconcilers give the runtime its meaning.
"""

from mtproxy.controller.client import *
from mtproxy.controller.clusterconfig import *
from mtproxy.controller.controller import *
from mtproxy.controller.errors import *
from mtproxy.controller.events import *
from mtproxy.controller.informer import *
from mtproxy.controller.leaderelection import *
from mtproxy.controller.manager import *
from mtproxy.controller.ratelimit import *
from mtproxy.controller.reconcile import *
from mtproxy.controller.resource import *
from mtproxy.controller.store import *
from mtproxy.controller.watch import *
from mtproxy.controller.workqueue import *

__all__ = [
    "EVENTS",
    "EVENTS_V1",
    "LEASES",
    "APIError",
    "AlreadyExists",
    "BucketRateLimiter",
    "Cause",
    "Change",
    "ChangeType",
    "ClusterConfig",
    "Conflict",
    "Controller",
    "ControllerStatistics",
    "EventRecorder",
    "EventRecorderStatistics",
    "EventType",
    "Gone",
    "Handler",
    "Informer",
    "InformerStatistics",
    "Invalid",
    "ItemExponentialRateLimiter",
    "KubeClient",
    "LeaderElector",
    "LeaderElectorStatistics",
    "ListResult",
    "Manager",
    "ManagerStatistics",
    "MaxOfRateLimiter",
    "NotFound",
    "QueueShutDown",
    "RateLimiter",
    "Reconciler",
    "Request",
    "Resource",
    "Result",
    "RetryableError",
    "Runnable",
    "Store",
    "StoreReader",
    "StoreStatistics",
    "TerminalError",
    "TransportError",
    "WatchEvent",
    "WorkQueue",
    "WorkQueueState",
    "WorkQueueStatistics",
    "default_controller_rate_limiter",
    "error_from_response",
    "load_cluster_config",
    "open_http_client",
    "watch_events",
]
