"""Real servers for the tests: Prometheus (2.42 and 3), Pushgateway, VictoriaMetrics, vmauth,
prom-label-proxy, and a real kube-apiserver on etcd.

Each server is a child process on a free 127.0.0.1 port with its own temporary directory
(:mod:`realservers.processes`); the ``mtproxy`` command runs the same way
(:mod:`realservers.mtproxy`). :mod:`realservers.testdata` builds the deterministic
multi-namespace data set and :mod:`realservers.backfill` loads it into a Prometheus with
``promtool``. The programs built from Go modules by ``make testbin`` (Prometheus 3,
prom-label-proxy, kube-apiserver, etcd, kubectl) are found by :mod:`realservers.testbin`;
:mod:`realservers.kubeapiserver` runs the API server. The fixtures built on these live in
``tests/conftest.py``.
"""

from realservers.backfill import LoadedPrometheus as LoadedPrometheus
from realservers.backfill import start_prometheus_with_data as start_prometheus_with_data
from realservers.mtproxy import MtproxyProcess as MtproxyProcess
from realservers.ports import free_port as free_port
from realservers.processes import BasicAuth as BasicAuth
from realservers.processes import ServerNotReadyError as ServerNotReadyError
from realservers.processes import ServerProcess as ServerProcess
from realservers.prometheus import DEBIAN as DEBIAN
from realservers.prometheus import PrometheusBinaries as PrometheusBinaries
from realservers.prometheus import ScrapeTarget as ScrapeTarget
from realservers.prometheus import use_binaries as use_binaries
from realservers.serverset import InfrastructurePrometheusFactory as InfrastructurePrometheusFactory
from realservers.serverset import ServerSet as ServerSet
from realservers.serverset import TenantPrometheusFactory as TenantPrometheusFactory
from realservers.serverset import VictoriaMetricsFactory as VictoriaMetricsFactory
from realservers.serverset import VmauthFactory as VmauthFactory
from realservers.testdata import Dataset as Dataset
from realservers.testdata import MetricType as MetricType
from realservers.testdata import Sample as Sample
from realservers.testdata import Series as Series
from realservers.testdata import build_dataset as build_dataset
from realservers.victoriametrics import force_flush as force_flush
from realservers.victoriametrics import wait_for_result as wait_for_result

__all__ = [
    "DEBIAN",
    "BasicAuth",
    "Dataset",
    "InfrastructurePrometheusFactory",
    "LoadedPrometheus",
    "MetricType",
    "MtproxyProcess",
    "PrometheusBinaries",
    "Sample",
    "ScrapeTarget",
    "Series",
    "ServerNotReadyError",
    "ServerProcess",
    "ServerSet",
    "TenantPrometheusFactory",
    "VictoriaMetricsFactory",
    "VmauthFactory",
    "build_dataset",
    "force_flush",
    "free_port",
    "start_prometheus_with_data",
    "use_binaries",
    "wait_for_result",
]
