"""/metrics names only tenants that have a policy; anything else is counted without a name."""

from __future__ import annotations

import trio

from .proxyharness import metric_access, start_proxy
from .rawhttp import answering, serve_on_loopback

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
