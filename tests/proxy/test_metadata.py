"""/api/v1/metadata answers only for names the tenant has series of, with text from its own targets.

A real Prometheus scrapes two exporters (with ``honor_labels``, so the series keep their
``namespace``): team-a's and team-b's. Both expose ``shared_queue_depth`` with different
HELP texts; team-b also exposes a gauge ``cache_hits``, and team-a a ``cache_hits_total``.
Prometheus' own ``/api/v1/metadata`` merges every target, so it would show team-a
team-b's text and, with the old family-name guessing (``cache_hits_total`` → ``cache_hits``),
a family team-a has no series of.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from realservers import InfrastructurePrometheusFactory, ScrapeTarget, ServerProcess

from .e2e.servers import StaticExporter, query_direct
from .proxyharness import metric_access, start_proxy

pytestmark = pytest.mark.slow

TEAM_A_TEXT = """\
# TYPE shared_queue_depth gauge
# HELP shared_queue_depth Jobs waiting, as team-a describes them.
shared_queue_depth{namespace="team-a"} 2
# TYPE cache_hits_total unknown
# HELP cache_hits_total Cache hits of team-a's app.
cache_hits_total{namespace="team-a"} 7
# EOF
"""
TEAM_B_TEXT = """\
# TYPE shared_queue_depth gauge
# HELP shared_queue_depth Team-b's private wording.
shared_queue_depth{namespace="team-b"} 4
# TYPE cache_hits gauge
# HELP cache_hits A gauge only team-b has.
cache_hits{namespace="team-b"} 1
# EOF
"""
ACCESS = [
    metric_access("team-a", "app", ["shared_queue_depth", "cache_hits_total"]),
    metric_access("team-b", "app", ["shared_queue_depth", "cache_hits"]),
]


@pytest.fixture
def scraping_prometheus(infra_prometheus_factory: InfrastructurePrometheusFactory) -> Iterator[ServerProcess]:
    exporters = [StaticExporter(TEAM_A_TEXT), StaticExporter(TEAM_B_TEXT)]
    targets = [
        ScrapeTarget(job=f"app-{team}", addresses=(exporter.address,), interval_s=1.0, honor_labels=True)
        for team, exporter in zip(("a", "b"), exporters, strict=True)
    ]
    server = infra_prometheus_factory(targets=targets)
    deadline = time.monotonic() + 30
    while len({e["target"]["job"] for e in query_direct(server.url, "/api/v1/targets/metadata")["data"]}) < 2:
        assert time.monotonic() < deadline, "the exporters were not scraped"
        time.sleep(0.2)
    while not query_direct(server.url, "/api/v1/query", {"query": "shared_queue_depth"})["data"]["result"]:
        assert time.monotonic() < deadline, "no samples"
        time.sleep(0.2)
    yield server
    for exporter in exporters:
        exporter.stop()


def _data(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_metadata_shows_only_own_names_and_own_help(
    nursery: trio.Nursery, scraping_prometheus: ServerProcess
) -> None:
    proxy = await start_proxy(nursery, scraping_prometheus.url, access=ACCESS)

    assert _data(await proxy.get("/api/v1/metadata", tenant="team-a")) == {
        "cache_hits_total": [{"type": "unknown", "help": "Cache hits of team-a's app.", "unit": ""}],
        "shared_queue_depth": [{"type": "gauge", "help": "Jobs waiting, as team-a describes them.", "unit": ""}],
    }
    assert _data(await proxy.get("/api/v1/metadata", tenant="team-b")) == {
        "cache_hits": [{"type": "gauge", "help": "A gauge only team-b has.", "unit": ""}],
        "shared_queue_depth": [{"type": "gauge", "help": "Team-b's private wording.", "unit": ""}],
    }


@pytest.mark.parametrize("guess", ["cache_hits", "cache_hit", "cache_hits_total_total", "shared_queue"])
async def test_metadata_of_a_guessed_name_is_empty(
    nursery: trio.Nursery, scraping_prometheus: ServerProcess, guess: str
) -> None:
    proxy = await start_proxy(nursery, scraping_prometheus.url, access=ACCESS)
    assert _data(await proxy.get("/api/v1/metadata", {"metric": guess}, tenant="team-a")) == {}


async def test_metadata_of_one_visible_name_and_limit(
    nursery: trio.Nursery, scraping_prometheus: ServerProcess
) -> None:
    proxy = await start_proxy(nursery, scraping_prometheus.url, access=ACCESS)
    one = _data(await proxy.get("/api/v1/metadata", {"metric": "shared_queue_depth"}, tenant="team-a"))
    assert list(one) == ["shared_queue_depth"] and len(one["shared_queue_depth"]) == 1
    assert list(_data(await proxy.get("/api/v1/metadata", {"limit": "1"}, tenant="team-a"))) == ["cache_hits_total"]
