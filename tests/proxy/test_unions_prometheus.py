"""Exact unions on every backend build: Prometheus 2.42, 3.x, and 3.x with delayed name removal.

The union the enforcer writes for a selector that needs several rules carries each series'
name (or a tag per disjoint part) through PromQL's ``or`` in a temporary label, and removes
it afterwards (``proxy.enforce._union``). Whether that is exact depends on how each build's
``or``, ``label_join`` and ``label_replace`` treat ``__name__``: 3.x keeps the name of a
series through name-dropping functions until the end of the query when
``promql-delayed-name-removal`` is on, and its label functions merge series that become
alike. So the twins of the data set (``app_cache_hits_total`` and ``app_cache_misses_total``,
identical labels apart from the name) are asked for on each build, through the proxy and
straight from a Prometheus of the same build holding only the visible series; answers and
errors must be the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from realservers import Dataset, LoadedPrometheus, build_dataset
from realservers.backfill import create_blocks
from realservers.prometheus import PrometheusBinaries, infrastructure_prometheus
from realservers.testbin import prometheus3
from realservers.testdata import write_openmetrics

from mtproxy.proxy import AccessPolicy

from .proxyharness import load_policies, metric_access, start_proxy

pytestmark = pytest.mark.slow

TWINS = [
    metric_access("team-a", "hits", ["app_cache_hits_total"], label_selectors={"env": "prod"}),
    metric_access("team-a", "misses", ['app_cache_misses_total{cache="items"}', "up"]),
]
"""Rules that differ in ``__name__`` and another label, so selectors across them need a union."""

QUERIES = [
    '{env="prod"}',
    'count by (__name__) ({env="prod"})',
    'topk(4, {env="prod"})',
    'sum by (__name__, cache) ({env="prod"} offset 1m)',
    'rate({env="prod"}[5m])',
    'sum(rate({env="prod"}[5m]))',
    'sum by (__name__) (last_over_time({env="prod"}[5m]))',
    'timestamp({env="prod"})',
    'timestamp({__name__=~"up|app_cache_hits_total"})',
    'rate({__name__=~"up|app_cache_hits_total"}[5m])',
    'count({__name__=~".+"})',
    '{env="prod"} @ end()',
    'count by (__name__) (max_over_time({env="prod"}[5m:1m]))',
    'absent({env="prod"})',
    'sort_desc({env="prod"})',
]

FLAVOURS = [
    pytest.param(("2", ()), id="prometheus-2.42"),
    pytest.param(("3", ()), id="prometheus-3", marks=[pytest.mark.prometheus3]),
    pytest.param(
        ("3", ("--enable-feature=promql-delayed-name-removal",)),
        id="prometheus-3-delayed-name-removal",
        marks=[pytest.mark.prometheus3],
    ),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backends:
    """One build: the infrastructure Prometheus and one holding only the twins policy's series."""

    policy: AccessPolicy
    infra: LoadedPrometheus
    visible: LoadedPrometheus


def _start(workdir: Path, data: Dataset, *, binaries: PrometheusBinaries | None, flags: tuple[str, ...]) -> Any:
    write_openmetrics(data, workdir / "dataset.om")
    # Debian's promtool writes the blocks for every build, so that le="1" stays "1"
    create_blocks(workdir / "dataset.om", workdir / "data")
    server = infrastructure_prometheus(
        workdir, storage_dir=workdir / "data", retention="3650d", extra_args=flags, binaries=binaries
    )
    server.start()
    return LoadedPrometheus(server=server, data=data)


@pytest.fixture(scope="module", params=FLAVOURS)
def backends(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    build, flags = request.param
    binaries = prometheus3() if build == "3" else None
    policy = load_policies(TWINS)["team-a"]
    full = build_dataset()
    # the twins, every up series and a little of everything else, foreign namespaces included
    infra_data = dataclasses.replace(
        full, series=tuple(s for s in full.series if s.name.startswith(("app_cache_", "up", "go_")))
    )
    visible_data = dataclasses.replace(
        infra_data, series=tuple(s for s in infra_data.series if policy.admits(s.metric))
    )
    infra = _start(tmp_path_factory.mktemp("unions-infra"), infra_data, binaries=binaries, flags=flags)
    try:
        visible = _start(tmp_path_factory.mktemp("unions-visible"), visible_data, binaries=binaries, flags=flags)
        try:
            yield Backends(policy=policy, infra=infra, visible=visible)
        finally:
            visible.server.stop()
    finally:
        infra.server.stop()


def _normalised(response: httpx.Response) -> Any:
    document = response.json()
    if document.get("status") != "success":
        return (response.status_code, document.get("errorType"))
    data = document["data"]
    items = []
    for item in data["result"]:
        values = tuple(map(tuple, item["values"])) if "values" in item else tuple(item["value"])
        items.append((tuple(sorted(item["metric"].items())), values))
    return (response.status_code, data["resultType"], sorted(items))


@pytest.mark.parametrize("query", QUERIES)
async def test_union_answers_as_on_visible_series_only(nursery: trio.Nursery, backends: Backends, query: str) -> None:
    proxy = await start_proxy(nursery, backends.infra.url, policies={"team-a": backends.policy})
    end = backends.infra.data.end_s
    for path, params in (
        ("/api/v1/query", {"query": query, "time": end}),
        ("/api/v1/query", {"query": query, "time": end - 7}),  # between samples: timestamp() shows it
        ("/api/v1/query_range", {"query": query, "start": end - 900, "end": end, "step": 60}),
    ):
        through = await proxy.get(path, params, tenant="team-a")
        direct = await proxy.client.get(backends.visible.url + path, params=params)
        assert _normalised(through) == _normalised(direct), (path, params)


async def test_twins_are_in_the_data_and_visible(backends: Backends) -> None:
    """The comparison is not vacuous: the visible server holds series that differ only in their name."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            backends.visible.url + "/api/v1/query",
            params={"query": 'count by (cache, pod) ({env="prod"}) > 1', "time": backends.visible.data.end_s},
        )
    assert len(answer.json()["data"]["result"]) >= 3
