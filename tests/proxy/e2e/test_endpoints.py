"""Every tenant endpoint, in every ``auth.type``, against a real Prometheus, through ``run_service``.

The service is the composition root in files mode with one static target (the end-to-end
Prometheus: the test data set, an exporter scraped every second, recording and alerting
rules). Each case asks as ``team-a`` and as ``team-b`` and compares the answer with what
the tenant may see, computed from the data set by the test's own reading of the patterns
(``tenancy.visible``), never from the proxy's enforcement. Instant and range queries are
at the data set's end, so the exporter's fresh series do not show in them; federation,
alerts, rules and exemplars read "now" and see only the exporter's.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from realservers import Dataset, LoadedPrometheus, ServerProcess

from .credentials import AuthMode
from .servers import QUERY_LOG, query_direct
from .service import service_config, start_service
from .tenancy import TENANTS, UNGRANTED, visible_series

pytestmark = pytest.mark.slow


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """The running service, how to authenticate to it, and the data behind it."""

    client: httpx.AsyncClient
    url: str
    mode: AuthMode
    data: Dataset
    backend: str
    """The Prometheus behind the proxy, for answers the data set cannot predict (buildinfo)."""

    async def get(self, namespace: str, path: str, params: Any = None) -> httpx.Response:
        return await self.client.get(self.url + path, params=params, headers=self.mode.headers_for(namespace))

    async def post(self, namespace: str, path: str, form: Any) -> httpx.Response:
        return await self.client.post(self.url + path, data=form, headers=self.mode.headers_for(namespace))


Check = Callable[[Context, str], Awaitable[None]]


# -- predicates --------------------------------------------------------------------------


def success(response: httpx.Response) -> Any:
    """The ``data`` of a 200 ``status: success`` answer."""
    assert response.status_code == 200, response.text[:500]
    document = response.json()
    assert document["status"] == "success", document
    return document["data"]


def label_set(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def vector_of(data: Any) -> dict[tuple[tuple[str, str], ...], float]:
    assert data["resultType"] == "vector", data
    return {label_set(item["metric"]): float(item["value"][1]) for item in data["result"]}


def expected_instant(ctx: Context, namespace: str, name: str | None = None) -> dict[Any, float]:
    t_ms = ctx.data.end_ms
    out = {}
    for s in visible_series(ctx.data.live_at(t_ms), namespace):
        if name is None or s.name == name:
            sample = s.sample_at(t_ms)
            assert sample is not None
            out[label_set(s.metric)] = sample.value
    return out


def in_range(ctx: Context, namespace: str, start_ms: int, end_ms: int) -> list[Any]:
    return [s for s in visible_series(ctx.data.series, namespace) if s.samples_between(start_ms, end_ms)]


# -- the cases, one per endpoint ---------------------------------------------------------


async def query_get_every_series(ctx: Context, ns: str) -> None:
    data = success(await ctx.get(ns, "/api/v1/query", {"query": '{__name__=~".+"}', "time": ctx.data.end_s}))
    expected = expected_instant(ctx, ns)
    assert len(expected) > 20
    assert vector_of(data) == expected


async def query_post_aggregation(ctx: Context, ns: str) -> None:
    form = {"query": 'count by (__name__) ({__name__=~".+"})', "time": str(ctx.data.end_s)}
    data = success(await ctx.post(ns, "/api/v1/query", form))
    counts: dict[Any, float] = {}
    for labels in expected_instant(ctx, ns):
        key = (("__name__", dict(labels)["__name__"]),)
        counts[key] = counts.get(key, 0) + 1
    assert vector_of(data) == counts


async def query_other_tenant_selects_nothing(ctx: Context, ns: str) -> None:
    other = next(t for t in TENANTS if t != ns)
    data = success(await ctx.get(ns, "/api/v1/query", {"query": f'up{{namespace="{other}"}}', "time": ctx.data.end_s}))
    assert data["result"] == []


async def query_range_matrix(ctx: Context, ns: str) -> None:
    end_s, step_s = ctx.data.end_s, 60
    start_s = end_s - 900
    params = {"query": "up", "start": start_s, "end": end_s, "step": step_s}
    data = success(await ctx.get(ns, "/api/v1/query_range", params))
    assert data["resultType"] == "matrix"
    got = {label_set(item["metric"]): [(int(t), float(v)) for t, v in item["values"]] for item in data["result"]}
    expected = {}
    for s in visible_series(ctx.data.select("up"), ns):
        points = []
        for t in range(start_s, end_s + 1, step_s):
            sample = s.sample_at(t * 1000)
            if sample is not None:
                points.append((t, sample.value))
        if points:
            expected[label_set(s.metric)] = points
    assert expected and got == expected


async def query_exemplars_own_only(ctx: Context, ns: str) -> None:
    now = time.time()
    params = {"query": '{__name__=~"e2e_.*"}', "start": now - 3600, "end": now + 60}
    data = success(await ctx.get(ns, "/api/v1/query_exemplars", params))
    assert [item["seriesLabels"]["__name__"] for item in data] == ["e2e_jobs_total"], data
    (item,) = data
    assert item["seriesLabels"]["namespace"] == ns
    assert {e["labels"]["trace_id"] for e in item["exemplars"]} == {f"trace-{ns[-1]}"}


async def series_in_range(ctx: Context, ns: str) -> None:
    end_s = ctx.data.end_s
    params = {"match[]": '{__name__=~"kube_pod_.*|up"}', "start": end_s - 600, "end": end_s}
    data = success(await ctx.get(ns, "/api/v1/series", params))
    expected = {
        label_set(s.metric)
        for s in in_range(ctx, ns, (end_s - 600) * 1000, end_s * 1000)
        if re.fullmatch("kube_pod_.*|up", s.name)
    }
    assert expected and {label_set(item) for item in data} == expected
    assert len(data) == len(expected)


async def labels_in_range(ctx: Context, ns: str) -> None:
    end_s = ctx.data.end_s
    data = success(await ctx.get(ns, "/api/v1/labels", {"start": end_s - 600, "end": end_s}))
    expected = {k for s in in_range(ctx, ns, (end_s - 600) * 1000, end_s * 1000) for k in s.metric}
    assert data == sorted(expected)


async def label_values_in_range(ctx: Context, ns: str) -> None:
    end_s = ctx.data.end_s
    window = {"start": end_s - 600, "end": end_s}
    series = in_range(ctx, ns, (end_s - 600) * 1000, end_s * 1000)
    for label in ("namespace", "pod", "__name__"):
        data = success(await ctx.get(ns, f"/api/v1/label/{label}/values", window))
        assert data == sorted({s.get(label) for s in series if s.get(label)}), label
    assert success(await ctx.get(ns, "/api/v1/label/namespace/values", window)) == [ns]


_SAMPLE_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>.*)\} \S+ \d+$")


async def federate_fresh_series(ctx: Context, ns: str) -> None:
    response = await ctx.get(ns, "/federate", {"match[]": '{__name__=~"e2e_(jobs|latency|team|queue).*"}'})
    assert response.status_code == 200, response.text
    samples = [m for line in response.text.splitlines() if (m := _SAMPLE_LINE.match(line))]
    assert all(f'namespace="{ns}"' in m["labels"] for m in samples), response.text
    expected = {
        "team-a": {
            "e2e_jobs_total",
            "e2e_latency_seconds_bucket",
            "e2e_latency_seconds_sum",
            "e2e_latency_seconds_count",
            "e2e_queue_depth",
        },
        "team-b": {"e2e_jobs_total", "e2e_team_b_only", "e2e_queue_depth"},
    }[ns]
    assert {m["name"] for m in samples} == expected


async def metadata_of_visible_families(ctx: Context, ns: str) -> None:
    data = success(await ctx.get(ns, "/api/v1/metadata"))
    # Exact series names only: the OpenMetrics counter ``e2e_jobs`` (series ``e2e_jobs_total``)
    # and the histogram ``e2e_latency_seconds`` are keyed by family names no series carries.
    expected = {
        "team-a": {"e2e_queue_depth", "e2e_mirrored_pods"},
        "team-b": {"e2e_team_b_only", "e2e_queue_depth"},
    }[ns]
    assert set(data) == expected
    other_only = "e2e_team_b_only" if ns == "team-a" else "e2e_latency_seconds"
    for guess in (other_only, "e2e_jobs", "e2e_latency_seconds"):
        assert success(await ctx.get(ns, "/api/v1/metadata", {"metric": guess})) == {}


async def rules_own_only(ctx: Context, ns: str) -> None:
    data = success(await ctx.get(ns, "/api/v1/rules"))
    rules = [rule for group in data["groups"] for rule in group["rules"]]
    names = sorted(rule["name"] for rule in rules)
    assert (
        names
        == {
            "team-a": ["E2EJobsRunning", "team_a:e2e_jobs:sum"],
            "team-b": ["E2EJobsRunning", "E2ETeamBOnly", "team_b:e2e_jobs:sum"],
        }[ns]
    )
    for rule in rules:
        assert rule["query"] == ""
        for alert in rule.get("alerts", []):
            assert alert["labels"]["namespace"] == ns


async def alerts_own_only(ctx: Context, ns: str) -> None:
    data = success(await ctx.get(ns, "/api/v1/alerts"))
    got = sorted((a["labels"]["alertname"], a["labels"]["namespace"], a["state"]) for a in data["alerts"])
    assert (
        got
        == {
            "team-a": [("E2EJobsRunning", "team-a", "firing")],
            "team-b": [("E2EJobsRunning", "team-b", "firing"), ("E2ETeamBOnly", "team-b", "firing")],
        }[ns]
    )


async def buildinfo_of_backend(ctx: Context, ns: str) -> None:
    data = success(await ctx.get(ns, "/api/v1/status/buildinfo"))
    assert data == query_direct(ctx.backend, "/api/v1/status/buildinfo")["data"]


async def format_query_as_prometheus(ctx: Context, ns: str) -> None:
    query = 'sum by(pod)(rate(http_requests_total{code="500"}[5m]))>0'
    data = success(await ctx.get(ns, "/api/v1/format_query", {"query": query}))
    assert data == query_direct(ctx.backend, "/api/v1/format_query", {"query": query})["data"]


async def ungranted_namespace_is_forbidden(ctx: Context, ns: str) -> None:
    response = await ctx.get(UNGRANTED, "/api/v1/query", {"query": "up", "time": ctx.data.end_s})
    assert response.status_code == 403, response.text
    assert response.json()["errorType"] == "forbidden"


CASES = [
    pytest.param(query_get_every_series, id="query-get-every-visible-series"),
    pytest.param(query_post_aggregation, id="query-post-aggregation"),
    pytest.param(query_other_tenant_selects_nothing, id="query-other-tenant-selects-nothing"),
    pytest.param(query_range_matrix, id="query-range"),
    pytest.param(query_exemplars_own_only, id="query-exemplars"),
    pytest.param(series_in_range, id="series"),
    pytest.param(labels_in_range, id="labels"),
    pytest.param(label_values_in_range, id="label-values"),
    pytest.param(federate_fresh_series, id="federate"),
    pytest.param(metadata_of_visible_families, id="metadata"),
    pytest.param(rules_own_only, id="rules"),
    pytest.param(alerts_own_only, id="alerts"),
    pytest.param(buildinfo_of_backend, id="buildinfo"),
    pytest.param(format_query_as_prometheus, id="format-query"),
    pytest.param(ungranted_namespace_is_forbidden, id="ungranted-namespace-forbidden"),
]


@pytest.mark.parametrize("check", CASES)
async def test_each_tenant_gets_exactly_its_own_answer(
    check: Check,
    auth_mode: AuthMode,
    e2e_prometheus: ServerProcess,
    infra_prometheus_with_data: LoadedPrometheus,
    tenants_dir: Path,
    nursery: trio.Nursery,
) -> None:
    config = service_config(targets=[e2e_prometheus.url], tenants_dir=tenants_dir, auth=auth_mode.auth)
    service = await start_service(nursery, config, kubeconfig=auth_mode.kubeconfig)
    async with httpx.AsyncClient(timeout=30.0) as client:
        ctx = Context(
            client=client,
            url=service.url,
            mode=auth_mode,
            data=infra_prometheus_with_data.data,
            backend=e2e_prometheus.url,
        )
        for namespace in TENANTS:
            await check(ctx, namespace)
    await service.stop()


async def test_prometheus_runs_the_enforced_query_not_the_clients_one(
    auth_mode: AuthMode, e2e_prometheus: ServerProcess, tenants_dir: Path, nursery: trio.Nursery
) -> None:
    """What reached the real backend (its query log), not only what came back."""
    config = service_config(targets=[e2e_prometheus.url], tenants_dir=tenants_dir, auth=auth_mode.auth)
    service = await start_service(nursery, config, kubeconfig=auth_mode.kubeconfig)
    marker = f"{time.time_ns() % 10**9}"
    query = f'sum by (pod) (rate(http_requests_total{{namespace=~"team-.*"}}[5m])) * {marker}'
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.post(
            service.url + "/api/v1/query", data={"query": query}, headers=auth_mode.headers_for("team-a")
        )
    await service.stop()
    success(response)
    log = e2e_prometheus.workdir / QUERY_LOG
    with trio.fail_after(5):
        while not (
            ran := [json.loads(line)["params"]["query"] for line in log.read_text().splitlines() if marker in line]
        ):
            await trio.sleep(0.05)
    assert len(ran) == 1
    (backend_query,) = ran
    assert 'namespace="team-a"' in backend_query
    assert backend_query != query


async def test_federation_keeps_a_visible_series_that_has_an_exported_namespace_label(
    e2e_prometheus: ServerProcess, tenants_dir: Path, nursery: trio.Nursery
) -> None:
    config = service_config(targets=[e2e_prometheus.url], tenants_dir=tenants_dir)
    service = await start_service(nursery, config)
    async with httpx.AsyncClient(timeout=30.0) as client:
        headers = {"X-Tenant-Namespace": "team-a"}
        query = await client.get(service.url + "/api/v1/query", params={"query": "e2e_mirrored_pods"}, headers=headers)
        assert len(success(query)["result"]) == 1
        federated = await client.get(
            service.url + "/federate", params={"match[]": "e2e_mirrored_pods"}, headers=headers
        )
        violations = await client.get(service.url + "/metrics")
    await service.stop()
    assert "prometheus_proxy_enforcement_violations_total 0.0" in violations.text
    assert federated.status_code == 200
    assert 'e2e_mirrored_pods{exported_namespace="team-b",' in federated.text


@pytest.mark.parametrize("mode_name", ["kubernetes", "jwt", "apikey"])
async def test_valid_credential_asking_for_another_namespace_is_forbidden(
    mode_name: str,
    request: pytest.FixtureRequest,
    e2e_prometheus: ServerProcess,
    infra_prometheus_with_data: LoadedPrometheus,
    tenants_dir: Path,
    nursery: trio.Nursery,
) -> None:
    """A team-a credential with ``X-Tenant-Namespace: team-b`` is a 403, and team-b's data never leaves."""
    from .credentials import apikey_mode, jwt_mode, kubernetes_mode

    if mode_name == "kubernetes":
        mode = kubernetes_mode(str(request.getfixturevalue("review_double")[1]))
    elif mode_name == "jwt":
        mode = jwt_mode(request.getfixturevalue("jwt_issuer"), request.getfixturevalue("jwks_server").url)
    else:
        mode = apikey_mode()
    config = service_config(targets=[e2e_prometheus.url], tenants_dir=tenants_dir, auth=mode.auth)
    service = await start_service(nursery, config, kubeconfig=mode.kubeconfig)
    end_s = infra_prometheus_with_data.data.end_s
    async with httpx.AsyncClient(timeout=30.0) as client:
        spoofed_requests: list[tuple[str, dict[str, Any]]] = [
            ("/api/v1/query", {"query": "up", "time": end_s}),
            ("/api/v1/series", {"match[]": "up"}),
            ("/api/v1/label/pod/values", {}),
            ("/federate", {"match[]": "up"}),
            ("/api/v1/alerts", {}),
        ]
        for path, params in spoofed_requests:
            response = await client.get(service.url + path, params=params, headers=mode.spoofed("team-a", "team-b"))
            assert response.status_code == 403, (path, response.text)
            assert response.json()["errorType"] == "forbidden"
            assert "data" not in response.json()
        own = await client.get(
            service.url + "/api/v1/query", params={"query": "up", "time": end_s}, headers=mode.headers_for("team-a")
        )
        assert own.status_code == 200
    await service.stop()
