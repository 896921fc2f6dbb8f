"""``/metrics`` for the controller side: read from the parts' ``statistics()`` at each scrape.

Nothing here counts anything: each scrape asks the service for its snapshots (the job
runner's, the MetricAccess controller's, the status writer's, the leader elector's, the
informer's, the state store's) and turns them into metric families, so the numbers on
``/metrics`` are exactly what the parts report and cost nothing between scrapes.

Forwarding metrics follow Prometheus' own remote-write metrics in naming and meaning:
``prometheus_proxy_remote_write_samples_total{namespace,name,destination}`` (samples
the destination acknowledged), ``…_samples_failed_total{…,reason}`` (refused for good, by
HTTP status), ``…_samples_retried_total`` (requests retried: the sender retries whole
requests), ``…_highest_sent_timestamp_seconds``, ``…_lag_seconds`` (wall clock minus the
end of the newest window fully delivered), ``…_jobs{state}`` and the
``…_cycle_duration_seconds`` histogram. Their labels name MetricAccess objects, which exist
in the cluster (never anything a client sent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from mtproxy.remotewrite import CYCLE_BUCKETS_S, JobRunner

__all__ = ["ServiceCollector", "version"]

_PREFIX = "prometheus_proxy_"


def version() -> str:
    """The installed distribution's version ("unknown" when run from a tree that is not installed)."""
    try:
        return metadata.version("prometheus-multi-tenant-proxy")
    except metadata.PackageNotFoundError:
        return "unknown"


class ServiceCollector(Collector):
    """Metric families from ``statistics()`` snapshots, built at scrape time."""

    def __init__(
        self,
        statistics: Callable[[], dict[str, Any]],
        *,
        runner: JobRunner | None,
        wall_clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._statistics = statistics
        self._runner = runner
        self._now = wall_clock_s

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily(f"{_PREFIX}build_info", "The running version.", labels=["version"])
        build.add_metric([version()], 1)
        yield build
        parts = self._statistics()
        yield from self._controller_families(parts)
        if self._runner is not None:
            yield from self._forwarding_families(self._runner, parts.get("runner"))

    def _controller_families(self, parts: dict[str, Any]) -> Iterator[Metric]:
        access = parts.get("access")
        if access is not None:
            objects = GaugeMetricFamily(
                f"{_PREFIX}metricaccess_objects", "MetricAccess objects by verdict.", labels=["verdict"]
            )
            objects.add_metric(["in_force"], access.in_force)
            objects.add_metric(["invalid"], access.invalid)
            objects.add_metric(["denied"], access.denied)
            yield objects
            reconciles = CounterMetricFamily(
                f"{_PREFIX}reconciles", "Reconciles by controller and outcome.", labels=["controller", "outcome"]
            )
            depth = GaugeMetricFamily(f"{_PREFIX}workqueue_depth", "Keys waiting.", labels=["controller"])
            controllers = list(access.controllers)
            status = parts.get("status")
            if status is not None and status.controller is not None:
                controllers.append(status.controller)
            for controller in controllers:
                reconciles.add_metric([controller.name, "success"], controller.reconciles - controller.errors)
                reconciles.add_metric([controller.name, "error"], controller.errors)
                depth.add_metric([controller.name], controller.queue_depth)
            yield reconciles
            yield depth
        status = parts.get("status")
        if status is not None:
            writes = CounterMetricFamily(f"{_PREFIX}status_writes", "Status patches written.")
            writes.add_metric([], status.writes)
            yield writes
            events = CounterMetricFamily(f"{_PREFIX}events_recorded", "Kubernetes Events recorded.")
            events.add_metric([], status.events)
            yield events
        leader = parts.get("leader")
        if leader is not None:
            leading = GaugeMetricFamily(f"{_PREFIX}leader", "1 while this replica holds the Lease.")
            leading.add_metric([], 1 if leader.leading else 0)
            yield leading
        state = parts.get("state")
        if state is not None:
            state_writes = CounterMetricFamily(
                f"{_PREFIX}remote_write_state_writes", "ConfigMap writes of remote-write progress."
            )
            state_writes.add_metric([], state.writes)
            yield state_writes

    def _forwarding_families(self, runner: JobRunner, statistics: Any) -> Iterator[Metric]:
        labels = ["namespace", "name", "destination"]
        samples = CounterMetricFamily(f"{_PREFIX}remote_write_samples", "Samples acknowledged.", labels=labels)
        failed = CounterMetricFamily(
            f"{_PREFIX}remote_write_samples_failed", "Samples refused for good.", labels=[*labels, "reason"]
        )
        retried = CounterMetricFamily(
            f"{_PREFIX}remote_write_samples_retried", "Requests sent again after a retryable failure.", labels=labels
        )
        highest = GaugeMetricFamily(
            f"{_PREFIX}remote_write_highest_sent_timestamp_seconds",
            "Newest sample timestamp a destination acknowledged.",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            f"{_PREFIX}remote_write_lag_seconds", "Now minus the end of the newest window delivered.", labels=labels
        )
        states = {"forwarding": 0, "failing": 0, "pending": 0}
        now_s = self._now()
        for key in runner.job_keys():
            job = runner.job_status(key)
            if job is None:
                continue
            namespace, _, name = key.partition("/")
            states["pending" if job.forwarding is None else "forwarding" if job.forwarding else "failing"] += 1
            for destination in job.destinations:
                values = [namespace, name, destination.destination]
                samples.add_metric(values, destination.samples_forwarded)
                retried.add_metric(values, destination.sender.retries)
                for reason, count in destination.sender.samples_dropped_by_reason:
                    failed.add_metric([*values, reason], count)
                if destination.highest_sent_ms is not None:
                    highest.add_metric(values, destination.highest_sent_ms / 1000)
                if destination.cursor_ms is not None:
                    lag.add_metric(values, max(0.0, now_s - destination.cursor_ms / 1000))
        jobs = GaugeMetricFamily(f"{_PREFIX}remote_write_jobs", "Running jobs by state.", labels=["state"])
        for state, count in states.items():
            jobs.add_metric([state], count)
        yield from (samples, failed, retried, highest, lag, jobs)
        if statistics is not None and statistics.cycle_duration_buckets:
            buckets = [
                (str(bound), count)
                for bound, count in zip(CYCLE_BUCKETS_S, statistics.cycle_duration_buckets, strict=False)
            ]
            buckets.append(("+Inf", statistics.cycle_duration_buckets[-1]))
            histogram = HistogramMetricFamily(
                f"{_PREFIX}remote_write_cycle_duration_seconds", "Duration of one destination's collection cycle."
            )
            histogram.add_metric([], buckets, statistics.cycle_duration_sum_s)
            yield histogram
