"""Who the end-to-end tenants are, what each may see, and what each should therefore get back.

Two tenants have MetricAccess objects (``team-a``, ``team-b``, both with metric isolation);
``team-c`` has data in Prometheus but no MetricAccess. :data:`PATTERNS` are their
``spec.metrics`` entries, and :func:`visible` is the test's own reading of them (fully anchored
regexes, plus ``namespace="<tenant>"``), independent of the proxy's enforcement, so the
expectations of every test are computed from the data set, not from the proxy.

:data:`EXPORTER_TEXT` is what the static OpenMetrics exporter serves to the end-to-end
Prometheus: fresh series (federation and alerts read "now", which the back-filled data set is
not), exemplars, families whose metadata Prometheus keys by family name (an OpenMetrics
counter, a histogram), and a team-a series with an ``exported_namespace="team-b"`` label, as
kube-state-metrics scraped with ``honor_labels: false`` produces. :data:`RULES` are that
Prometheus' recording and alerting rules.

This module uses absolute imports only: ``bench/bench_proxy.py`` imports it as a plain module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "EXPORTER_TEXT",
    "PATTERNS",
    "RULES",
    "TENANTS",
    "UNGRANTED",
    "metric_access",
    "visible",
    "visible_series",
    "write_tenant_files",
]

PATTERNS: dict[str, tuple[str, ...]] = {
    "team-a": (
        "up",
        "http_.*",
        "process_.*",
        "go_goroutines",
        "app_.*",
        "kube_pod_.*",
        "container_.*",
        "e2e_.*",
        "team_a:.*",
        "ALERTS",
    ),
    "team-b": ("up", "http_requests_total", "grpc_.*", "e2e_.*", "team_b:.*", "ALERTS"),
}
TENANTS = tuple(PATTERNS)
UNGRANTED = "team-c"
"""Has series in the data set but no MetricAccess."""

_COMPILED = {ns: [re.compile(p) for p in patterns] for ns, patterns in PATTERNS.items()}


def visible(labels: Mapping[str, str], namespace: str) -> bool:
    """Whether ``namespace``'s tenant may see a series with these labels (the test's oracle)."""
    if labels.get("namespace") != namespace:
        return False
    name = labels.get("__name__", "")
    return any(p.fullmatch(name) for p in _COMPILED.get(namespace, ()))


def visible_series(series: Iterable[Any], namespace: str) -> list[Any]:
    """The :class:`realservers.Series` of ``series`` that ``namespace`` may see."""
    return [s for s in series if visible(s.metric, namespace)]


def metric_access(namespace: str, name: str, metrics: Iterable[str]) -> dict[str, Any]:
    """A MetricAccess document with metric isolation and no remote write."""
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": namespace, "metricIsolation": True, "metrics": list(metrics)},
    }


def write_tenant_files(directory: Path, patterns: Mapping[str, Iterable[str]] | None = None) -> Path:
    """One MetricAccess file per tenant in ``directory`` (created); returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for namespace, metrics in (patterns or PATTERNS).items():
        document = metric_access(namespace, "dashboards", metrics)
        (directory / f"{namespace}.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return directory


EXPORTER_TEXT = """\
# TYPE e2e_jobs counter
# HELP e2e_jobs Jobs run by the tenants' batch workers.
e2e_jobs_total{namespace="team-a",pod="jobs-a-0"} 3 # {trace_id="trace-a"} 1
e2e_jobs_total{namespace="team-b",pod="jobs-b-0"} 5 # {trace_id="trace-b"} 1
# TYPE e2e_latency_seconds histogram
# HELP e2e_latency_seconds Time a job took.
e2e_latency_seconds_bucket{namespace="team-a",le="1"} 1
e2e_latency_seconds_bucket{namespace="team-a",le="+Inf"} 2
e2e_latency_seconds_sum{namespace="team-a"} 3
e2e_latency_seconds_count{namespace="team-a"} 2
# TYPE e2e_team_b_only gauge
# HELP e2e_team_b_only A gauge only team-b has.
e2e_team_b_only{namespace="team-b"} 1
# TYPE e2e_queue_depth gauge
# HELP e2e_queue_depth Jobs waiting.
e2e_queue_depth{namespace="team-a"} 2
e2e_queue_depth{namespace="team-b"} 4
# TYPE e2e_mirrored_pods gauge
# HELP e2e_mirrored_pods A team-a series that carries another namespace in exported_namespace.
e2e_mirrored_pods{exported_namespace="team-b",namespace="team-a",pod="mirror-0"} 1
# EOF
"""
"""Served as ``application/openmetrics-text``, so Prometheus keeps the exemplars."""

RULES: dict[str, Any] = {
    "groups": [
        {
            "name": "e2e",
            "interval": "1s",
            "rules": [
                {
                    "record": "team_a:e2e_jobs:sum",
                    "expr": 'sum(e2e_jobs_total{namespace="team-a"})',
                    "labels": {"namespace": "team-a"},
                },
                {
                    "record": "team_b:e2e_jobs:sum",
                    "expr": 'sum(e2e_jobs_total{namespace="team-b"})',
                    "labels": {"namespace": "team-b"},
                },
                {"alert": "E2EJobsRunning", "expr": "e2e_jobs_total > 0", "labels": {"severity": "info"}},
                {"alert": "E2ETeamBOnly", "expr": "e2e_team_b_only > 0"},
            ],
        }
    ]
}
"""Both tenants have an ``E2EJobsRunning`` alert; only team-b has ``E2ETeamBOnly``."""
