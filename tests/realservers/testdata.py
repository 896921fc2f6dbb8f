"""The deterministic multi-namespace data set that tests load into Prometheus.

:func:`build_dataset` describes a small Kubernetes cluster as Prometheus would have scraped it:
four namespaces (``team-a``, ``team-b``, ``team-c``, ``kube-system``), application,
cAdvisor and kube-state-metrics series carrying a ``namespace`` label, and node-exporter,
control-plane and cluster ``up`` series carrying none. Names share prefixes (``http_``,
``node_``, ``container_``, ``kube_``, ``grpc_``) and there are counters, gauges and
histograms (``_bucket``/``_sum``/``_count``). Some label values hold quotes, backslashes,
spaces and non-ASCII text. On every ``http`` pod, ``app_cache_hits_total`` and
``app_cache_misses_total`` carry identical labels (``cache``, ``env="prod"``): series that
differ only in their name, which PromQL's ``or`` matches as one. ``regex_probe{v=…}``
(one cluster-wide gauge per value of :data:`REGEX_PROBE_VALUES`) holds characters on which
the Unicode tables of Prometheus 2.42's Go and of RE2 differ.

Only the time anchor varies: sample values depend on the series and the step index, never on
the clock, and every value is a binary fraction, so it survives the text round trip exactly.
Samples are 15 s apart over the two hours ending at ``end_s``, with these exceptions, which
tests may rely on:

- pod ``batch-old-0`` in ``team-c`` stops one hour before the end (absent from "now" queries);
- pod ``api-new-0`` in ``team-a`` starts ten minutes before the end;
- pod ``web-1`` in ``team-b`` restarts halfway: its counters drop to zero at the middle step.

The returned :class:`Dataset` holds every series with its exact samples so that tests compute
expectations without querying; :func:`render_openmetrics` writes it for ``promtool``.

The module is one unit of about 500 lines because the cluster description and the value rules
that tests depend on must be read together.
"""

from __future__ import annotations

import enum
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_LOOKBACK_MS",
    "NAMESPACES",
    "REGEX_PROBE_VALUES",
    "STEP_S",
    "WINDOW_S",
    "Dataset",
    "MetricType",
    "Sample",
    "Series",
    "build_dataset",
    "render_openmetrics",
    "write_openmetrics",
]

STEP_S = 15
"""Seconds between two samples of a series."""
WINDOW_S = 2 * 3600
"""Length of the data set; ``WINDOW_S // STEP_S + 1`` samples per full series."""
NAMESPACES = ("team-a", "team-b", "team-c", "kube-system")
DEFAULT_LOOKBACK_MS = 5 * 60 * 1000
"""Prometheus' default ``--query.lookback-delta``."""

_STEPS = WINDOW_S // STEP_S + 1
_NODES = ("node-1", "node-2")
_BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")
# Observations cycle through these; each is a binary fraction, so sums stay exact.
_OBSERVATIONS = (0.03125, 0.0625, 0.125, 0.375, 0.75, 2.0, 4.0)


class MetricType(enum.Enum):
    """The OpenMetrics family type of a series."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One sample, as Prometheus stores it."""

    timestamp_ms: int
    value: float

    @property
    def timestamp_s(self) -> float:
        """The timestamp as the HTTP API renders it (seconds)."""
        return self.timestamp_ms / 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """One series and all its samples, oldest first."""

    labels: tuple[tuple[str, str], ...]
    """All labels including ``__name__``, sorted by name."""
    family: str
    """The OpenMetrics family, e.g. ``http_requests`` for ``http_requests_total``."""
    type: MetricType
    samples: tuple[Sample, ...]

    @property
    def name(self) -> str:
        return self.get("__name__")

    @property
    def metric(self) -> dict[str, str]:
        """The labels as the HTTP API's ``metric`` object."""
        return dict(self.labels)

    @property
    def namespace(self) -> str | None:
        """The ``namespace`` label, or None for cluster-wide series."""
        return self.get("namespace") or None

    def get(self, label: str, default: str = "") -> str:
        """A label's value; like PromQL, a missing label reads as ``""``."""
        for name, value in self.labels:
            if name == label:
                return value
        return default

    def sample_at(self, t_ms: int, *, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> Sample | None:
        """What an instant query at ``t_ms`` sees: the newest sample in ``(t - lookback, t]``."""
        for sample in reversed(self.samples):
            if sample.timestamp_ms <= t_ms:
                return sample if sample.timestamp_ms > t_ms - lookback_ms else None
        return None

    def samples_between(self, start_ms: int, end_ms: int) -> tuple[Sample, ...]:
        """Samples in ``[start, end]``, both ends included as in Prometheus 2.x range selectors."""
        return tuple(s for s in self.samples if start_ms <= s.timestamp_ms <= end_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    """Everything :func:`build_dataset` produced."""

    start_ms: int
    """Timestamp of the first step."""
    end_ms: int
    """Timestamp of the last step: query "now" at this time, not at the wall clock."""
    step_ms: int
    namespaces: tuple[str, ...]
    series: tuple[Series, ...]

    @property
    def end_s(self) -> int:
        return self.end_ms // 1000

    @property
    def start_s(self) -> int:
        return self.start_ms // 1000

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every ``__name__``, sorted."""
        return tuple(sorted({s.name for s in self.series}))

    @property
    def sample_count(self) -> int:
        return sum(len(s.samples) for s in self.series)

    def select(
        self,
        name: str | None = None,
        *,
        where: Callable[[Series], bool] | None = None,
        **labels: str,
    ) -> tuple[Series, ...]:
        """Series with this name (any if None) whose labels equal ``labels``.

        As in PromQL, ``namespace=""`` selects series without a namespace label. ``where``
        filters further.
        """
        return tuple(
            s
            for s in self.series
            if (name is None or s.name == name)
            and all(s.get(label) == value for label, value in labels.items())
            and (where is None or where(s))
        )

    def live_at(self, t_ms: int, *, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> tuple[Series, ...]:
        """Series that an instant query at ``t_ms`` returns."""
        return tuple(s for s in self.series if s.sample_at(t_ms, lookback_ms=lookback_ms) is not None)


# -- values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Lifetime:
    first_step: int = 0
    last_step: int = _STEPS - 1
    reset_step: int | None = None
    """Counters restart from zero at this step (a pod restart)."""

    def steps(self) -> range:
        return range(self.first_step, self.last_step + 1)

    def since_reset(self, step: int) -> int:
        if self.reset_step is not None and step >= self.reset_step:
            return step - self.reset_step
        return step - self.first_step


_FULL = _Lifetime()


def _seed(labels: Mapping[str, str]) -> int:
    return zlib.crc32(repr(sorted(labels.items())).encode())


class _Builder:
    def __init__(self, start_ms: int, step_ms: int) -> None:
        self._start_ms = start_ms
        self._step_ms = step_ms
        self.series: list[Series] = []

    def _add(
        self,
        name: str,
        labels: Mapping[str, str],
        *,
        family: str,
        type: MetricType,
        lifetime: _Lifetime,
        value: Callable[[int], float],
    ) -> None:
        samples = tuple(
            Sample(timestamp_ms=self._start_ms + step * self._step_ms, value=float(value(step)))
            for step in lifetime.steps()
        )
        all_labels = tuple(sorted({**labels, "__name__": name}.items()))
        self.series.append(Series(labels=all_labels, family=family, type=type, samples=samples))

    def counter(
        self, name: str, labels: Mapping[str, str], *, lifetime: _Lifetime = _FULL, scale: float = 1.0
    ) -> None:
        """Grows by ``scale * (1..8)`` per step from a base of ``scale * (0..999)``."""
        seed = _seed({**labels, "__name__": name})
        per_step, base = scale * (1 + seed % 8), scale * (seed % 1000)
        reset = lifetime.reset_step

        def value(step: int) -> float:
            offset = 0.0 if reset is not None and step >= reset else base
            return offset + per_step * lifetime.since_reset(step)

        self._add(name, labels, family=name.removesuffix("_total"), type=MetricType.COUNTER,
                  lifetime=lifetime, value=value)

    def gauge(
        self,
        name: str,
        labels: Mapping[str, str],
        *,
        base: float = 0.0,
        swing: float = 0.0,
        lifetime: _Lifetime = _FULL,
    ) -> None:
        """``base`` plus ``swing * k/8`` for a ``k`` in 0..8 that wanders with the step."""
        seed = _seed({**labels, "__name__": name})
        stride = 1 + seed % 5

        def value(step: int) -> float:
            return base + swing * ((step * stride + seed) % 9) / 8

        self._add(name, labels, family=name, type=MetricType.GAUGE, lifetime=lifetime, value=value)

    def restarts(self, name: str, labels: Mapping[str, str], *, lifetime: _Lifetime = _FULL) -> None:
        """A restart counter: 0, and 1 from the lifetime's reset step on."""
        reset = lifetime.reset_step
        self._add(name, labels, family=name.removesuffix("_total"), type=MetricType.COUNTER,
                  lifetime=lifetime, value=lambda step: 1.0 if reset is not None and step >= reset else 0.0)

    def histogram(self, family: str, labels: Mapping[str, str], *, lifetime: _Lifetime = _FULL) -> None:
        """Cumulative buckets, sum and count; each step after the first observes 1..4 values."""
        seed = _seed({**labels, "__name__": family})
        per_bucket: list[list[float]] = [[] for _ in _BUCKETS]  # [bucket][step], cumulative
        sums: list[float] = []
        cumulative = [0] * len(_BUCKETS)
        total = 0.0
        for step in range(_STEPS):
            if step == lifetime.reset_step:
                cumulative, total = [0] * len(_BUCKETS), 0.0
            elif step > lifetime.first_step:
                for j in range(1 + (step + seed) % 4):
                    observed = _OBSERVATIONS[(seed + step + j) % len(_OBSERVATIONS)]
                    total += observed
                    for index, bound in enumerate(_BUCKETS):
                        if observed <= float(bound):
                            cumulative[index] += 1
            for index, count in enumerate(cumulative):
                per_bucket[index].append(float(count))
            sums.append(total)
        kind = MetricType.HISTOGRAM
        for bound, values in zip(_BUCKETS, per_bucket, strict=True):
            self._add(f"{family}_bucket", {**labels, "le": bound}, family=family, type=kind,
                      lifetime=lifetime, value=values.__getitem__)
        self._add(f"{family}_sum", labels, family=family, type=kind, lifetime=lifetime,
                  value=sums.__getitem__)
        self._add(f"{family}_count", labels, family=family, type=kind, lifetime=lifetime,
                  value=per_bucket[-1].__getitem__)


# -- the cluster -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Workload:
    name: str
    kind: str
    """``http``, ``grpc`` or ``queue``: which application metrics its pods expose."""
    pods: tuple[tuple[str, _Lifetime], ...]


_HALF = _STEPS // 2
_WORKLOADS: dict[str, tuple[_Workload, ...]] = {
    "team-a": (
        _Workload(name="api", kind="http", pods=(("api-0", _FULL), ("api-1", _FULL),
                                                  ("api-new-0", _Lifetime(first_step=_STEPS - 41)))),
        _Workload(name="worker", kind="queue", pods=(("worker-0", _FULL),)),
    ),
    "team-b": (
        _Workload(name="web", kind="http", pods=(("web-0", _FULL), ("web-1", _Lifetime(reset_step=_HALF)))),
        _Workload(name="orders", kind="grpc", pods=(("orders-0", _FULL),)),
    ),
    "team-c": (
        _Workload(name="batch", kind="queue", pods=(("batch-0", _FULL),
                                                    ("batch-old-0", _Lifetime(last_step=_HALF)))),
        _Workload(name="search", kind="grpc", pods=(("search-0", _FULL), ("search-1", _FULL))),
    ),
    "kube-system": (
        _Workload(name="coredns", kind="http", pods=(("coredns-0", _FULL), ("coredns-1", _FULL))),
        _Workload(name="kube-state-metrics", kind="queue", pods=(("kube-state-metrics-0", _FULL),)),
    ),
}
# Label values that exercise escaping in the text format, PromQL strings and URLs.
_QUEUES = ('orders "eu"', "C:\\jobs\\nightly", "café ☕ queue")
_BUILD_MESSAGE = 'déploiement "stable" ✓ 日本語 \\ fin'
_HANDLERS = ("/api/v1/items", "/api/v1/items/{id}")
REGEX_PROBE_VALUES = (
    "a", "Z", "k", "K", "\u212a", "s", "\u017f", "\u00e9", "\u00c9", "\u00df", "\u1e9e",
    "\u03c3", "\u03a3", "\u03c2", "\u65e5", "\u0663", "1", "_", "-", "\U0001f642",
    "\U0001df00", "\U00010570", "\U00010597", "\u2c2f", "\u2c5f", "\ua7c0", "\ua7c1", "\u0870",
    "\U0001e030", "a.b", "axb", "a+b", "[x]", "A.B",
)  # fmt: skip
"""The ``v`` values of ``regex_probe``: ASCII, Latin, Greek (three-way case folding), the KELVIN
and LONG S folds into ASCII, and letters of Unicode 14 and 15 (U+1DF00, Vithkuqi, Glagolitic
U+2C2F, U+A7C0, U+0870, U+1E030), which Go 1.19's Unicode 13 tables do not know and RE2's do."""


def _application(b: _Builder, namespace: str, workload: _Workload, pod: str, ip: str, life: _Lifetime) -> None:
    target = {"job": f"{namespace}/{workload.name}", "instance": f"{ip}:8080",
              "namespace": namespace, "pod": pod}
    b.gauge("up", target, base=1.0, lifetime=life)
    b.counter("process_cpu_seconds_total", target, scale=0.125, lifetime=life)
    b.gauge("process_resident_memory_bytes", target, base=64 * 2**20, swing=16 * 2**20, lifetime=life)
    b.gauge("process_open_fds", target, base=20, swing=8, lifetime=life)
    b.gauge("go_goroutines", target, base=30, swing=16, lifetime=life)
    b.gauge("app_build_info", target | {"version": "1.4.2", "message": _BUILD_MESSAGE}, base=1.0,
            lifetime=life)
    if workload.kind == "http":
        for method in ("GET", "POST"):
            for code in ("200", "500"):
                b.counter("http_requests_total",
                          target | {"method": method, "code": code, "handler": _HANDLERS[0]}, lifetime=life)
        for handler in _HANDLERS:
            b.histogram("http_request_duration_seconds", target | {"handler": handler}, lifetime=life)
        b.gauge("http_requests_in_flight", target, swing=8, lifetime=life)
        for cache in ("items", "users"):
            for name in ("app_cache_hits_total", "app_cache_misses_total"):
                b.counter(name, target | {"cache": cache, "env": "prod"}, lifetime=life)
    elif workload.kind == "grpc":
        for method, code in (("Get", "OK"), ("Get", "NotFound"), ("Put", "OK")):
            b.counter("grpc_server_handled_total", target | {
                "grpc_service": f"{workload.name}.v1.Service", "grpc_method": method, "grpc_code": code,
            }, lifetime=life)
        b.histogram("grpc_server_handling_seconds", target | {"grpc_method": "Get"}, lifetime=life)
    else:
        for queue in _QUEUES:
            b.gauge("app_queue_depth", target | {"queue": queue}, swing=40, lifetime=life)
            b.counter("app_jobs_processed_total", target | {"queue": queue}, lifetime=life)


def _cadvisor(b: _Builder, namespace: str, pod: str, node: str, life: _Lifetime) -> None:
    target = {"job": "kubelet", "instance": f"{node}:10250", "node": node, "namespace": namespace, "pod": pod}
    container = target | {"container": pod.rsplit("-", 1)[0]}
    b.counter("container_cpu_usage_seconds_total", container, scale=0.25, lifetime=life)
    b.gauge("container_memory_working_set_bytes", container, base=96 * 2**20, swing=32 * 2**20, lifetime=life)
    b.gauge("container_memory_rss", container, base=80 * 2**20, swing=16 * 2**20, lifetime=life)
    b.counter("container_network_receive_bytes_total", target | {"interface": "eth0"}, scale=1024,
              lifetime=life)
    b.counter("container_network_transmit_bytes_total", target | {"interface": "eth0"}, scale=512,
              lifetime=life)


_KSM = {"job": "kube-state-metrics", "instance": "10.3.1.0:8080"}


def _kube_state(b: _Builder, namespace: str, workload: _Workload, node: str) -> None:
    for pod, life in workload.pods:
        pod_labels = _KSM | {"namespace": namespace, "pod": pod}
        b.gauge("kube_pod_info", pod_labels | {"node": node, "created_by_kind": "ReplicaSet"}, base=1.0,
                lifetime=life)
        b.gauge("kube_pod_status_ready", pod_labels | {"condition": "true"}, base=1.0, lifetime=life)
        b.restarts("kube_pod_container_status_restarts_total", pod_labels | {"container": workload.name},
                   lifetime=life)
    deployment = _KSM | {"namespace": namespace, "deployment": workload.name}
    b.gauge("kube_deployment_spec_replicas", deployment, base=float(len(workload.pods)))
    b.gauge("kube_deployment_status_replicas_available", deployment, base=float(len(workload.pods)))


def _cluster(b: _Builder) -> None:
    """Series without a namespace label: nodes, control plane and infrastructure ``up``."""
    for n, node in enumerate(_NODES):
        exporter = {"job": "node-exporter", "instance": f"{node}:9100"}
        b.gauge("up", exporter, base=1.0)
        b.gauge("up", {"job": "kubelet", "instance": f"{node}:10250"}, base=1.0)
        for name, base in (("node_load1", 0.5), ("node_load5", 0.75), ("node_load15", 1.0)):
            b.gauge(name, exporter, base=base, swing=2.0)
        for cpu in ("0", "1"):
            for mode in ("idle", "user", "system"):
                b.counter("node_cpu_seconds_total", exporter | {"cpu": cpu, "mode": mode}, scale=0.5)
        b.gauge("node_memory_MemTotal_bytes", exporter, base=float(16 * 2**30))
        b.gauge("node_memory_MemAvailable_bytes", exporter, base=float(8 * 2**30), swing=float(2**30))
        for device, mountpoint, fstype in (("/dev/sda1", "/", "ext4"), ("/dev/sdb1", "/mnt/data disk", "xfs")):
            b.gauge("node_filesystem_avail_bytes",
                    exporter | {"device": device, "mountpoint": mountpoint, "fstype": fstype},
                    base=float((n + 1) * 50 * 2**30), swing=float(2**30))
        b.counter("node_network_receive_bytes_total", exporter | {"device": "eth0"}, scale=4096)
        b.gauge("kube_node_status_condition", _KSM | {"node": node, "condition": "Ready", "status": "true"},
                base=1.0)
    apiserver = {"job": "apiserver", "instance": "10.0.0.1:6443"}
    b.gauge("up", apiserver, base=1.0)
    for verb, resource, code in (("GET", "pods", "200"), ("LIST", "pods", "200"), ("WATCH", "metricaccesses",
                                                                                   "200"),
                                 ("PATCH", "metricaccesses", "409")):
        b.counter("apiserver_request_total", apiserver | {"verb": verb, "resource": resource, "code": code})
    for queue in ("active", "backoff"):
        b.gauge("scheduler_pending_pods", {"job": "kube-scheduler", "instance": "10.0.0.1:10259",
                                           "queue": queue}, swing=4)
    b.gauge("etcd_server_has_leader", {"job": "etcd", "instance": "10.0.0.1:2379"}, base=1.0)
    for value in REGEX_PROBE_VALUES:
        b.gauge("regex_probe", {"v": value}, base=1.0)


def build_dataset(*, end_s: int | None = None) -> Dataset:
    """The data set whose last samples are at ``end_s``.

    Args:
        end_s: Unix seconds of the last step, a multiple of :data:`STEP_S`; by default the
            wall clock rounded down to one. Keep it out of the future if the data goes into a
            Prometheus that also scrapes, or its head refuses the scrapes as out of bounds.
    """
    if end_s is None:
        end_s = int(time.time()) // STEP_S * STEP_S
    if end_s % STEP_S:
        raise ValueError(f"end_s must be a multiple of {STEP_S}, got {end_s}")
    start_s = end_s - WINDOW_S
    b = _Builder(start_s * 1000, STEP_S * 1000)
    for ns_index, (namespace, workloads) in enumerate(_WORKLOADS.items()):
        for w_index, workload in enumerate(workloads):
            node = _NODES[w_index % len(_NODES)]
            for p_index, (pod, life) in enumerate(workload.pods):
                ip = f"10.{ns_index + 1}.{w_index}.{p_index + 10}"
                _application(b, namespace, workload, pod, ip, life)
                _cadvisor(b, namespace, pod, node, life)
            _kube_state(b, namespace, workload, node)
    _cluster(b)
    return Dataset(start_ms=start_s * 1000, end_ms=end_s * 1000, step_ms=STEP_S * 1000,
                   namespaces=NAMESPACES, series=tuple(b.series))


# -- OpenMetrics text --------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render_openmetrics(series: Iterable[Series]) -> Iterable[str]:
    """OpenMetrics lines (without newlines) for ``promtool tsdb create-blocks-from openmetrics``.

    Families are contiguous, each preceded by its ``# TYPE``; timestamps are in seconds.
    """
    by_family: dict[str, list[Series]] = {}
    for s in series:
        by_family.setdefault(s.family, []).append(s)
    for family, members in by_family.items():
        yield f"# TYPE {family} {members[0].type.value}"
        for s in members:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels if k != "__name__")
            prefix = f"{s.name}{{{label_text}}} " if label_text else f"{s.name} "
            for sample in s.samples:
                yield f"{prefix}{_format_value(sample.value)} {sample.timestamp_ms // 1000}"
    yield "# EOF"


def write_openmetrics(dataset: Dataset, path: Path) -> None:
    """Write the whole data set to ``path`` as OpenMetrics text."""
    with path.open("w", encoding="utf-8") as out:
        for line in render_openmetrics(dataset.series):
            out.write(line)
            out.write("\n")
