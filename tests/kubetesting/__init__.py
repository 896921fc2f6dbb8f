"""What the controller tests (and the informer bench) need around the API double.

:mod:`kubetesting.objects` names the resources and builds bodies, :mod:`kubetesting.relay`
is a TCP relay a test can cut to take one client off the network, and
:mod:`kubetesting.waiting` polls a condition with a deadline. The fixtures built on
these live in ``tests/controller/conftest.py``.
"""

from kubetesting.objects import CONFIGMAPS as CONFIGMAPS
from kubetesting.objects import CRD_PATH as CRD_PATH
from kubetesting.objects import METRICACCESSES as METRICACCESSES
from kubetesting.objects import configmap as configmap
from kubetesting.objects import http_config as http_config
from kubetesting.objects import load_crd as load_crd
from kubetesting.objects import metricaccess as metricaccess
from kubetesting.objects import open_kube as open_kube
from kubetesting.relay import CuttableRelay as CuttableRelay
from kubetesting.waiting import wait_until as wait_until

__all__ = [
    "CONFIGMAPS",
    "CRD_PATH",
    "METRICACCESSES",
    "CuttableRelay",
    "configmap",
    "http_config",
    "load_crd",
    "metricaccess",
    "open_kube",
    "wait_until",
]
