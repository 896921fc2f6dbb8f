"""A client that leaves cancels its backend call: the backend sees the proxy hang up, the slot is free.

The backend here reads the request and then only waits for the proxy to close the
connection, so the one way the test ends in time is the proxy cancelling the call. A
second request through the same proxy, with ``max_concurrent_requests: 1``, shows the
concurrency slot came back.
"""

from __future__ import annotations

import trio

from mtproxy.api import ProxyConfig

from .proxyharness import metric_access, start_proxy
from .rawhttp import read_request, serve_on_loopback

ACCESS = [metric_access("team-a", "app", ["up"])]
QUERY = b"GET /api/v1/query?query=up HTTP/1.1\r\nHost: proxy\r\nX-Tenant-Namespace: team-a\r\n\r\n"
OK = b'{"status":"success","data":{"resultType":"vector","result":[]}}'


class HangingBackend:
    """Holds the first request until the proxy closes the connection; answers later ones at once."""

    def __init__(self) -> None:
        self.request_seen = trio.Event()
        self.proxy_hung_up = trio.Event()
        self.requests = 0

    async def __call__(self, stream: trio.SocketStream) -> None:
        while await read_request(stream) is not None:
            self.requests += 1
            if self.requests > 1:
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(OK)}\r\n\r\n"
                await stream.send_all(head.encode() + OK)
                continue
            self.request_seen.set()
            try:
                while await stream.receive_some(1024):
                    pass
            except trio.BrokenResourceError:
                pass
            self.proxy_hung_up.set()
            return


async def test_a_client_that_leaves_cancels_the_backend_call_and_frees_its_slot(nursery: trio.Nursery) -> None:
    backend = HangingBackend()
    proxy = await start_proxy(
        nursery,
        await serve_on_loopback(nursery, backend),
        access=ACCESS,
        config=ProxyConfig(enable_metrics=True, max_concurrent_requests=1, queue_timeout="1s"),
    )

    client = await trio.open_tcp_stream(proxy.host, proxy.port)
    await client.send_all(QUERY)
    with trio.fail_after(5):
        await backend.request_seen.wait()
    await client.aclose()
    with trio.fail_after(5):
        await backend.proxy_hung_up.wait()

    answer = await proxy.get("/api/v1/query", {"query": "up"}, tenant="team-a")
    assert answer.status_code == 200  # the one slot is free again
    assert backend.requests == 2
    gone = proxy.metrics.registry.get_sample_value(
        "prometheus_proxy_requests_total", {"method": "GET", "path": "/api/v1/query", "status": "499"}
    )
    assert gone == 1.0
    in_flight = proxy.metrics.registry.get_sample_value("prometheus_proxy_backend_requests_in_flight")
    assert in_flight == 0.0
