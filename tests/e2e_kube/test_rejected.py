"""Acceptance: an invalid and a guardrail-denied MetricAccess are reported, harm nobody, and recover when fixed.

Issue 13, second sentence. A semantically invalid object (an RE2-refused regex that the CRD's
schema cannot catch) gets ``Valid=False/InvalidSpec`` naming ``spec.metrics[1]`` and a Warning
Event; an object turning isolation off under the default ``guardrails.require_isolation: true``
gets ``Valid=False/PolicyDenied`` and a Warning Event; neither grants nor forwards anything,
and the valid object beside them keeps answering queries and forwarding. Editing either to
valid makes it Ready for its new generation.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import trio
from realservers import ServerProcess, TenantPrometheusFactory

from .harness import (
    INTERVAL_S,
    SAFETY_DELAY_S,
    SCRAPE_S,
    STATUS_INTERVAL_S,
    Cluster,
    Replicas,
    Source,
    condition_summary,
    conditions,
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
BAD_PATTERN = "e2e_(?!gauge).*"
"""A Perl lookahead: Go's regexp (and RE2) refuse it, and no CRD schema can tell."""


def _gauges(namespace: str) -> frozenset[frozenset[tuple[str, str]]]:
    return frozenset(label_set(labels) for labels in source_series(namespace, counters=0))


def _requests(namespace: str) -> frozenset[frozenset[tuple[str, str]]]:
    return frozenset(label_set(labels) for labels in source_series(namespace, gauges=0))


async def _newest_sample_age_s(http: httpx.AsyncClient, tenant: ServerProcess, namespace: str) -> float | None:
    status, body = await query(http, tenant.url, f'max(timestamp(e2e_gauge{{namespace="{namespace}"}}))')
    assert status == 200, body
    result = body["data"]["result"]
    return time.time() - float(result[0]["value"][1]) if result else None


def _warning_events(events: list[dict[str, Any]], name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in events if (e.get("involvedObject") or {}).get("name") == name
            and e.get("reason") == reason and e.get("type") == "Warning"]


async def test_invalid_and_denied_objects_are_reported_harm_no_one_and_recover_when_fixed(
    cluster: Cluster,
    source: Source,
    replicas: Replicas,
    http: httpx.AsyncClient,
    tenant_prometheus_factory: TenantPrometheusFactory,
) -> None:
    x = await cluster.create_namespace("e2e-x")
    y = await cluster.create_namespace("e2e-y")
    await source.add_namespace(x)
    await source.add_namespace(y)
    tenant_x, tenant_y = await start_tenants(tenant_prometheus_factory, 2)
    process = replicas.add("mtproxy", replicas.config(
        namespaces=[x, y], aliases={prometheus_alias(x): tenant_x.address, prometheus_alias(y): tenant_y.address}))
    await replicas.start(process)
    proxy = process.url

    valid = metricaccess(x, "valid", metrics=["e2e_gauge"], forward=to_prometheus())
    await cluster.apply(valid)
    await eventually(lambda: _ready(cluster, x, "valid"), timeout_s=60, what=f"{x}/valid Ready",
                     explain=lambda: log_tails([process]))

    bad_regex = metricaccess(x, "bad-regex", metrics=["e2e_requests_total", BAD_PATTERN], forward=to_prometheus())
    denied = metricaccess(y, "denied", metrics=["e2e_gauge"], isolation=False, forward=to_prometheus())
    await cluster.apply(bad_regex, denied)

    async def rejected() -> dict[str, Any] | None:
        documents = {name: await cluster.metricaccess(namespace, name)
                     for namespace, name in ((x, "bad-regex"), (y, "denied"))}
        if all("Valid" in conditions(d) for d in documents.values()):
            return documents
        return None

    documents, _ = await eventually(rejected, timeout_s=30, what="both objects judged",
                                    explain=lambda: log_tails([process]))
    invalid = conditions(documents["bad-regex"])
    assert (invalid["Valid"]["status"], invalid["Valid"]["reason"]) == ("False", "InvalidSpec")
    assert "spec.metrics[1]" in invalid["Valid"]["message"], invalid["Valid"]["message"]
    assert (invalid["Ready"]["status"], invalid["Ready"]["reason"]) == ("False", "InvalidSpec")
    refused = conditions(documents["denied"])
    assert (refused["Valid"]["status"], refused["Valid"]["reason"]) == ("False", "PolicyDenied")
    assert "guardrails.require_isolation" in refused["Valid"]["message"], refused["Valid"]["message"]
    assert (refused["Ready"]["status"], refused["Ready"]["reason"]) == ("False", "PolicyDenied")
    for document in documents.values():
        assert "Forwarding" not in conditions(document), "an object not in force forwards nothing"
        assert generations_agree(document), document["status"]
    # nothing changes for these two, so nothing more is written (counters or not)
    await trio.sleep(2 * STATUS_INTERVAL_S + 1)
    for (namespace, name), before in zip(((x, "bad-regex"), (y, "denied")), documents.values(), strict=True):
        after = await cluster.metricaccess(namespace, name)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], (
            f"{name}: status rewritten with nothing changed: {before['status']} -> {after['status']}")

    # neither disturbs the others: x's valid object still answers and forwards, nothing leaks
    assert await series(http, proxy, "e2e_gauge", tenant=x) == _gauges(x)
    assert await series(http, proxy, "e2e_requests_total", tenant=x) == frozenset(), "bad-regex granted something"
    status, body = await query(http, proxy, "e2e_gauge", tenant=y)
    assert status == 403, f"denied object granted its namespace access: {status} {body}"
    await trio.sleep(INTERVAL_S)
    age = await _newest_sample_age_s(http, tenant_x, x)
    assert age is not None and age <= INTERVAL_S + SAFETY_DELAY_S + SCRAPE_S + SLACK_S, f"x's forwarding lags {age}"
    assert await series(http, tenant_x.url, '{__name__=~".+"}') == _gauges(x)
    assert await series(http, tenant_y.url, '{__name__=~".+"}') == frozenset(), "the denied object forwarded"
    assert process.running

    # editing both to valid makes them Ready, for their new generation
    fixed_at = trio.current_time()
    await cluster.apply(
        metricaccess(x, "bad-regex", metrics=["e2e_requests_total"], forward=to_prometheus()),
        metricaccess(y, "denied", metrics=["e2e_gauge"], isolation=True, forward=to_prometheus()),
    )
    for namespace, name in ((x, "bad-regex"), (y, "denied")):
        document, _ = await eventually(lambda ns=namespace, n=name: _ready(cluster, ns, n), timeout_s=60,
                                       what=f"{namespace}/{name} Ready after the fix",
                                       explain=lambda: log_tails([process]))
        assert document["metadata"]["generation"] == 2
        assert generations_agree(document), document["status"]
    ready_s = trio.current_time() - fixed_at
    assert ready_s <= 2 * INTERVAL_S + SLACK_S, f"Ready {ready_s:.1f} s after the fix"
    assert await series(http, proxy, "e2e_requests_total", tenant=x) == _requests(x)
    assert await series(http, proxy, "e2e_gauge", tenant=y) == _gauges(y)
    await eventually(lambda: _holds(http, tenant_y, _gauges(y)), timeout_s=2 * INTERVAL_S + SLACK_S,
                     what="the fixed object forwards")
    assert process.running

    # each rejection left a Warning Event on its object (checked last, so that a missing Event
    # does not hide the checks above)
    found: dict[str, list[dict[str, Any]]] = {}

    async def warned() -> bool:
        found["bad-regex"] = _warning_events(await cluster.events(x), "bad-regex", "InvalidSpec")
        found["denied"] = _warning_events(await cluster.events(y), "denied", "PolicyDenied")
        return all(found.values())

    await eventually(warned, timeout_s=20, what="Warning Events InvalidSpec on bad-regex and PolicyDenied on denied",
                     explain=lambda: f"events in {x}: {_summary(found)}")
    assert "spec.metrics[1]" in found["bad-regex"][0].get("message", ""), found["bad-regex"][0]
    assert "guardrails.require_isolation" in found["denied"][0].get("message", ""), found["denied"][0]


def _summary(found: dict[str, list[dict[str, Any]]]) -> str:
    return str({name: [(e.get("type"), e.get("reason")) for e in events] for name, events in found.items()})


async def _ready(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    document = await cluster.metricaccess(namespace, name)
    summary = condition_summary(document)
    if summary.get("Ready", (None,))[0] == "True" and generations_agree(document):
        return document
    return None


async def _holds(http: httpx.AsyncClient, tenant: ServerProcess, wanted: frozenset[Any]) -> bool:
    return await series(http, tenant.url, '{__name__=~".+"}') == wanted
