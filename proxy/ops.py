"""Operations endpoints: health, readiness, metrics and the debug pages, in the original's shapes.

- ``/health``: ``{"status","total_targets","healthy_targets","tenants"}`` plus ``leader``;
  503 with ``status: "unhealthy"`` when no backend is healthy (the original always said
  healthy);
- ``/-/healthy``: liveness, 200 while the process serves; ``/-/ready``: 200 once the
  tenant caches are synced and a backend is healthy, else 503;
- ``/metrics``: the proxy's registry, when ``enable_metrics``;
- ``/debug/targets``: ``{"targets":[{"url","healthy","last_seen"}]}``;
- ``/debug/tenants`` and ``/debug/enforce`` (``namespace``, ``query``) answer for the
  authenticated tenant's own namespace only, so a tenant never learns another's rules;
  ``/debug/enforce`` refuses a query over ``proxy.max_query_bytes``, as the query endpoints do;
- ``/collected-metrics``: per job of the tenant's namespace, ``# Job: ns/name (N metrics)``
  then the series forwarded in the last cycle as text lines with ms timestamps.

Debug pages are 404 when ``enable_debug_endpoints`` is off.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mtproxy.api import ProxyConfig
from mtproxy.proxy.auth.base import Tenant
from mtproxy.proxy.backends import BackendPool
from mtproxy.proxy.errors import BadRequest, NotFound
from mtproxy.proxy.limits import QueryLimits
from mtproxy.proxy.metrics import ProxyMetrics
from mtproxy.proxy.params import RequestParams
from mtproxy.proxy.routes import RouteKind
from mtproxy.proxy.tenants import TenantDirectory

__all__ = ["CollectedJob", "CollectedSource", "OpsHandler"]

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectedJob:
    """One remote-write job's last forwarded series, for ``/collected-metrics``."""

    key: str
    read_series: Callable[[], Sequence[tuple[Sequence[tuple[str, str]], int, float]]]
    """(labels, timestamp ms, value) per series; may take a while, so it is called in a worker thread."""


class CollectedSource(Protocol):
    """Where ``/collected-metrics`` reads from (the remote-write runner, on the leader)."""

    def collected_jobs(self, namespace: str) -> Sequence[CollectedJob]: ...


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class OpsHandler:
    """Answers the operations routes."""

    def __init__(
        self,
        *,
        config: ProxyConfig,
        tenants: TenantDirectory,
        backends: BackendPool,
        metrics: ProxyMetrics,
        ready: Callable[[], bool] = lambda: True,
        leader: Callable[[], bool | None] = lambda: None,
        collected: CollectedSource | None = None,
        explain: Callable[[str, str], tuple[bool, str]] | None = None,
        objects: Callable[[str], list[dict[str, Any]]] | None = None,
    ) -> None:
        self._config = config
        self._tenants = tenants
        self._backends = backends
        self._metrics = metrics
        self._ready = ready
        self._leader = leader
        self._collected = collected
        self._explain = explain
        self._objects = objects
        """The verdicts on one namespace's MetricAccess objects, as plain values (``/debug/tenants``)."""

    async def answer(self, kind: RouteKind, *, params: RequestParams, tenant: Tenant | None) -> tuple[int, str, bytes]:
        """(status, content type, body) of an operations route."""
        stats = self._backends.statistics()
        self._metrics.targets.set(stats.total)
        self._metrics.healthy_targets.set(stats.healthy)
        self._metrics.tenants.set(len(self._tenants.all_policies()))
        if kind is RouteKind.HEALTH:
            healthy = stats.healthy > 0
            body = {
                "status": "healthy" if healthy else "unhealthy",
                "total_targets": stats.total,
                "healthy_targets": stats.healthy,
                "tenants": len(self._tenants.all_policies()),
                "leader": self._leader(),
            }
            return (200 if healthy else 503), _JSON, _dump(body)
        if kind is RouteKind.HEALTHY:
            return 200, _TEXT, b"OK\n"
        if kind is RouteKind.READY:
            ready = self._ready() and stats.healthy > 0
            return (200 if ready else 503), _TEXT, b"OK\n" if ready else b"not ready\n"
        if kind is RouteKind.METRICS:
            if not self._config.enable_metrics:
                raise NotFound("metrics are disabled (proxy.enable_metrics)")
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._metrics.registry)
        if not self._config.enable_debug_endpoints:
            raise NotFound("debug endpoints are disabled (proxy.enable_debug_endpoints)")
        if kind is RouteKind.DEBUG_TARGETS:
            targets = [
                {
                    "url": t.url,
                    "healthy": t.healthy,
                    "last_seen": dt.datetime.fromtimestamp(t.last_seen, dt.UTC).isoformat().replace("+00:00", "Z")
                    if t.last_seen
                    else None,
                }
                for t in self._backends.targets()
            ]
            return 200, _JSON, _dump({"targets": targets})
        assert tenant is not None
        if kind is RouteKind.DEBUG_TENANTS:
            # the tenant's own objects only, with what the service made of each (why one grants nothing)
            objects = self._objects(tenant.namespace) if self._objects is not None else []
            return 200, _JSON, _dump({"tenants": self._tenant_entries(tenant.namespace), "objects": objects})
        if kind is RouteKind.DEBUG_ENFORCE:
            query = params.single("query", required=True)
            assert query is not None
            # explained on the event loop, so bounded as a tenant's query is
            QueryLimits.from_config(self._config).check_size("the query", len(query.encode("utf-8")))
            if self._explain is None:
                raise NotFound("enforcement explanation is not available")
            allowed, text = self._explain(tenant.namespace, query)
            return (
                (200 if allowed else 403),
                _JSON,
                _dump({"namespace": tenant.namespace, "query": query, "allowed": allowed, "result": text}),
            )
        if kind is RouteKind.COLLECTED_METRICS:
            if self._collected is None:
                return 200, _TEXT, b"# remote write is not running on this replica (it runs on the leader only)\n"
            jobs = self._collected.collected_jobs(tenant.namespace)  # copies taken on the event loop
            # decoding and formatting 100,000 series takes about a second: not on the event loop
            return 200, _TEXT, await trio.to_thread.run_sync(_collected_text, jobs)
        raise BadRequest(f"unexpected route {kind.value}")

    def _tenant_entries(self, namespace: str) -> list[dict[str, Any]]:
        policy = self._tenants.policy_for(namespace)
        if policy is None:
            return []
        return [
            {
                "id": source,
                "name": source.split("/", 1)[1],
                "namespace": namespace,
                "patterns": len(policy.rules),
                "rules": [rule.selector() for rule in policy.rules],
                "isolated": policy.isolated,
            }
            for source in policy.sources
        ]


def _collected_text(jobs: Sequence[CollectedJob]) -> bytes:
    """The original's ``/collected-metrics`` text: a ``# Job:`` line, then one sample line per series."""
    lines: list[str] = []
    for job in jobs:
        series = job.read_series()
        lines.append(f"# Job: {job.key} ({len(series)} metrics)")
        for labels, timestamp_ms, value in series:
            name = dict(labels).get("__name__", "")
            pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels if k != "__name__")
            lines.append(f"{name}{{{pairs}}} {value!r} {timestamp_ms}")
        lines.append("")
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b"# no metrics collected yet\n"
