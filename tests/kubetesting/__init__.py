"""What the controller tests (and the informer bench) need around an API server.

:mod:`kubetesting.objects` names the resources and builds bodies, :mod:`kubetesting.relay`
is a TCP relay a test can cut to take one client off the network,
:mod:`kubetesting.servers` is the shape both API servers (the double and a real
kube-apiserver) share, and :mod:`kubetesting.waiting` polls a condition with a deadline.
The fixtures built on these live in ``tests/conftest.py`` and ``tests/controller/conftest.py``.
"""

from kubetesting.objects import CONFIGMAPS as CONFIGMAPS
from kubetesting.objects import CRD_PATH as CRD_PATH
from kubetesting.objects import METRICACCESSES as METRICACCESSES
from kubetesting.objects import configmap as configmap
from kubetesting.objects import load_crd as load_crd
from kubetesting.objects import metricaccess as metricaccess
from kubetesting.objects import open_kube as open_kube
from kubetesting.relay import CuttableRelay as CuttableRelay
from kubetesting.servers import API_SERVER_KINDS as API_SERVER_KINDS
from kubetesting.servers import KubeServer as KubeServer
from kubetesting.servers import http_config as http_config
from kubetesting.servers import register as register
from kubetesting.servers import server_kind as server_kind
from kubetesting.waiting import wait_until as wait_until

__all__ = [
    "API_SERVER_KINDS",
    "CONFIGMAPS",
    "CRD_PATH",
    "METRICACCESSES",
    "CuttableRelay",
    "KubeServer",
    "configmap",
    "http_config",
    "load_crd",
    "metricaccess",
    "open_kube",
    "register",
    "server_kind",
    "wait_until",
]
