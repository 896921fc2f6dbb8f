"""One tenant's slow queries do not slow another tenant's light ones (issue 15, finding 5).

team-a sends 12 slow queries at once to a backend that holds each for ``SLOW_S``; meanwhile
team-c sends light queries one after another. With ``max_concurrent_requests: 4``, team-a's
share is 1: one of its queries runs, the rest wait ``queue_timeout`` and get 429 with
``Retry-After`` unless a slot frees first, and team-c finds free slots all along. Its median
latency must stay within 1.5 times its median with no load, and every request must be
answered (200, or 429 with Retry-After). With one shared limiter, team-a filled all 4 slots
and queued in front of team-c, which waited seconds or got 503.
"""

from __future__ import annotations

import collections
import statistics
import time

import httpx
import pytest
import trio

from mtproxy.api import ProxyConfig

from .proxyharness import RunningProxy, metric_access, start_proxy
from .slowbackend import start_slow_backend

pytestmark = pytest.mark.slow  # real time

SLOW_S = 1.5
HEAVY_QUERIES = 12
LIGHT_QUERIES = 30
CONFIG = ProxyConfig(enable_metrics=True, max_concurrent_requests=4, queue_timeout="2s")
ACCESS = [metric_access("team-a", "app", ["slow_.*"]), metric_access("team-c", "app", ["up"])]


async def _light_latencies(proxy: RunningProxy, count: int, statuses: collections.Counter[int]) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = await proxy.get("/api/v1/query", {"query": "up"}, tenant="team-c")
        latencies.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
    return latencies


async def test_a_light_tenant_keeps_its_latency_while_another_floods_slow_queries(nursery: trio.Nursery) -> None:
    backend = await start_slow_backend(nursery, slow_s=SLOW_S)
    proxy = await start_proxy(nursery, backend.url, access=ACCESS, config=CONFIG)
    light_statuses: collections.Counter[int] = collections.Counter()
    await _light_latencies(proxy, 5, light_statuses)  # connections and code paths warm
    unloaded = await _light_latencies(proxy, LIGHT_QUERIES, light_statuses)

    heavy: list[httpx.Response] = []

    async def slow_query() -> None:
        heavy.append(await proxy.get("/api/v1/query", {"query": "slow_query"}, tenant="team-a"))

    async with trio.open_nursery() as flood:
        for _ in range(HEAVY_QUERIES):
            flood.start_soon(slow_query)
        with trio.fail_after(5):
            await backend.wait_slow_running(1)
        await trio.sleep(0.2)  # every slow query has arrived and waits, or runs
        held_before = backend.slow_running
        loaded = await _light_latencies(proxy, LIGHT_QUERIES, light_statuses)
        held_after = backend.slow_running

    statuses = collections.Counter(r.status_code for r in heavy)
    unloaded_ms, loaded_ms = statistics.median(unloaded) * 1000, statistics.median(loaded) * 1000
    print(
        f"\nteam-c median {unloaded_ms:.2f} ms unloaded, {loaded_ms:.2f} ms while team-a holds "
        f"{HEAVY_QUERIES} slow queries (x{loaded_ms / unloaded_ms:.2f}; p90 "
        f"{statistics.quantiles(loaded, n=10)[-1] * 1000:.2f} ms, answers {dict(light_statuses)}); "
        f"team-a answers {dict(statuses)}"
    )
    assert set(light_statuses) == {200}
    assert loaded_ms <= 1.5 * unloaded_ms
    assert max(loaded) < SLOW_S / 2, "a light query waited for a slot"
    assert held_before == held_after == 1, "team-a ran its share, and team-c ran meanwhile"
    assert len(heavy) == HEAVY_QUERIES
    assert set(statuses) <= {200, 429} and statuses[200] >= 1
    assert all(r.headers.get("retry-after", "").isdigit() for r in heavy if r.status_code == 429)
    assert all(r.json()["errorType"] for r in heavy if r.status_code == 429)
    rejected = proxy.metrics.registry.get_sample_value(
        "prometheus_proxy_tenant_queue_rejections_total", {"tenant": "team-a"}
    )
    assert rejected == statuses[429]
