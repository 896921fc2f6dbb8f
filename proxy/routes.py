"""The proxy's one route table: path → methods → whether a tenant is needed → what it does.

Deny by default: a path not listed here gets Prometheus' 404 envelope, so nothing of the
backend's API (admin, status, write, targets, the UI) is reachable by accident.
Registration refuses overlapping paths (as prom-label-proxy's ``strictMux`` does), so
a route can never be shadowed. Templates are what ``prometheus_proxy_requests_total``
labels ``path`` with, keeping its cardinality bounded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ROUTES", "Route", "RouteKind", "match_route"]


class RouteKind(enum.Enum):
    """What a route does."""

    QUERY = "query"
    QUERY_RANGE = "query_range"
    QUERY_EXEMPLARS = "query_exemplars"
    SERIES = "series"
    LABELS = "labels"
    LABEL_VALUES = "label_values"
    FEDERATE = "federate"
    METADATA = "metadata"
    RULES = "rules"
    ALERTS = "alerts"
    BUILDINFO = "buildinfo"
    FORMAT_QUERY = "format_query"
    HEALTH = "health"
    READY = "ready"
    HEALTHY = "healthy"
    METRICS = "metrics"
    DEBUG_TARGETS = "debug_targets"
    DEBUG_TENANTS = "debug_tenants"
    DEBUG_ENFORCE = "debug_enforce"
    COLLECTED_METRICS = "collected_metrics"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One entry of the table."""

    template: str
    kind: RouteKind
    methods: frozenset[str]
    tenant: bool
    """Whether the request must be authenticated as a tenant."""


_READ = frozenset({"GET", "POST"})
_GET = frozenset({"GET", "HEAD"})
LABEL_VALUES_TEMPLATE = "/api/v1/label/{name}/values"


def _table(*routes: Route) -> dict[str, Route]:
    table: dict[str, Route] = {}
    for route in routes:
        if route.template in table:
            raise ValueError(f"route {route.template} registered twice")
        table[route.template] = route
    return table


ROUTES = _table(
    Route(template="/api/v1/query", kind=RouteKind.QUERY, methods=_READ, tenant=True),
    Route(template="/api/v1/query_range", kind=RouteKind.QUERY_RANGE, methods=_READ, tenant=True),
    Route(template="/api/v1/query_exemplars", kind=RouteKind.QUERY_EXEMPLARS, methods=_READ, tenant=True),
    Route(template="/api/v1/series", kind=RouteKind.SERIES, methods=_READ, tenant=True),
    Route(template="/api/v1/labels", kind=RouteKind.LABELS, methods=_READ, tenant=True),
    Route(template=LABEL_VALUES_TEMPLATE, kind=RouteKind.LABEL_VALUES, methods=_READ, tenant=True),
    Route(template="/federate", kind=RouteKind.FEDERATE, methods=_READ, tenant=True),
    Route(template="/api/v1/metadata", kind=RouteKind.METADATA, methods=_READ, tenant=True),
    Route(template="/api/v1/rules", kind=RouteKind.RULES, methods=_GET, tenant=True),
    Route(template="/api/v1/alerts", kind=RouteKind.ALERTS, methods=_GET, tenant=True),
    Route(template="/api/v1/status/buildinfo", kind=RouteKind.BUILDINFO, methods=_GET, tenant=True),
    Route(template="/api/v1/format_query", kind=RouteKind.FORMAT_QUERY, methods=_READ, tenant=True),
    Route(template="/health", kind=RouteKind.HEALTH, methods=_GET, tenant=False),
    Route(template="/-/ready", kind=RouteKind.READY, methods=_GET, tenant=False),
    Route(template="/-/healthy", kind=RouteKind.HEALTHY, methods=_GET, tenant=False),
    Route(template="/metrics", kind=RouteKind.METRICS, methods=_GET, tenant=False),
    Route(template="/debug/targets", kind=RouteKind.DEBUG_TARGETS, methods=_GET, tenant=False),
    Route(template="/debug/tenants", kind=RouteKind.DEBUG_TENANTS, methods=_GET, tenant=False),
    Route(template="/debug/enforce", kind=RouteKind.DEBUG_ENFORCE, methods=_GET, tenant=False),
    Route(template="/collected-metrics", kind=RouteKind.COLLECTED_METRICS, methods=_GET, tenant=False),
)


def match_route(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for an (already percent-decoded) path and its path parameters, or None."""
    route = ROUTES.get(path)
    if route is not None:
        return route, {}
    prefix, suffix = "/api/v1/label/", "/values"
    if path.startswith(prefix) and path.endswith(suffix) and len(path) > len(prefix) + len(suffix):
        name = path[len(prefix) : -len(suffix)]
        if "/" not in name:
            return ROUTES[LABEL_VALUES_TEMPLATE], {"name": name}
    return None
