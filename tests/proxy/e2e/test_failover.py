"""A backend killed in the middle of a stream of queries costs no request (``load_balance`` mode).

Two Prometheus hold the same data set (the shared one and a copy); the service balances
over both. Workers query without pause while the copy is SIGKILLed: requests in flight on
it and those sent to it before the health checks notice are retried once on the other
backend (``BackendPool.send``), so every answer is a correct 200.
"""

from __future__ import annotations

import collections
from pathlib import Path

import httpx
import pytest
import trio
from realservers import LoadedPrometheus

from .servers import start_prometheus_copy
from .service import service_config, start_service
from .tenancy import visible_series

pytestmark = pytest.mark.slow

WORKERS = 8
BEFORE_KILL_S = 1.5
AFTER_KILL_S = 2.5


async def test_killing_a_backend_mid_stream_fails_no_request(
    infra_prometheus_with_data: LoadedPrometheus, tmp_path: Path, tenants_dir: Path, nursery: trio.Nursery
) -> None:
    data = infra_prometheus_with_data.data
    victim = await trio.to_thread.run_sync(start_prometheus_copy, tmp_path / "victim", data)
    try:
        config = service_config(
            targets=[victim.url, infra_prometheus_with_data.url],
            tenants_dir=tenants_dir,
            discovery={"health_check_interval": "1s", "unhealthy_threshold": 2},
        )
        service = await start_service(nursery, config)
        expected = {
            tuple(sorted(s.metric.items()))
            for s in visible_series(data.live_at(data.end_ms), "team-a")
            if s.name == "up"
        }
        statuses: collections.Counter[int] = collections.Counter()
        wrong: list[str] = []
        stop = trio.Event()

        async def query_until_stopped(client: httpx.AsyncClient) -> None:
            while not stop.is_set():
                response = await client.post(
                    service.url + "/api/v1/query",
                    data={"query": "up", "time": str(data.end_s)},
                    headers={"X-Tenant-Namespace": "team-a"},
                )
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    got = {tuple(sorted(r["metric"].items())) for r in response.json()["data"]["result"]}
                    if got != expected:
                        wrong.append(response.text[:300])
                else:
                    wrong.append(f"{response.status_code} {response.text[:300]}")

        async with httpx.AsyncClient(timeout=30.0) as client:
            async with trio.open_nursery() as workers:
                for _ in range(WORKERS):
                    workers.start_soon(query_until_stopped, client)
                await trio.sleep(BEFORE_KILL_S)
                served_before_kill = sum(statuses.values())
                victim.kill()
                await trio.sleep(AFTER_KILL_S)
                stop.set()
            targets = (await client.get(service.url + "/debug/targets")).json()["targets"]
            metrics = (await client.get(service.url + "/metrics")).text
        await service.stop()
    finally:
        victim.stop()

    assert wrong == []
    assert set(statuses) == {200}
    assert served_before_kill > 0 and sum(statuses.values()) > served_before_kill
    health = {t["url"]: t["healthy"] for t in targets}
    assert health == {victim.url: False, infra_prometheus_with_data.url: True}
    # The victim did serve its share before it died: the test really failed over.
    assert f'prometheus_proxy_backend_requests_total{{backend="{victim.url}",status="200"}}' in metrics
