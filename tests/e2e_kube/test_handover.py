"""Acceptance: leader handover and a total outage lose nothing and send nothing twice.

Issue 13, fourth sentence. Two replicas of ``mtproxy --leader-elect`` share one Lease (short
timings, through the hidden ``--leader-election-*`` flags: 6/4/1 s instead of 15/10/2 s) and
keep no local state: remote-write progress lives in a ConfigMap in ``monitoring``.

1. SIGKILL the leader mid-run: the other replica takes over within the lease duration plus
   one interval and backfills the gap.
2. SIGKILL every replica, wait 20 s, start one: it resumes from the ConfigMap and backfills
   the outage.

Afterwards the tenant Prometheus (out-of-order ingestion off, so a duplicate would be a
refused append) is compared with the infrastructure Prometheus sample by sample over the
whole run, as the remote-write suite does: 0 missing, 0 extra, 0 different.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import trio
from realservers import MtproxyProcess, ServerProcess, TenantPrometheusFactory
from remotewrite.e2e.promread import SampleDiff, compare_samples, metric_total, newest_timestamp_s, raw_samples

from .harness import (
    INTERVAL_S,
    LEASE_DURATION_S,
    MONITORING,
    SAFETY_DELAY_S,
    SCRAPE_S,
    Cluster,
    Replicas,
    Source,
    eventually,
    leading,
    log_tails,
    metricaccess,
    prometheus_alias,
    records,
    start_tenants,
    to_prometheus,
)

pytestmark = pytest.mark.slow

SLACK_S = 3.0
OUTAGE_S = 20
RANGE_S = 900
"""Range of the comparison's ``sel[range]``: longer than the whole run."""
CAUGHT_UP_S = INTERVAL_S + SAFETY_DELAY_S + SCRAPE_S
"""A tenant at most this far behind the source is up to date (one cycle, read behind by the safety delay)."""
_ALREADY_STORED = "resent samples refused as already stored"
_DROPPED = "receiver refused the batch, dropped"
_JOB_ANNOTATION = "observability.ethos.io/remote-write-job"


def _selector(namespace: str) -> str:
    return f'{{__name__=~"e2e_.*",namespace="{namespace}"}}'


async def _lag_s(http: httpx.AsyncClient, source: Source, tenant: ServerProcess, namespace: str) -> float | None:
    at_s = time.time()
    gauges = f'e2e_gauge{{namespace="{namespace}"}}'
    newest_source = await newest_timestamp_s(http, source.infra.url, gauges, at_s=at_s)
    newest_copy = await newest_timestamp_s(http, tenant.url, gauges, at_s=at_s)
    if newest_source is None or newest_copy is None:
        return None
    return newest_source - newest_copy


async def _caught_up(http: httpx.AsyncClient, source: Source, tenant: ServerProcess, namespace: str) -> bool:
    lag = await _lag_s(http, source, tenant, namespace)
    return lag is not None and lag <= CAUGHT_UP_S + 1


async def _converged_diff(http: httpx.AsyncClient, source: Source, tenant: ServerProcess, namespace: str) -> SampleDiff:
    """Compare until the copy equals the source (or 30 s passed); the last comparison."""
    deadline = trio.current_time() + 30
    while True:
        at_s = time.time()
        wanted = await raw_samples(http, source.infra.url, _selector(namespace), at_s=at_s, range_s=RANGE_S)
        held = await raw_samples(http, tenant.url, _selector(namespace), at_s=at_s, range_s=RANGE_S)
        diff = compare_samples(wanted, held)
        if (diff.exact and diff.source_samples > 0) or trio.current_time() > deadline:
            return diff
        await trio.sleep(1)


def _refused_appends(tenant: ServerProcess) -> int:
    # Prometheus 2.42 logs each refused remote-write append (out of order, out of bounds, duplicate)
    log = tenant.log_path.read_text(encoding="utf-8", errors="replace")
    return log.count("Out of order sample from remote write")


def _job_records(processes: list[MtproxyProcess], message: str, job: str) -> list[dict[str, Any]]:
    return [r for p in processes for r in records(p, message) if r.get("job") == job]


async def test_leader_kill_and_total_outage_leave_the_tenant_identical_to_the_source(
    cluster: Cluster,
    source: Source,
    replicas: Replicas,
    http: httpx.AsyncClient,
    tenant_prometheus_factory: TenantPrometheusFactory,
) -> None:
    namespace = await cluster.create_namespace("e2e-handover")
    job = f"{namespace}/forward"
    (tenant,) = await start_tenants(tenant_prometheus_factory, 1)
    config = replicas.config(namespaces=[namespace], aliases={prometheus_alias(namespace): tenant.address})
    first, second = replicas.add("replica-1", config), replicas.add("replica-2", config)
    both = [first, second]
    await cluster.apply(metricaccess(namespace, "forward", metrics=["e2e_.*"], forward=to_prometheus()))
    async with trio.open_nursery() as nursery:
        for process in both:
            nursery.start_soon(replicas.start, process)

    leader, _ = await eventually(
        lambda: _the_leader(both), timeout_s=LEASE_DURATION_S + 10, what="one leader",
        explain=lambda: log_tails(both))
    await eventually(lambda: _job_started(leader, job), timeout_s=10, what="the job started on the leader")
    # born after the job started, so the whole history of each series is what the copy must hold
    # (a job's first cycle reaches back one interval only)
    await source.add_namespace(namespace)
    await eventually(lambda: _caught_up(http, source, tenant, namespace), timeout_s=30,
                     what="the tenant up to date", explain=lambda: log_tails(both))
    await trio.sleep(2 * INTERVAL_S)
    bad_requests_before = await _bad_requests(http, tenant)

    # 1. the leader dies; the other one takes over and fills the gap
    follower = second if leader is first else first
    assert leading(leader) and not leading(follower), "both replicas lead"
    killed_at = trio.current_time()
    leader.kill()
    await eventually(lambda: _leads(follower), timeout_s=LEASE_DURATION_S + INTERVAL_S + 10,
                     what="the follower takes over", explain=lambda: log_tails(both))
    takeover_s = trio.current_time() - killed_at
    await eventually(lambda: _caught_up(http, source, tenant, namespace), timeout_s=30,
                     what="the tenant up to date after the handover", explain=lambda: log_tails(both))
    handover_catch_up_s = trio.current_time() - killed_at
    assert takeover_s <= LEASE_DURATION_S + INTERVAL_S + SLACK_S, f"took over after {takeover_s:.1f} s"
    await trio.sleep(INTERVAL_S)

    # 2. every replica dies; 20 s later one starts again, with nothing but the cluster's state
    follower.kill()
    await trio.sleep(OUTAGE_S)
    restarted_at = trio.current_time()
    await replicas.start(leader)
    await eventually(lambda: _leads(leader), timeout_s=LEASE_DURATION_S + 10, what="the restarted replica leads",
                     explain=lambda: log_tails(both))
    await eventually(lambda: _caught_up(http, source, tenant, namespace), timeout_s=45,
                     what="the tenant up to date after the outage", explain=lambda: log_tails(both))
    outage_catch_up_s = trio.current_time() - restarted_at
    _, out, _ = await cluster.kubectl("get", "configmaps", "-n", MONITORING, "-o", "json")
    annotations = [item["metadata"].get("annotations") or {} for item in json.loads(out)["items"]]
    assert any(a.get(_JOB_ANNOTATION) == job for a in annotations), "no ConfigMap holds the job's progress"

    # the whole run, compared sample by sample once the source stops changing
    await trio.sleep(INTERVAL_S)
    await source.remove_namespace(namespace)
    diff = await _converged_diff(http, source, tenant, namespace)
    bad_requests = await _bad_requests(http, tenant) - bad_requests_before
    already_stored = _job_records(both, _ALREADY_STORED, job)
    report = (f"takeover {takeover_s:.1f} s, caught up {handover_catch_up_s:.1f} s after the kill and "
              f"{outage_catch_up_s:.1f} s after the restart; {len(already_stored)} resends refused as already "
              f"stored; {diff.summary()}")
    print(report)
    assert diff.source_samples > 100, f"too little data to judge: {report}"
    assert diff.exact, f"the tenant differs from the source: {report}\n{log_tails(both)}"
    # The one refusal allowed: a replica that takes over resends, alone, the request its
    # predecessor got no answer to (kept in the ConfigMap), and the tenant refuses what it had
    # stored; the forwarder logs it as a resend refused as already stored, never as a drop.
    drops = [r for p in both for r in records(p, _DROPPED) if r.get("namespace") == namespace]
    assert drops == [], f"batches dropped: {drops[:3]}"
    assert _refused_appends(tenant) == len(already_stored), f"the tenant refused samples: {report}"
    assert bad_requests == len(already_stored), f"{bad_requests} writes answered 400: {report}"


async def _bad_requests(http: httpx.AsyncClient, tenant: ServerProcess) -> float:
    return await metric_total(http, tenant.url, "prometheus_http_requests_total", handler="/api/v1/write",
                              code="400")


async def _the_leader(processes: list[MtproxyProcess]) -> MtproxyProcess | None:
    await trio.lowlevel.checkpoint()
    leaders = [p for p in processes if leading(p)]
    assert len(leaders) <= 1, f"two leaders at once: {[p.name for p in leaders]}"
    return leaders[0] if leaders else None


async def _job_started(process: MtproxyProcess, job: str) -> bool:
    await trio.lowlevel.checkpoint()
    return any(r.get("job") == job for r in records(process, "remote write job started", current_run=True))


async def _leads(process: MtproxyProcess) -> bool:
    await trio.lowlevel.checkpoint()
    return leading(process)
