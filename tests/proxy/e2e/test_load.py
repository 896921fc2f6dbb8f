"""Overload: 2,000 queries at concurrency 200 against ``max_concurrent_requests: 20``.

The service runs as the ``mtproxy`` command (its own process, so its RSS is its own) in
front of the shared Prometheus, with a 0.5 s ``queue_timeout``. All of it comes from one
tenant, whose share is a quarter of the slots: every request must be answered, either
with the right data (200) or with a 429 (the tenant at its share) or 503 (the service
full) carrying ``Retry-After``; none may be lost (the client counts its answers and the
proxy's ``requests_total`` counts the same number); ``/health`` keeps answering 200 while
the queue is full; and the resident memory of the service stays bounded.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from realservers import LoadedPrometheus, MtproxyProcess

from .service import service_config
from .tenancy import visible_series, write_tenant_files

pytestmark = pytest.mark.slow

REQUESTS = 2_000
CONCURRENCY = 200
MAX_CONCURRENT = 20
RSS_GROWTH_LIMIT_MIB = 150
HEALTH_POLL_S = 0.1
HEALTH_DEADLINE_S = 5.0


@pytest.fixture
def mtproxy(tmp_path: Path, infra_prometheus_with_data: LoadedPrometheus) -> Iterator[MtproxyProcess]:
    config = service_config(
        targets=[infra_prometheus_with_data.url],
        tenants_dir=write_tenant_files(tmp_path / "tenants"),
        proxy={"max_concurrent_requests": MAX_CONCURRENT, "queue_timeout": "500ms"},
    )
    command = MtproxyProcess("mtproxy", tmp_path / "mtproxy", config, log_level="warning").start()
    yield command
    command.stop()


async def test_overload_answers_every_request_with_data_or_retry_after(
    mtproxy: MtproxyProcess, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    data = infra_prometheus_with_data.data
    expected = len([s for s in visible_series(data.live_at(data.end_ms), "team-a") if s.name == "up"])
    form = {"query": "up", "time": str(data.end_s)}
    statuses: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    health: list[tuple[int, float]] = []
    done = trio.Event()
    memory_before = mtproxy.memory_kib()
    limits = httpx.Limits(max_connections=CONCURRENCY + 10, max_keepalive_connections=CONCURRENCY + 10)
    timeout = httpx.Timeout(30.0, pool=30.0)
    started = time.monotonic()

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client, httpx.AsyncClient(timeout=10.0) as probe:
        request_ids = iter(range(REQUESTS))

        async def worker() -> None:
            for _ in request_ids:
                response = await client.post(
                    mtproxy.url + "/api/v1/query", data=form, headers={"X-Tenant-Namespace": "team-a"}
                )
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    if len(response.json()["data"]["result"]) != expected:
                        problems.append(response.text[:200])
                elif response.status_code in (429, 503):
                    if not response.headers.get("retry-after", "").isdigit():
                        problems.append(f"{response.status_code} without Retry-After: {response.headers}")
                else:
                    problems.append(f"{response.status_code}: {response.text[:200]}")

        async def poll_health() -> None:
            while not done.is_set():
                sent = time.monotonic()
                response = await probe.get(mtproxy.url + "/health")
                health.append((response.status_code, time.monotonic() - sent))
                await trio.sleep(HEALTH_POLL_S)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll_health)
            with trio.fail_after(60):
                async with trio.open_nursery() as workers:
                    for _ in range(CONCURRENCY):
                        workers.start_soon(worker)
            done.set()
        elapsed = time.monotonic() - started
        metrics = (await probe.get(mtproxy.url + "/metrics")).text
    memory_after = mtproxy.memory_kib()

    assert problems == []
    assert sum(statuses.values()) == REQUESTS
    assert set(statuses) <= {200, 429, 503} and statuses[200] > 0
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('prometheus_proxy_requests_total{method="POST",path="/api/v1/query"')
    )
    assert counted == REQUESTS
    assert len(health) >= 3 and {status for status, _ in health} == {200}
    assert max(seconds for _, seconds in health) < HEALTH_DEADLINE_S
    growth_mib = (memory_after["VmRSS"] - memory_before["VmRSS"]) / 1024
    assert growth_mib < RSS_GROWTH_LIMIT_MIB, (memory_before, memory_after)
    print(
        f"\n{REQUESTS} requests in {elapsed:.1f} s: {dict(statuses)}; /health polled {len(health)} times, "
        f"slowest {max(s for _, s in health) * 1000:.0f} ms; RSS {memory_before['VmRSS'] // 1024} -> "
        f"{memory_after['VmRSS'] // 1024} MiB (peak {memory_after['VmHWM'] // 1024} MiB)"
    )
