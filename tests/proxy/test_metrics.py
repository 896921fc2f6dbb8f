"""/metrics names only tenants that have a policy; anything else is counted without a name."""

from __future__ import annotations

import trio

from mtproxy.api import ProxyConfig

from .proxyharness import metric_access, start_proxy
from .rawhttp import answering, serve_on_loopback
from .slowbackend import start_slow_backend

OK = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
TENANT_REQUESTS = "prometheus_proxy_tenant_requests_total"
UNKNOWN_REQUESTS = "prometheus_proxy_unknown_tenant_requests_total"


def _tenant_series(text: str) -> set[str]:
    return {
        line.split("{", 1)[1].split("}", 1)[0] for line in text.splitlines() if line.startswith(TENANT_REQUESTS + "{")
    }


async def test_namespaces_without_a_policy_add_no_series_and_are_counted_unlabelled(nursery: trio.Nursery) -> None:
    backend = await serve_on_loopback(nursery, answering(200, OK))
    proxy = await start_proxy(nursery, backend, access=[metric_access("team-a", "app", ["up"])])

    for index in range(20):
        refused = await proxy.get("/api/v1/query", {"query": "up"}, tenant=f"random-{index}")
        assert refused.status_code == 403
    served = await proxy.get("/api/v1/query", {"query": "up"}, tenant="team-a")
    assert served.status_code == 200, served.text

    text = (await proxy.get("/metrics", tenant=None)).text
    assert _tenant_series(text) == {'status="200",tenant="team-a"'}
    assert "random-" not in text
    assert proxy.metrics.registry.get_sample_value(UNKNOWN_REQUESTS) == 20.0


async def test_queue_metrics_name_only_tenants_with_a_policy(nursery: trio.Nursery) -> None:
    backend = await start_slow_backend(nursery, slow_s=60)
    config = ProxyConfig(enable_metrics=True, max_concurrent_requests=4, queue_timeout="60s")
    proxy = await start_proxy(nursery, backend.url, access=[metric_access("team-a", "app", ["slow_.*"])], config=config)

    async def slow_query() -> None:
        await proxy.get("/api/v1/query", {"query": "slow_query"}, tenant="team-a")

    for _ in range(3):
        nursery.start_soon(slow_query)
    with trio.fail_after(10):
        await backend.wait_slow_running(1)
        while proxy.app.queue.statistics().waiting < 2:
            await trio.sleep(0.01)
    assert (await proxy.get("/api/v1/query", {"query": "up"}, tenant="nobody")).status_code == 403

    def sample(name: str, labels: dict[str, str] | None = None) -> float | None:
        return proxy.metrics.registry.get_sample_value(name, labels or {})

    assert sample("prometheus_proxy_tenant_requests_in_flight", {"tenant": "team-a"}) == 1.0
    assert sample("prometheus_proxy_tenant_requests_queued", {"tenant": "team-a"}) == 2.0
    assert sample("prometheus_proxy_tenant_queue_rejections_total", {"tenant": "team-a"}) == 0.0
    assert sample("prometheus_proxy_requests_queued") == 2.0
    assert sample("prometheus_proxy_queue_rejections_total") == 0.0
    text = (await proxy.get("/metrics", tenant=None)).text
    assert "nobody" not in text
