"""Enforcement, end to end on real Prometheus: the proxy answers as if only the visible series existed.

For each tenant policy, a second Prometheus is loaded with exactly the series of the
infrastructure data set that the policy admits. A query sent through the proxy (real HTTP
server, ``X-Tenant-Namespace``) to the infrastructure Prometheus must then get the same answer
as the same, unmodified query sent straight to that second Prometheus: same result type,
same label sets, same values (exact float equality, compared as sets). The same holds for
series, labels, label values, metadata and federation.

Alongside the answer, each test checks what the backend received: every selector of every
recorded ``query`` and ``match[]`` may select only series the policy admits (over the data
set's label sets moved to every namespace), and the proxy's defence-in-depth counter
``prometheus_proxy_enforcement_violations_total`` stays 0.

A 403 is a failure, except for the (policy, query) pairs in ``REFUSED``: range selectors that
need several rules at once outside a per-series range function, which DESIGN.md says the proxy
must refuse; there the 403 envelope is checked and nothing may reach the backend. Pairs in
``KNOWN_BUGS`` are strict xfails naming the bug.

The policies (``POLICIES``), each a set of MetricAccess documents merged by the reconciler:

- ``isolation``: team-a, ``metricIsolation: true``, a regex, a name and a name;
- ``label-selectors``: isolation off, ``labelSelectors: {job: kubelet}``, across namespaces;
- ``merged``: three objects in team-b (isolated names, unisolated node-exporter regex with a
  label selector, an isolated ``{job=...}`` selector), whose rules need unions;
- ``selector``: selector patterns only, one with a label value holding quotes, a backslash
  and non-ASCII text;
- ``regex``: isolation off, alternations and groups in anchored regexes;
- ``twins``: team-a, rules that differ in ``__name__`` and in another label, over two
  counters whose series differ only in their name: the union must keep both (PromQL's
  ``or`` alone matches them as one series).

``test_policy_admits_what_prometheus_selects`` keeps the yardstick honest: the visible set is
computed with ``AccessPolicy.admits``, so it is checked against what Prometheus itself selects
with each rule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
from realservers import Dataset, LoadedPrometheus, start_prometheus_with_data
from realservers.prometheus import PrometheusBinaries
from realservers.testbin import PROMETHEUS_FLAVOURS, prometheus_build

from mtproxy.api import parse_selector
from mtproxy.proxy import AccessPolicy

from .proxyharness import (
    BackendCall,
    RunningProxy,
    enforcement_problems,
    label_universe,
    load_policies,
    metric_access,
    selector_matches,
    start_proxy,
)

pytestmark = pytest.mark.slow

_BUILD_MESSAGE = 'déploiement "stable" ✓ 日本語 \\ fin'
_QUOTED = _BUILD_MESSAGE.replace("\\", "\\\\").replace('"', '\\"')

POLICIES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "isolation": (
        "team-a",
        [metric_access("team-a", "app", ["http_.*", "up", "container_cpu_usage_seconds_total"])],
    ),
    "label-selectors": (
        "platform",
        [
            metric_access(
                "platform", "kubelet", ["container_.*", "up"], isolation=False, label_selectors={"job": "kubelet"}
            )
        ],
    ),
    "merged": (
        "team-b",
        [
            metric_access("team-b", "app", ["http_requests_total", "up"]),
            metric_access(
                "team-b", "nodes", ["node_load.*"], isolation=False, label_selectors={"job": "node-exporter"}
            ),
            metric_access("team-b", "state", ['{job="kube-state-metrics"}']),
        ],
    ),
    "selector": (
        "team-c",
        [
            metric_access(
                "team-c",
                "selectors",
                ['{job="kube-state-metrics"}', 'up{job=~"team-c/.*"}', f'app_build_info{{message="{_QUOTED}"}}'],
            )
        ],
    ),
    "regex": (
        "kube-system",
        [
            metric_access(
                "kube-system", "infra", ["(node|apiserver)_.+", "etcd_.+|scheduler_pending_pods"], isolation=False
            )
        ],
    ),
    "twins": (
        "team-a",
        [
            metric_access("team-a", "hits", ["app_cache_hits_total"], label_selectors={"env": "prod"}),
            metric_access("team-a", "misses", ['app_cache_misses_total{cache="items"}', "up"]),
        ],
    ),
}

INSTANT_QUERIES = [
    "up",
    '{__name__=~".+"}',
    'count by (__name__) ({__name__=~".+"})',
    'count by (namespace) ({__name__=~".+"})',
    'count({__name__=~".+"})',
    'group by (namespace) ({__name__=~"kube_.*"})',
    'count by (__name__) ({namespace="team-a"})',
    'count by (job) ({job=~".+"})',
    '{__name__=~"up|node_load1"}',
    '{job="kubelet"}',
    '{namespace="team-b"}',
    '{namespace=~"team-.*"}',
    'up{namespace="team-b"}',
    'up{job="kube-state-metrics"}',
    "sum by (namespace, job) (up)",
    "rate(http_requests_total[5m])",
    'sum by (namespace) (rate(http_requests_total{code="500"}[5m]))',
    "histogram_quantile(0.9, sum by (le, namespace) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(3, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))",
    "bottomk(2, process_resident_memory_bytes)",
    "absent(node_load1)",
    "absent(nonexistent_metric)",
    'absent(up{job="nonexistent"})',
    'count_values("value", up)',
    'label_replace(up, "ns", "$1", "namespace", "(.*)")',
    'label_replace(up, "namespace", "team-b", "", "")',
    "up or on() vector(0)",
    'http_requests_in_flight unless on(namespace) up{namespace="team-b"}',
    "up and on(namespace) kube_pod_info",
    "node_load1 or up",
    "etcd_server_has_leader or scheduler_pending_pods",
    'http_requests_total{handler="/api/v1/items"} * on(namespace, pod) group_left(node) kube_pod_info',
    "rate(container_cpu_usage_seconds_total[5m] offset 10m)",
    "up offset 30m",
    "up @ start()",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "sum(rate(node_cpu_seconds_total[5m])) by (instance)",
    'sum(rate(node_cpu_seconds_total{mode!="idle"}[5m] offset 5m)) by (mode)',
    "sum without (instance, pod) (container_memory_working_set_bytes)",
    "avg by (namespace) (go_goroutines)",
    "quantile by (namespace) (0.5, process_open_fds)",
    "stddev(node_load5)",
    "count(kube_pod_info) by (namespace)",
    "sum by (namespace) (kube_deployment_spec_replicas)"
    " - sum by (namespace) (kube_deployment_status_replicas_available)",
    "increase(kube_pod_container_status_restarts_total[1h])",
    "resets(http_requests_total[2h])",
    "changes(up[1h])",
    "delta(node_memory_MemAvailable_bytes[10m])",
    "deriv(app_queue_depth[10m])",
    "predict_linear(node_filesystem_avail_bytes[30m], 3600)",
    "holt_winters(node_load1[10m], 0.5, 0.5)",
    "quantile_over_time(0.9, process_open_fds[30m])",
    'last_over_time({__name__=~".+"}[10m])',
    'count_over_time({job="kubelet"}[5m])',
    "absent_over_time(up[5m])",
    'absent_over_time(up{job="nonexistent"}[5m])',
    'sum(count_over_time({__name__=~".+"}[1h:5m]))',
    "time() - timestamp(up)",
    "scalar(count(up))",
    "vector(1) + count(up)",
    "sum(up) / count(up)",
    "up > bool 0",
    "-up",
    "sort_desc(sum by (namespace) (rate(container_network_receive_bytes_total[5m])))",
    "sort(sum by (pod) (container_memory_working_set_bytes))",
    'sort_desc({__name__=~"up|node_load1|container_cpu_usage_seconds_total"})',
    "apiserver_request_total",
    f'app_build_info{{message="{_QUOTED}"}}',
    'app_build_info{message=~".*stable.*"}',
    '{__name__=~".+"}[1m]',
    'rate({__name__=~"container_cpu.*|http_requests_total"}[5m])',
    'absent(up{namespace="team-b"})',
    'absent({namespace="team-b"})',
    'absent_over_time({__name__=~".+"}[5m])',
    'rate({__name__=~".+"}[5m])',
    '{__name__=~".+"} * 1',
    'timestamp({__name__=~".+"})',
    '{__name__=~".+"} offset 5m @ end()',
    'count by (__name__) ({__name__=~".+"} offset 1h)',
    'sum_over_time({__name__=~".+"}[5m:1m])',
    'quantile_over_time(0.5, {__name__=~".+"}[5m])',
    'rate({__name__=~".+"}[5m] offset 10m)',
    'up{namespace=~"team-a|team-b"}',
    'up{namespace!="team-a"}',
    'up{namespace=""}',
    '{__name__=~"(?i)UP"}',
    '{__name__="up"}',
    'up{job=~".*"}',
    'node_filesystem_avail_bytes{mountpoint="/mnt/data disk"}',
    "up offset -5m",
    "rate(up[5m] @ end())",
    'label_join(up, "both", "/", "namespace", "pod")',
    "count(up) by (namespace) unless count(kube_pod_info) by (namespace)",
    "sum by (namespace) (up) > on(namespace) group_left sum by (namespace) (kube_pod_info)",
    "clamp_max(round(node_load1, 0.5), 1)",
    'count_values("v", {__name__=~".+"})',
    'label_replace({__name__=~".+"}, "namespace", "$1", "job", "(.*)")',
    "up{job='team-a/api'}",
    "up{job=`team-a/api`}",
    r'up{job="\u0074eam-a/api"}',
    r'up{job="a\"} or {__name__=~\".+\"} or up{job=\"b"}',
    r'app_build_info{message=~".*\\\\ fin"}',
    "max_over_time(up[30m:])",
    # series that differ only in their name, in two branches of a union (policy "twins")
    '{env="prod"}',
    'count({env="prod"})',
    'topk(4, {env="prod"})',
    'count by (__name__) ({env="prod"})',
    'sum by (cache) ({env="prod"})',
    'sum by (__name__, cache) ({env="prod"} offset 1m)',
    'sort_desc({__name__=~"app_cache_.*"})',
    'rate({env="prod"}[5m])',
    'sum by (__name__) (last_over_time({env="prod"}[5m]))',
    'timestamp({env="prod"})',
    'count(count_over_time({env="prod"}[5m]))',
    '{env="prod"} or {__name__=~"up|app_cache_.*"}',
]

RANGE_QUERIES = [
    "up",
    'count by (__name__) ({__name__=~".+"})',
    "sum by (namespace) (rate(http_requests_total[5m]))",
    "rate(container_cpu_usage_seconds_total[5m])",
    "max_over_time(up[10m])",
    "node_load1 or up",
    "histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    'absent(up{namespace="team-b"})',
    'sum by (job) (last_over_time({__name__=~".+"}[2m]))',
    "sum(rate(node_cpu_seconds_total[5m] offset 15m))",
    '{env="prod"}',
    'count by (__name__) ({env="prod"})',
    'rate({env="prod"}[5m])',
    'last_over_time({__name__=~"app_cache_.*"}[1m])',
]

_UNION_RANGE = "a bare range selector needing two rules at once (DESIGN.md step 6): refused with 403"
REFUSED: dict[tuple[str, str], str] = {
    ("merged", '{__name__=~".+"}[1m]'): _UNION_RANGE,
    ("merged", 'absent_over_time({__name__=~".+"}[5m])'): _UNION_RANGE,
    ("selector", '{__name__=~".+"}[1m]'): _UNION_RANGE,
    ("selector", 'absent_over_time({__name__=~".+"}[5m])'): _UNION_RANGE,
    ("twins", '{__name__=~".+"}[1m]'): _UNION_RANGE,
    ("twins", 'absent_over_time({__name__=~".+"}[5m])'): _UNION_RANGE,
}
"""(policy, query) → why a 403 is the right answer."""

KNOWN_BUGS: dict[tuple[str, str], str] = {}
"""(policy, query) → the bug that makes the proxy's answer differ; the test is a strict xfail."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantView:
    """One policy, the infrastructure Prometheus, and a Prometheus holding only what the policy admits."""

    name: str
    namespace: str
    policy: AccessPolicy
    infra: LoadedPrometheus
    visible: LoadedPrometheus
    universe: list[dict[str, str]]

    @property
    def data(self) -> Dataset:
        return self.infra.data


@pytest.fixture(scope="module", params=PROMETHEUS_FLAVOURS)
def oracle_build(request: pytest.FixtureRequest) -> tuple[PrometheusBinaries, LoadedPrometheus]:
    """The Prometheus build the oracle suite runs against, with its infrastructure Prometheus.

    The data is written by Debian's promtool for both builds, so the two runs compare the
    same series (promtool 3 would store ``le="1"`` as ``le="1.0"``).
    """
    binaries = prometheus_build(request, blocks_by_debian_promtool=True)
    fixture = "infra_prometheus3_with_data" if request.param == "3" else "infra_prometheus_with_data"
    infra: LoadedPrometheus = request.getfixturevalue(fixture)
    return binaries, infra


@pytest.fixture(scope="module", params=list(POLICIES))
def view(
    request: pytest.FixtureRequest,
    oracle_build: tuple[PrometheusBinaries, LoadedPrometheus],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TenantView]:
    name: str = request.param
    namespace, documents = POLICIES[name]
    policy = load_policies(documents)[namespace]
    binaries, infra_prometheus_with_data = oracle_build
    data = infra_prometheus_with_data.data
    admitted = tuple(s for s in data.series if policy.admits(s.metric))
    assert admitted, f"policy {name} admits nothing of the data set"
    subset = Dataset(
        start_ms=data.start_ms, end_ms=data.end_ms, step_ms=data.step_ms, namespaces=data.namespaces, series=admitted
    )
    visible = start_prometheus_with_data(tmp_path_factory.mktemp(f"visible-{name}"), subset, binaries=binaries)
    try:
        yield TenantView(
            name=name,
            namespace=namespace,
            policy=policy,
            infra=infra_prometheus_with_data,
            visible=visible,
            universe=label_universe((s.metric for s in data.series), data.namespaces),
        )
    finally:
        visible.server.stop()


async def test_policy_admits_what_prometheus_selects(nursery: trio.Nursery, view: TenantView) -> None:
    """The series each rule selects on the infrastructure Prometheus are exactly the admitted ones."""
    proxy = await _proxy(nursery, view)
    selected: set[tuple[tuple[str, str], ...]] = set()
    for rule in view.policy.rules:
        answer = await proxy.client.get(view.infra.url + "/api/v1/series", params={"match[]": rule.selector()})
        assert answer.status_code == 200, answer.text
        selected.update(_labels(series) for series in answer.json()["data"])
    assert selected == {_labels(s.metric) for s in view.data.series if view.policy.admits(s.metric)}


# -- comparing answers ------------------------------------------------------------------------


def _labels(metric: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))


def _normalised(response: httpx.Response, *, ordered: bool = False) -> Any:
    """What must be equal: the status, and for a success the data as hashable values.

    Results are compared as sets (sorted), except where the query's own ``sort``/``sort_desc``
    makes the order part of the answer.
    """
    document = response.json()
    if document.get("status") != "success":
        return (response.status_code, document.get("errorType"))
    data = document["data"]
    if isinstance(data, dict) and data.get("resultType") in ("vector", "matrix"):
        items = []
        for item in data["result"]:
            values = tuple(map(tuple, item["values"])) if "values" in item else tuple(item["value"])
            items.append((_labels(item["metric"]), values))
        return (response.status_code, data["resultType"], items if ordered else sorted(items))
    if isinstance(data, dict):
        return (response.status_code, data.get("resultType"), tuple(data.get("result") or ()))
    if isinstance(data, list):
        return (response.status_code, sorted(_labels(i) if isinstance(i, dict) else (i,) for i in data))
    return (response.status_code, data)


def _expect_bug(request: pytest.FixtureRequest, view_name: str, key: str) -> None:
    reason = KNOWN_BUGS.get((view_name, key))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


async def _assert_backend_saw_only_policy(proxy: RunningProxy, view: TenantView) -> None:
    problems = enforcement_problems(proxy.recorder.calls, view.policy, view.universe)
    assert problems == []
    assert await proxy.violations() == 0


async def _proxy(nursery: trio.Nursery, view: TenantView) -> RunningProxy:
    return await start_proxy(nursery, view.infra.url, policies={view.namespace: view.policy})


async def _assert_refused(response: httpx.Response, proxy: RunningProxy) -> None:
    assert response.status_code == 403, response.text
    envelope = response.json()
    assert envelope["status"] == "error"
    assert envelope["errorType"] == "forbidden"
    assert "range selector" in envelope["error"]
    assert proxy.recorder.calls == []


async def _compare_query(
    nursery: trio.Nursery, view: TenantView, path: str, query: str, extra: Mapping[str, str | int]
) -> None:
    proxy = await _proxy(nursery, view)
    params = {"query": query, **extra}
    through = await proxy.get(path, params, tenant=view.namespace)
    if (view.name, query) in REFUSED:
        await _assert_refused(through, proxy)
        return
    assert through.status_code != 403, f"refused: {through.text}"
    direct = await proxy.client.get(view.visible.url + path, params=params)
    ordered = query.startswith("sort")
    assert _normalised(through, ordered=ordered) == _normalised(direct, ordered=ordered)
    assert any(call.values("query") for call in proxy.recorder.calls), "no query reached the backend"
    await _assert_backend_saw_only_policy(proxy, view)


@pytest.mark.parametrize("query", INSTANT_QUERIES)
async def test_instant_query_equals_query_on_visible_series_only(
    request: pytest.FixtureRequest, nursery: trio.Nursery, view: TenantView, query: str
) -> None:
    _expect_bug(request, view.name, query)
    await _compare_query(nursery, view, "/api/v1/query", query, {"time": view.data.end_s})


OFF_STEP_QUERIES = [
    'timestamp({__name__=~".+"})',
    'timestamp({__name__=~"up|app_cache_hits_total"})',
    'timestamp({__name__=~"up|app_cache_hits_total"} offset 1m)',
    'timestamp(({__name__=~"up|app_cache_hits_total"}))',
]
"""Queries whose answer differs between a sample's time and the evaluation time: asked between two samples."""


@pytest.mark.parametrize("query", OFF_STEP_QUERIES)
async def test_query_between_samples_equals_query_on_visible_series_only(
    request: pytest.FixtureRequest, nursery: trio.Nursery, view: TenantView, query: str
) -> None:
    _expect_bug(request, view.name, f"off-step:{query}")
    await _compare_query(nursery, view, "/api/v1/query", query, {"time": view.data.end_s - 7})


@pytest.mark.parametrize("query", RANGE_QUERIES)
async def test_range_query_equals_query_on_visible_series_only(
    request: pytest.FixtureRequest, nursery: trio.Nursery, view: TenantView, query: str
) -> None:
    _expect_bug(request, view.name, f"range:{query}")
    end = view.data.end_s
    await _compare_query(nursery, view, "/api/v1/query_range", query, {"start": end - 1800, "end": end, "step": 60})


MATCHES = [
    pytest.param((), id="no-match"),
    pytest.param(('{__name__=~".+"}',), id="all-names"),
    pytest.param(("up",), id="up"),
    pytest.param(('up{namespace="team-b"}', "node_load1"), id="foreign-namespace-and-node"),
    pytest.param(('{job="kubelet"}', '{__name__=~"kube_.*"}'), id="job-and-prefix"),
    pytest.param(('{namespace=~".+"}',), id="any-namespace"),
]


def _direct_matches(matches: tuple[str, ...]) -> tuple[str, ...]:
    # Prometheus wants a match[] for series; on the visible-only server "everything" is the same.
    return matches or ('{__name__=~".+"}',)


WINDOWS = [pytest.param(None, id="all-time"), pytest.param(600, id="last-10m")]


async def _compare_listing(
    nursery: trio.Nursery,
    view: TenantView,
    path: str,
    matches: tuple[str, ...],
    *,
    direct_needs_match: bool,
    window_s: int | None = None,
    method: str = "GET",
) -> None:
    proxy = await _proxy(nursery, view)
    bounds: list[tuple[str, Any]] = (
        [] if window_s is None else [("start", view.data.end_s - window_s), ("end", view.data.end_s)]
    )
    params: list[tuple[str, Any]] = [("match[]", m) for m in matches] + bounds
    if method == "POST":
        through = await proxy.post(path, params, tenant=view.namespace)
    else:
        through = await proxy.get(path, params, tenant=view.namespace)
    direct_matches = _direct_matches(matches) if direct_needs_match else matches
    direct = await proxy.client.get(view.visible.url + path, params=[("match[]", m) for m in direct_matches] + bounds)
    assert through.status_code == 200, through.text
    assert _normalised(through) == _normalised(direct)
    await _assert_backend_saw_only_policy(proxy, view)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("window_s", WINDOWS)
@pytest.mark.parametrize("matches", MATCHES)
async def test_series_equal_series_on_visible_only(
    nursery: trio.Nursery, view: TenantView, matches: tuple[str, ...], window_s: int | None, method: str
) -> None:
    await _compare_listing(
        nursery, view, "/api/v1/series", matches, direct_needs_match=True, window_s=window_s, method=method
    )


@pytest.mark.parametrize("window_s", WINDOWS)
@pytest.mark.parametrize("matches", MATCHES)
async def test_labels_equal_labels_on_visible_only(
    nursery: trio.Nursery, view: TenantView, matches: tuple[str, ...], window_s: int | None
) -> None:
    await _compare_listing(nursery, view, "/api/v1/labels", matches, direct_needs_match=False, window_s=window_s)


@pytest.mark.parametrize("label", ["__name__", "namespace", "job", "message", "mountpoint", "le"])
@pytest.mark.parametrize("matches", MATCHES)
async def test_label_values_equal_values_on_visible_only(
    nursery: trio.Nursery, view: TenantView, label: str, matches: tuple[str, ...]
) -> None:
    await _compare_listing(nursery, view, f"/api/v1/label/{label}/values", matches, direct_needs_match=False)


async def test_metadata_names_only_visible_metrics(nursery: trio.Nursery, view: TenantView) -> None:
    proxy = await _proxy(nursery, view)
    through = await proxy.get("/api/v1/metadata", tenant=view.namespace)
    assert through.status_code == 200, through.text
    direct = await proxy.client.get(view.visible.url + "/api/v1/metadata")
    visible_names = {s.name for s in view.data.series if view.policy.admits(s.metric)}
    names = set(through.json()["data"])
    assert names <= visible_names
    assert names == set(direct.json()["data"]) & visible_names
    await _assert_backend_saw_only_policy(proxy, view)


def _federation(text: str) -> tuple[set[str], set[str]]:
    lines = [line for line in text.splitlines() if line]
    return {line for line in lines if not line.startswith("#")}, {line for line in lines if line.startswith("# TYPE")}


@pytest.mark.parametrize("given", [m for m in MATCHES if m.values[0]])
async def test_federate_equals_federate_on_visible_only(
    nursery: trio.Nursery, view: TenantView, given: tuple[str, ...]
) -> None:
    proxy = await _proxy(nursery, view)
    through = await proxy.get("/federate", [("match[]", m) for m in given], tenant=view.namespace)
    direct = await proxy.client.get(view.visible.url + "/federate", params=[("match[]", m) for m in given])
    assert through.status_code == direct.status_code == 200, through.text
    samples, types = _federation(through.text)
    assert (samples, types) == _federation(direct.text)
    # /federate reads at the wall clock, where the data set is "now" only for its first minutes.
    now_ms = time.time() * 1000
    if now_ms - view.data.end_ms < 240_000:
        selectors = [parse_selector(m) for m in given]
        live = [
            s
            for s in view.data.series
            if view.policy.admits(s.metric)
            and any(selector_matches(sel, s.metric) for sel in selectors)
            and s.sample_at(int(now_ms)) is not None
        ]
        assert len(samples) == len(live)
    await _assert_backend_saw_only_policy(proxy, view)


async def test_answers_carry_no_foreign_namespace_under_isolation(nursery: trio.Nursery, view: TenantView) -> None:
    """The direct counterpart of the violation counter: no answer names another tenant's namespace."""
    if not view.policy.isolated:
        pytest.skip("the policy does not isolate by namespace")
    proxy = await _proxy(nursery, view)
    through = await proxy.get(
        "/api/v1/query", {"query": '{__name__=~".+"}', "time": view.data.end_s}, tenant=view.namespace
    )
    namespaces = {item["metric"].get("namespace") for item in through.json()["data"]["result"]}
    assert namespaces == {view.namespace}
    assert json.dumps(through.json()).count('"namespace"') == len(through.json()["data"]["result"])


async def test_corpus_is_not_vacuous(nursery: trio.Nursery, view: TenantView) -> None:
    """Most of the corpus returns data on the visible-only server, so the equalities above compare something."""
    proxy = await _proxy(nursery, view)
    non_empty = 0
    for query in INSTANT_QUERIES:
        direct = await proxy.client.get(
            view.visible.url + "/api/v1/query", params={"query": query, "time": view.data.end_s}
        )
        result = direct.json().get("data", {}).get("result") if direct.status_code == 200 else None
        non_empty += bool(result)
    assert non_empty >= 25


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(("query", "up"), id="unrestricted-query"),
        pytest.param(("query", 'sum(rate(up{namespace="team-a"}[5m])) or {__name__=~".+"}'), id="one-bad-selector"),
        pytest.param(("match[]", '{__name__=~".+"}'), id="unrestricted-match"),
    ],
)
def test_backend_check_catches_an_unrestricted_selector(view: TenantView, call: tuple[str, str]) -> None:
    """The harness' check is not vacuous: an unenforced selector in a recorded request is reported."""
    recorded = BackendCall(method="POST", path="/api/v1/query", url_params=(), form_params=(call,), headers={}, raw=b"")
    assert enforcement_problems([recorded], view.policy, view.universe) != []


async def test_absent_of_another_namespace_is_no_violation(nursery: trio.Nursery, view: TenantView) -> None:
    """absent() of a foreign namespace answers {namespace=<it>} 1 from the query text; no series leaks."""
    if not view.policy.isolated:
        pytest.skip("only isolated policies check results")
    proxy = await _proxy(nursery, view)
    through = await proxy.get(
        "/api/v1/query", {"query": 'absent(up{namespace="team-b"})', "time": view.data.end_s}, tenant=view.namespace
    )
    violations = await proxy.violations()
    assert ([item["metric"] for item in through.json()["data"]["result"]], violations) == ([{"namespace": "team-b"}], 0)
