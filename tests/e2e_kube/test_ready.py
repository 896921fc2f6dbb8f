"""Acceptance: MetricAccess objects applied with kubectl forward, show Ready, and restrict the proxy.

Issue 13, first sentence: two objects in one namespace and one in another, each forwarding
to its namespace's tenant Prometheus with extra and relabelled labels. Within two intervals
each tenant holds the right series; ``kubectl get ma -A`` shows Ready, a series count and a
recent last write; ``kubectl wait --for=condition=Ready`` returns 0; every condition's
``observedGeneration`` equals ``metadata.generation``; and querying through the proxy as each
tenant (``X-Tenant-Namespace``, ``auth.type: none``) sees exactly what its objects grant.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from realservers import TenantPrometheusFactory

from .harness import (
    INTERVAL_S,
    SAFETY_DELAY_S,
    SCRAPE_S,
    STATUS_INTERVAL_S,
    Cluster,
    Replicas,
    Source,
    eventually,
    generations_agree,
    label_set,
    log_tails,
    metricaccess,
    prometheus_alias,
    query,
    series,
    source_series,
    start_tenants,
    to_prometheus,
)

pytestmark = pytest.mark.slow

SLACK_S = 3.0
"""Scheduling noise on a loaded two-core machine."""
_AGE = re.compile(r"^(?:(\d+)m)?(?:(\d+)s)?$")


def _age_s(text: str) -> int | None:
    """kubectl's age of a date column (``7s``, ``2m3s``) in seconds; None for anything else."""
    match = _AGE.match(text)
    if not text or match is None:
        return None
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


async def _forwarded(http: httpx.AsyncClient, proxy: str, namespace: str) -> float:
    """The samples /metrics says the jobs of ``namespace`` had acknowledged, over all destinations."""
    response = await http.get(f"{proxy}/metrics")
    assert response.status_code == 200, response.text[:256]
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "prometheus_proxy_remote_write_samples_total" and sample.labels.get("namespace") == namespace
    )


async def _stored(http: httpx.AsyncClient, tenant: str) -> float:
    """Every sample a tenant Prometheus holds (it only receives remote writes), name by name:
    count_over_time drops the name, so one query over all names would collide."""
    names = {dict(labels)["__name__"] for labels in await series(http, tenant, '{__name__=~".+"}')}
    total = 0.0
    for name in sorted(names):
        status, body = await query(http, tenant, f'sum(count_over_time({{__name__="{name}"}}[1h]))')
        assert status == 200, body
        result = body["data"]["result"]
        total += float(result[0]["value"][1]) if result else 0.0
    return total


async def _metrics_count_what_the_tenants_stored(
    http: httpx.AsyncClient, proxy: str, tenants: dict[str, str]
) -> None:
    """/metrics before and after counting a tenant's samples brackets that count (forwarding goes on)."""
    for namespace, tenant in tenants.items():
        for _attempt in range(5):
            before = await _forwarded(http, proxy, namespace)
            stored = await _stored(http, tenant)
            after = await _forwarded(http, proxy, namespace)
            if before == after:
                break  # no cycle ended in between: the three reads saw one state
        assert before > 0, f"{namespace}: /metrics shows nothing forwarded"
        assert before <= stored <= after, f"{namespace}: /metrics {before}..{after}, tenant stored {stored}"


def _objects(a: str, b: str) -> list[dict[str, Any]]:
    gauges = metricaccess(a, "gauges", metrics=["e2e_gauge"], forward=to_prometheus(
        extraLabels={"team": "a", "origin": "gauges"},
        metricRelabelings=[
            {"sourceLabels": ["series"], "regex": "(.*)", "targetLabel": "slot", "replacement": "slot-$1"},
            {"action": "labeldrop", "regex": "job"},
        ],
    ))
    requests = metricaccess(a, "requests", metrics=["e2e_requests_total"], forward=to_prometheus(
        extraLabels={"team": "a", "origin": "requests"},
        metricRelabelings=[{"sourceLabels": ["series"], "regex": "1", "action": "drop"}],
    ))
    everything = metricaccess(b, "everything", metrics=["e2e_.*"], forward=to_prometheus(
        extraLabels={"team": "b"},
        metricRelabelings=[{"sourceLabels": ["__name__"], "regex": "e2e_(.*)", "targetLabel": "__name__",
                            "replacement": "tenant_b_$1"}],
    ))
    return [gauges, requests, everything]


def _expected_at_a(a: str) -> frozenset[frozenset[tuple[str, str]]]:
    gauges = [{"__name__": "e2e_gauge", "namespace": a, "series": str(i), "slot": f"slot-{i}", "team": "a",
               "origin": "gauges"} for i in range(3)]
    requests = [{"__name__": "e2e_requests_total", "job": "src", "namespace": a, "series": "0", "team": "a",
                 "origin": "requests"}]
    return frozenset(label_set(labels) for labels in gauges + requests)


def _expected_at_b(b: str) -> frozenset[frozenset[tuple[str, str]]]:
    out = []
    for labels in source_series(b):
        renamed = {**labels, "__name__": labels["__name__"].replace("e2e_", "tenant_b_"), "team": "b"}
        out.append(label_set(renamed))
    return frozenset(out)


async def test_applied_objects_forward_relabelled_series_and_show_ready(
    cluster: Cluster,
    source: Source,
    replicas: Replicas,
    http: httpx.AsyncClient,
    tenant_prometheus_factory: TenantPrometheusFactory,
) -> None:
    a = await cluster.create_namespace("e2e-a")
    b = await cluster.create_namespace("e2e-b")
    await source.add_namespace(a)
    await source.add_namespace(b)
    tenant_a, tenant_b = await start_tenants(tenant_prometheus_factory, 2)
    process = replicas.add("mtproxy", replicas.config(
        namespaces=[a, b], aliases={prometheus_alias(a): tenant_a.address, prometheus_alias(b): tenant_b.address}))
    await replicas.start(process)

    await cluster.apply(*_objects(a, b))
    applied_at = trio.current_time()

    # each tenant Prometheus holds exactly its series, extra and relabelled labels included
    expected = {tenant_a.url: _expected_at_a(a), tenant_b.url: _expected_at_b(b)}
    held: dict[str, Any] = {}

    async def tenants_hold_their_series() -> bool:
        for url in expected:
            held[url] = await series(http, url, '{__name__=~".+"}')
        return all(held[url] == wanted for url, wanted in expected.items())

    await eventually(tenants_hold_their_series, timeout_s=60, what="tenant Prometheus servers hold their series",
                     explain=lambda: f"held {held}\nwanted {expected}\n{log_tails([process])}")
    forwarded_s = trio.current_time() - applied_at
    assert forwarded_s <= 2 * INTERVAL_S + SLACK_S, f"the series arrived {forwarded_s:.1f} s after kubectl apply"

    # kubectl get ma -A: Ready, a series count, a recent last write
    rows: dict[tuple[str, str], dict[str, str]] = {}

    async def columns_filled() -> bool:
        table = await cluster.table("metricaccesses", "-A")
        rows.clear()
        rows.update({(r["NAMESPACE"], r["NAME"]): r for r in table if r["NAMESPACE"] in (a, b)})
        return len(rows) == 3 and all(
            r["READY"] == "True" and r["SERIES"] and r["LAST WRITE"] for r in rows.values()
        )

    await eventually(columns_filled, timeout_s=30, what="kubectl get ma -A shows Ready, Series and Last Write",
                     explain=lambda: f"{rows}\n{log_tails([process])}")
    ready_s = trio.current_time() - applied_at
    assert ready_s <= 2 * INTERVAL_S + STATUS_INTERVAL_S + SLACK_S, f"Ready {ready_s:.1f} s after kubectl apply"
    series_counts = {key: int(row["SERIES"]) for key, row in rows.items()}
    # the series a job forwards, after its relabelling (requests drops series="1")
    assert series_counts == {(a, "gauges"): 3, (a, "requests"): 1, (b, "everything"): 5}, series_counts
    print(f"forwarded {forwarded_s:.1f} s and Ready {ready_s:.1f} s after kubectl apply")
    for key, row in rows.items():
        age = _age_s(row["LAST WRITE"])
        assert age is not None and age <= INTERVAL_S + SAFETY_DELAY_S + STATUS_INTERVAL_S + SCRAPE_S + SLACK_S, (
            f"{key}: last write {row['LAST WRITE']!r} is not recent"
        )

    # kubectl wait returns 0; every condition describes the current generation
    for namespace, name in rows:
        code, out, err = await cluster.kubectl("wait", "--for=condition=Ready", f"metricaccess/{name}", "-n",
                                               namespace, "--timeout=60s", check=False)
        assert code == 0, f"kubectl wait {namespace}/{name}: {code} {out} {err}"
        document = await cluster.metricaccess(namespace, name)
        assert document["metadata"]["generation"] == 1
        assert generations_agree(document), document["status"]
        assert {c["type"]: c["status"] for c in document["status"]["conditions"]} == {
            "Valid": "True", "Forwarding": "True", "Ready": "True"}

    # the proxy, as each tenant, sees exactly what its objects grant
    proxy = process.url
    assert await series(http, proxy, '{__name__=~"e2e_.*"}', tenant=a) == frozenset(
        label_set(labels) for labels in source_series(a))
    assert await series(http, proxy, "e2e_gauge", tenant=b) == frozenset(
        label_set(labels) for labels in source_series(b, counters=0))
    assert await series(http, proxy, f'e2e_gauge{{namespace="{b}"}}', tenant=a) == frozenset()
    await _metrics_count_what_the_tenants_stored(http, proxy, {a: tenant_a.url, b: tenant_b.url})
    status, body = await query(http, proxy, "e2e_gauge", tenant="e2e-nobody")
    assert status == 403, body
