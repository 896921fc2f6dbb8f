"""``proxy.query_mode: fan_out`` over two real Prometheus: every series once, whoever holds it.

- Overlapping shards: one backend holds two thirds of the data set, the other a different two
  thirds, so a third of the series is on both and every series on at least one. The merged
  answer is the whole data set, each series once.
- Replicas: both backends hold every series, differing only by a ``replica`` label; with
  ``replica_labels: [replica]`` each series comes back once, without that label.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from realservers import Dataset, LoadedPrometheus, ServerProcess

from .servers import start_prometheus_copy, subset, with_label
from .service import service_config, start_service
from .tenancy import visible_series

pytestmark = pytest.mark.slow

HEADERS = {"X-Tenant-Namespace": "team-a"}


def label_set(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


async def start_backends(workdir: Path, datasets: list[Dataset]) -> list[ServerProcess]:
    servers: list[ServerProcess] = [None] * len(datasets)  # type: ignore[list-item]

    async def start(index: int) -> None:
        servers[index] = await trio.to_thread.run_sync(start_prometheus_copy, workdir / f"b{index}", datasets[index])

    async with trio.open_nursery() as nursery:
        for index in range(len(datasets)):
            nursery.start_soon(start, index)
    return servers


@pytest.fixture
def stopped_at_end() -> Iterator[list[ServerProcess]]:
    servers: list[ServerProcess] = []
    yield servers
    for server in servers:
        server.stop()


async def fetch(client: httpx.AsyncClient, url: str, path: str, params: dict[str, Any]) -> Any:
    response = await client.get(url + path, params=params, headers=HEADERS)
    assert response.status_code == 200, response.text[:500]
    document = response.json()
    assert document["status"] == "success" and "warnings" not in document, document
    return document["data"]


async def test_overlapping_shards_merge_to_every_series_once(
    infra_prometheus_with_data: LoadedPrometheus,
    tmp_path: Path,
    tenants_dir: Path,
    nursery: trio.Nursery,
    stopped_at_end: list[ServerProcess],
) -> None:
    data = infra_prometheus_with_data.data
    shards = [subset(data, lambda i, s: i % 3 != 0), subset(data, lambda i, s: i % 3 != 1)]
    stopped_at_end.extend(await start_backends(tmp_path, shards))
    config = service_config(
        targets=[b.url for b in stopped_at_end], tenants_dir=tenants_dir, proxy={"query_mode": "fan_out"}
    )
    service = await start_service(nursery, config)
    t_ms, end_s = data.end_ms, data.end_s
    visible_now = visible_series(data.live_at(t_ms), "team-a")
    async with httpx.AsyncClient(timeout=30.0) as client:
        vector = await fetch(client, service.url, "/api/v1/query", {"query": '{__name__=~".+"}', "time": end_s})
        matrix = await fetch(
            client,
            service.url,
            "/api/v1/query_range",
            {"query": "process_open_fds", "start": end_s - 300, "end": end_s, "step": 60},
        )
        series = await fetch(
            client, service.url, "/api/v1/series", {"match[]": "up", "start": end_s - 60, "end": end_s}
        )
        pods = await fetch(
            client, service.url, "/api/v1/label/pod/values", {"start": end_s - 60, "end": end_s}
        )
    await service.stop()

    got = [label_set(item["metric"]) for item in vector["result"]]
    assert len(got) == len(set(got))
    expected = {label_set(s.metric): s.sample_at(t_ms).value for s in visible_now}
    assert {label_set(i["metric"]): float(i["value"][1]) for i in vector["result"]} == expected
    # Neither shard alone has them all, so the merge really took from both.
    for shard in shards:
        assert len(visible_series(shard.live_at(t_ms), "team-a")) < len(expected)

    ranged = [label_set(item["metric"]) for item in matrix["result"]]
    assert sorted(ranged) == sorted(label_set(s.metric) for s in visible_now if s.name == "process_open_fds")
    assert all(len(item["values"]) == 6 for item in matrix["result"])
    assert sorted(label_set(item) for item in series) == sorted(
        label_set(s.metric) for s in visible_now if s.name == "up"
    )
    assert pods == sorted({s.get("pod") for s in visible_now if s.get("pod")})


async def test_replicas_differing_only_by_replica_label_are_merged(
    infra_prometheus_with_data: LoadedPrometheus,
    tmp_path: Path,
    tenants_dir: Path,
    nursery: trio.Nursery,
    stopped_at_end: list[ServerProcess],
) -> None:
    data = infra_prometheus_with_data.data
    replicas = [with_label(data, "replica", "a"), with_label(data, "replica", "b")]
    stopped_at_end.extend(await start_backends(tmp_path, replicas))
    config = service_config(
        targets=[b.url for b in stopped_at_end],
        tenants_dir=tenants_dir,
        proxy={"query_mode": "fan_out", "replica_labels": ["replica"]},
    )
    service = await start_service(nursery, config)
    t_ms, end_s = data.end_ms, data.end_s
    visible_now = visible_series(data.live_at(t_ms), "team-a")
    async with httpx.AsyncClient(timeout=30.0) as client:
        vector = await fetch(client, service.url, "/api/v1/query", {"query": "up", "time": end_s})
        matrix = await fetch(
            client, service.url, "/api/v1/query_range", {"query": "up", "start": end_s - 120, "end": end_s, "step": 60}
        )
        series = await fetch(
            client, service.url, "/api/v1/series", {"match[]": "up", "start": end_s - 60, "end": end_s}
        )
        window = {"start": end_s - 60, "end": end_s}
        names = await fetch(client, service.url, "/api/v1/labels", window)
        replica_values = await fetch(client, service.url, "/api/v1/label/replica/values", window)
        job_values = await fetch(client, service.url, "/api/v1/label/job/values", window)
    await service.stop()

    expected_up = sorted(label_set(s.metric) for s in visible_now if s.name == "up")
    assert sorted(label_set(item["metric"]) for item in vector["result"]) == expected_up
    assert sorted(label_set(item["metric"]) for item in matrix["result"]) == expected_up
    assert sorted(label_set(item) for item in series) == expected_up
    # label names and values describe the merged series, which carry no replica label
    assert "replica" not in names and {"__name__", "job", "namespace"} <= set(names)
    assert replica_values == []
    assert job_values == sorted({s.get("job") for s in visible_series(data.series, "team-a") if s.get("job")})
