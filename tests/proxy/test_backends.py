"""What counts against a backend's health: its failures, never the failures of a tenant's query.

Loopback servers answer exactly as scripted: Prometheus's 503 for a query that timed out,
a 503 of an overloaded server, a corrupt gzip body, and a healthy 200.
"""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
import trio

from mtproxy.proxy.backends import BackendPool
from mtproxy.proxy.errors import BackendError
from mtproxy.proxy.outcomes import BackendRequest

from .rawhttp import answering, serve_on_loopback

QUERY = BackendRequest(method="GET", path="/api/v1/query", params=(("query", "up"),))
OK_BODY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
TIMEOUT_BODY = json.dumps(
    {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
).encode()


@pytest.fixture
async def http() -> httpx.AsyncBaseTransport:
    async with httpx.AsyncHTTPTransport() as transport:
        yield transport


async def test_a_query_timeout_is_answered_as_it_is_and_counts_against_no_backend(
    nursery: trio.Nursery, http: httpx.AsyncBaseTransport
) -> None:
    timing_out = await serve_on_loopback(nursery, answering(503, TIMEOUT_BODY))
    healthy = await serve_on_loopback(nursery, answering(200, OK_BODY))
    pool = BackendPool(http, unhealthy_threshold=2)
    pool.set_targets([timing_out, healthy])
    statuses = [(await pool.send(QUERY)).status for _ in range(6)]
    assert sorted(statuses) == [200, 200, 200, 503, 503, 503]  # round-robin, no retry of the heavy query
    assert set(pool.healthy_targets()) == {timing_out, healthy}
    assert pool.statistics().failovers == 0


async def test_an_overloaded_backend_fails_over_and_turns_unhealthy(
    nursery: trio.Nursery, http: httpx.AsyncBaseTransport
) -> None:
    overloaded = await serve_on_loopback(nursery, answering(503, b"Service Unavailable"))
    healthy = await serve_on_loopback(nursery, answering(200, OK_BODY))
    pool = BackendPool(http, unhealthy_threshold=2)
    pool.set_targets([overloaded, healthy])
    statuses = [(await pool.send(QUERY)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 200]
    assert pool.healthy_targets() == (healthy,)


async def test_an_unreadable_answer_is_a_named_502_not_a_health_failure(
    nursery: trio.Nursery, http: httpx.AsyncBaseTransport
) -> None:
    corrupt = await serve_on_loopback(nursery, answering(200, gzip.compress(OK_BODY)[:-12], encoding="gzip"))
    pool = BackendPool(http, unhealthy_threshold=1)
    pool.set_targets([corrupt])
    for _ in range(3):
        with pytest.raises(BackendError, match="truncated gzip"):
            await pool.send(QUERY, headers={"Accept-Encoding": "gzip"})
    assert pool.healthy_targets() == (corrupt,)
