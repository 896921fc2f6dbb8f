"""Every call Grafana's Prometheus data source makes, through the proxy, with the tenant header.

The data source is configured with the proxy's URL and a custom HTTP header
``X-Tenant-Namespace: team-a``; it sends Grafana's own headers too (``X-Grafana-Org-Id``,
``X-Dashboard-Uid``, ``X-Panel-Id``, its User-Agent, ``Accept-Encoding: gzip``). Queries
go as form-encoded POSTs (Grafana's default "HTTP method: POST"); the metric browser and
the variable editor use GET with ``match[]``. The ``/api/v1/rules/test/test`` probe is how
Grafana tells a Prometheus (404) from a Mimir/Cortex ruler: it must get a 404 in
Prometheus' JSON error envelope.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from realservers import LoadedPrometheus, ServerProcess

from .service import service_config, start_service
from .tenancy import visible_series

pytestmark = pytest.mark.slow

GRAFANA_HEADERS = {
    "X-Tenant-Namespace": "team-a",
    "User-Agent": "Grafana/10.4.1",
    "X-Grafana-Org-Id": "1",
    "X-Dashboard-Uid": "tenant-overview",
    "X-Panel-Id": "4",
    "Accept": "application/json, text/plain, */*",
    "Accept-Encoding": "gzip",
}

Call = Callable[[httpx.AsyncClient, str, Any], Awaitable[None]]


def success(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text[:500]
    document = response.json()
    assert document["status"] == "success", document
    return document["data"]


async def health_check_buildinfo(client: httpx.AsyncClient, url: str, data: Any) -> None:
    info = success(await client.get(url + "/api/v1/status/buildinfo"))
    assert info["version"].split(".")[0] in {"2", "3"}, info  # the e2e backend runs 2.42, then 3.x


async def health_check_query(client: httpx.AsyncClient, url: str, data: Any) -> None:
    result = success(await client.post(url + "/api/v1/query", data={"query": "1+1", "time": str(time.time())}))
    assert result["resultType"] == "scalar" and float(result["result"][1]) == 2


async def ruler_probe_is_prometheus_404(client: httpx.AsyncClient, url: str, data: Any) -> None:
    response = await client.get(url + "/api/v1/rules/test/test")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["status"] == "error" and document["errorType"] == "not_found"


def _window(data: Any) -> dict[str, str]:
    return {"start": str(data.end_s - 3600), "end": str(data.end_s)}


def _team_a(data: Any, start_s: int) -> list[Any]:
    return [s for s in visible_series(data.series, "team-a") if s.samples_between(start_s * 1000, data.end_ms)]


async def metric_browser_labels(client: httpx.AsyncClient, url: str, data: Any) -> None:
    names = success(await client.get(url + "/api/v1/labels", params=_window(data)))
    assert names == sorted({k for s in _team_a(data, data.end_s - 3600) for k in s.metric})


async def metric_browser_metric_names(client: httpx.AsyncClient, url: str, data: Any) -> None:
    names = success(await client.get(url + "/api/v1/label/__name__/values", params=_window(data)))
    assert names == sorted({s.name for s in _team_a(data, data.end_s - 3600)})


async def metric_browser_label_values_with_match(client: httpx.AsyncClient, url: str, data: Any) -> None:
    params = {"match[]": '{__name__="up"}', **_window(data)}
    jobs = success(await client.get(url + "/api/v1/label/job/values", params=params))
    assert jobs == sorted({s.get("job") for s in _team_a(data, data.end_s - 3600) if s.name == "up"})
    assert jobs  # team-a's own jobs, and only those


async def metric_browser_series(client: httpx.AsyncClient, url: str, data: Any) -> None:
    params = {"match[]": '{__name__="up",job=~".+"}', **_window(data)}
    series = success(await client.get(url + "/api/v1/series", params=params))
    expected = sorted(sorted(s.metric.items()) for s in _team_a(data, data.end_s - 3600) if s.name == "up")
    assert sorted(sorted(item.items()) for item in series) == expected


async def panel_instant_query_post(client: httpx.AsyncClient, url: str, data: Any) -> None:
    form = {"query": "sum by (pod) (rate(http_requests_total[5m]))", "time": str(data.end_s)}
    result = success(await client.post(url + "/api/v1/query", data=form))
    pods = {item["metric"]["pod"] for item in result["result"]}
    assert pods == {
        s.get("pod") for s in visible_series(data.live_at(data.end_ms), "team-a") if s.name == "http_requests_total"
    }


async def panel_range_query_post(client: httpx.AsyncClient, url: str, data: Any) -> None:
    form = {"query": "up", "start": str(data.end_s - 1800), "end": str(data.end_s), "step": "30"}
    result = success(await client.post(url + "/api/v1/query_range", data=form))
    assert result["resultType"] == "matrix"
    assert {item["metric"]["namespace"] for item in result["result"]} == {"team-a"}
    assert len(result["result"]) == len([s for s in visible_series(data.select("up"), "team-a")])


async def exemplars_post(client: httpx.AsyncClient, url: str, data: Any) -> None:
    now = time.time()
    form = {"query": "rate(e2e_jobs_total[5m])", "start": str(now - 3600), "end": str(now + 60)}
    result = success(await client.post(url + "/api/v1/query_exemplars", data=form))
    assert [item["seriesLabels"]["namespace"] for item in result] == ["team-a"]


async def metadata_for_types(client: httpx.AsyncClient, url: str, data: Any) -> None:
    metadata = success(await client.get(url + "/api/v1/metadata"))
    assert metadata["e2e_queue_depth"][0]["type"] == "gauge"
    assert "e2e_team_b_only" not in metadata
    one = success(await client.get(url + "/api/v1/metadata", params={"metric": "e2e_queue_depth"}))
    assert list(one) == ["e2e_queue_depth"]


CALLS = [
    pytest.param(health_check_buildinfo, id="health-check-buildinfo"),
    pytest.param(health_check_query, id="health-check-query-1+1"),
    pytest.param(ruler_probe_is_prometheus_404, id="rules-test-test-probe-404"),
    pytest.param(metric_browser_labels, id="metric-browser-labels"),
    pytest.param(metric_browser_metric_names, id="metric-browser-metric-names"),
    pytest.param(metric_browser_label_values_with_match, id="metric-browser-label-values-match"),
    pytest.param(metric_browser_series, id="metric-browser-series"),
    pytest.param(panel_instant_query_post, id="query-post-form"),
    pytest.param(panel_range_query_post, id="query-range-post-form"),
    pytest.param(exemplars_post, id="exemplars-post"),
    pytest.param(metadata_for_types, id="metadata"),
]


@pytest.mark.parametrize("call", CALLS)
async def test_grafana_data_source_call_works_through_the_proxy(
    call: Call,
    e2e_prometheus: ServerProcess,
    infra_prometheus_with_data: LoadedPrometheus,
    tenants_dir: Path,
    nursery: trio.Nursery,
) -> None:
    service = await start_service(nursery, service_config(targets=[e2e_prometheus.url], tenants_dir=tenants_dir))
    async with httpx.AsyncClient(timeout=30.0, headers=GRAFANA_HEADERS) as client:
        await call(client, service.url, infra_prometheus_with_data.data)
    await service.stop()
