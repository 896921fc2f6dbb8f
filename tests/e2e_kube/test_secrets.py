"""Acceptance: a job whose Secret is missing says so, keeps the process up, and recovers once it exists.

Issue 13, fifth sentence. Two objects forward to a ``remote_write`` URL (a tenant
Prometheus' ``/api/v1/write`` on loopback, admitted by ``guardrails.remote_write_url_allowlist``),
one with ``bearerTokenSecret``, one with ``basicAuth.passwordSecret``, each naming a Secret that
does not exist. Both show ``Forwarding=False/SecretUnavailable`` (and ``Ready=False`` with that
reason) and a Warning ``ForwardingFailed`` Event, while the process keeps serving the
tenant's queries; creating the Secrets makes both forward (``Forwarding=True``, data at the
tenant, a Normal ``ForwardingRecovered`` Event). The process never exits.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from realservers import TenantPrometheusFactory

from .harness import (
    INTERVAL_S,
    SAFETY_DELAY_S,
    SCRAPE_S,
    STATUS_INTERVAL_S,
    Cluster,
    Replicas,
    Source,
    condition_summary,
    eventually,
    generations_agree,
    label_set,
    log_tails,
    metricaccess,
    series,
    source_series,
    start_tenants,
)

pytestmark = pytest.mark.slow

SLACK_S = 3.0


def _events(events: list[dict[str, Any]], name: str, reason: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in events if (e.get("involvedObject") or {}).get("name") == name
            and e.get("reason") == reason and e.get("type") == kind]


async def test_missing_secret_is_reported_and_forwarding_recovers_when_it_is_created(
    cluster: Cluster,
    source: Source,
    replicas: Replicas,
    http: httpx.AsyncClient,
    tenant_prometheus_factory: TenantPrometheusFactory,
) -> None:
    namespace = await cluster.create_namespace("e2e-secret")
    await source.add_namespace(namespace)
    (tenant,) = await start_tenants(tenant_prometheus_factory, 1)
    url = f"{tenant.url}/api/v1/write"
    process = replicas.add("mtproxy", replicas.config(namespaces=[namespace]))
    await replicas.start(process)

    bearer = metricaccess(namespace, "bearer", metrics=["e2e_gauge"], forward={
        "target": {"type": "remote_write"},
        "remoteWrite": {"url": url, "bearerTokenSecret": {"name": "rw-token", "key": "token"}},
    })
    basic = metricaccess(namespace, "basic", metrics=["e2e_requests_total"], forward={
        "target": {"type": "remote_write"},
        "remoteWrite": {"url": url, "basicAuth": {"username": "tenant",
                                                  "passwordSecret": {"name": "rw-basic", "key": "password"}}},
    })
    await cluster.apply(bearer, basic)

    async def both(status: str, reason: str) -> dict[str, dict[str, Any]] | None:
        documents = {name: await cluster.metricaccess(namespace, name) for name in ("bearer", "basic")}
        wanted = all(condition_summary(d).get("Forwarding", (None, None))[:2] == (status, reason)
                     for d in documents.values())
        return documents if wanted else None

    documents, failed_s = await eventually(lambda: both("False", "SecretUnavailable"), timeout_s=60,
                                           what="Forwarding=False/SecretUnavailable on both",
                                           explain=lambda: log_tails([process]))
    for name, document in documents.items():
        summary = condition_summary(document)
        assert summary["Valid"][:2] == ("True", "SpecValid"), summary
        assert summary["Ready"][:2] == ("False", "SecretUnavailable"), summary
        assert generations_agree(document), document["status"]
        message = next(c["message"] for c in document["status"]["conditions"] if c["type"] == "Forwarding")
        assert {"bearer": "rw-token", "basic": "rw-basic"}[name] in message, message

    # the tenant still queries through the proxy: forwarding failures take nothing away
    assert await series(http, process.url, "e2e_gauge", tenant=namespace) == frozenset(
        label_set(labels) for labels in source_series(namespace, counters=0))
    await trio.sleep(2 * INTERVAL_S)  # two more failing cycles
    assert process.running, f"the process exited:\n{log_tails([process])}"
    assert await series(http, tenant.url, '{__name__=~".+"}') == frozenset(), "data sent without credentials"

    created_at = trio.current_time()
    await cluster.kubectl("create", "secret", "generic", "rw-token", "-n", namespace, "--from-literal=token=s3cret")
    await cluster.kubectl("create", "secret", "generic", "rw-basic", "-n", namespace,
                          "--from-literal=password=s3cret")
    documents, _ = await eventually(lambda: both("True", "Forwarding"), timeout_s=60,
                                    what="Forwarding=True once the Secrets exist",
                                    explain=lambda: log_tails([process]))
    recovered_s = trio.current_time() - created_at
    for document in documents.values():
        assert condition_summary(document)["Ready"][:2] == ("True", "Ready")
    wanted = frozenset(label_set(labels) for labels in source_series(namespace))

    async def tenant_holds_everything() -> bool:
        return await series(http, tenant.url, '{__name__=~".+"}') == wanted

    await eventually(tenant_holds_everything, timeout_s=30, what="data at the tenant after recovery")

    assert recovered_s <= INTERVAL_S + SAFETY_DELAY_S + SCRAPE_S + STATUS_INTERVAL_S + SLACK_S, (
        f"forwarding recovered {recovered_s:.1f} s after the Secrets were created"
    )
    assert failed_s <= 2 * INTERVAL_S + STATUS_INTERVAL_S + SLACK_S, f"failure shown after {failed_s:.1f} s"
    assert process.running
    assert process.runs == 1

    # a Warning when forwarding started failing, a Normal when it recovered, on each object
    # (checked last, so that a missing Event does not hide the checks above)
    seen: list[tuple[Any, ...]] = []

    async def recorded() -> bool:
        events = await cluster.events(namespace)
        seen[:] = [((e.get("involvedObject") or {}).get("name"), e.get("type"), e.get("reason")) for e in events]
        return all(_events(events, name, reason, kind) for name in ("bearer", "basic")
                   for reason, kind in (("ForwardingFailed", "Warning"), ("ForwardingRecovered", "Normal")))

    await eventually(recorded, timeout_s=20, what="Warning ForwardingFailed and Normal ForwardingRecovered Events",
                     explain=lambda: f"events: {seen}")
