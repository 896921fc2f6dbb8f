"""Every end-to-end forwarding scenario at once, against one set of real servers.

The scenarios need outages of 30 s each, so they run side by side rather than one after
another: one source Pushgateway scraped every second by one infrastructure Prometheus,
one namespace (one Pushgateway group, one MetricAccess) per scenario, and three
``mtproxy --config`` processes in files mode:

- ``main`` (MetricAccess files for team-a, team-c, team-s, team-d, team-e, team-g; no state
  dir; debug log, so every retry of a send is visible);
- ``killed`` (team-b, with ``remote_write.state_dir`` and ``batch_size: 1``), SIGKILLed in the
  middle of a cycle and started again;
- ``deadsink`` (team-f: one job to a live tenant, one to a dead port; ``max_concurrent_jobs: 1``,
  so a dead sink that held the job slot would show at once).

Destinations are the in-cluster names (``prom.team-a.svc.cluster.local:9090``,
``p-0.prom.team-c…``, ``pushgateway.team-g…``), rewritten by ``remote_write.host_aliases``
to the test servers. Each scenario writes a report; ``test_forwarding`` asserts on them,
so one scenario's failure never hides another's result. Every series is born after its
job started, so the whole history of a series at the source is what its copy must hold.
"""

from __future__ import annotations

import datetime as dt
import json
import pprint
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from realservers import MtproxyProcess, ScrapeTarget, ServerProcess, ServerSet, free_port, wait_for_result

from mtproxy.remotewrite.runner import _phase_of

from .promread import SampleDiff, compare_samples, instant_series, metric_total, newest_timestamp_s, raw_samples
from .source import SourceDriver

__all__ = [
    "DEAD_SINK",
    "INTERVAL_S",
    "OUTAGE_S",
    "SAFETY_DELAY_S",
    "SCENARIOS",
    "SCRAPE_S",
    "Campaign",
    "DeadSinkReport",
    "LosslessReport",
    "PushgatewayReport",
    "StalenessReport",
    "VictoriaMetricsReport",
    "run_campaign",
]

INTERVAL_S = 5
SAFETY_DELAY_S = 2
SCRAPE_S = 1
OUTAGE_S = 30
WARMUP_S = 10
KILLED_SERIES = 40
"""Series of the killed forwarder's namespace: with ``batch_size: 1``, one request each per cycle."""
KILL_OFFSET_S = 0.03
"""How long after a cycle's tick the forwarder is killed: after its read, among its ~40 sends."""
KILL_ATTEMPTS = 3
RANGE_S = 900
"""Range of the comparisons' ``sel[range]``: longer than the whole campaign."""
CONVERGE_TIMEOUT_S = 30
VM_AUTH = ("user", "pass")
PUSHGATEWAY_JOB = "rw-e2e"
DEAD_SINK = "deadsink"

_DROPPED = "receiver refused the batch, dropped"
_RETRYING = "send failed, retrying"
_KEPT = "destination unavailable until the deadline, batch kept for later"
_RESENDING = "resending samples of a request that got no answer"
_ALREADY_STORED = "resent samples refused as already stored"


def _selector(namespace: str) -> str:
    return f'{{__name__=~"e2e_.*",namespace="{namespace}"}}'


def _record_time(record: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(record["time"])).timestamp()


# -- reports -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LosslessReport:
    """A run with an outage, compared sample by sample with the source afterwards."""

    diffs: dict[str, SampleDiff]
    """Per tenant Prometheus (destination name)."""
    drops: list[dict[str, Any]]
    """The forwarder's "dropped" log records for these destinations."""
    resent_already_stored: list[dict[str, Any]]
    """Resends of requests that got no answer, refused because the receiver had stored them:
    each explains one drop record and one refused append (and loses nothing)."""
    resent: int
    """Resends of requests that got no answer (an outage or a kill cut one off)."""
    rejected_writes: dict[str, dict[str, float]]
    """Per tenant: its 400 answers to ``/api/v1/write`` (counted before its outage and after, as
    a restart resets them) and, from its log, the appends it refused (out of order, out of
    bounds, duplicate timestamp) and the bodies it could not decode (cut off by a kill)."""
    catch_up_s: float | None
    """From the end of the outage until every tenant was less than a cycle behind the source."""
    kept_for_later: int
    """Batches the forwarder kept because a destination was down (the outage happened)."""
    runs: int
    notes: dict[str, Any]
    """What the outage itself reported."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StalenessReport:
    removed_latency_s: float | None
    """From removing the series at the source until the tenant's instant query lost it."""
    source_latency_s: float | None
    """The same at the infrastructure Prometheus, for reference."""
    others_present: bool
    diff: SampleDiff
    drops: list[dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class VictoriaMetricsReport:
    received_series: int
    diff: SampleDiff
    good_drops: list[dict[str, Any]]
    wrong_password_drops: int
    """401 drops of the wrong-password job in the observation window."""
    wrong_password_retries: int
    """Retries (or batches kept for later) of the wrong-password job in the window; must be 0."""
    wrong_password_statuses: list[Any]
    cycles_observed: float
    """Observation window / interval."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PushgatewayReport:
    first_group: dict[str, Any] | None
    """The group holding the job's series: its labels and series (labels → value)."""
    expected: dict[tuple[tuple[str, str], ...], float]
    updated_latency_s: float | None
    """From a value change at the source until the Pushgateway held it."""
    deleted_latency_s: float | None
    """From removing the MetricAccess file until the group was gone."""
    other_job_starts: dict[str, int]
    """How often each other job of the process started (the file removal must restart none)."""
    drops: list[dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadSinkReport:
    lags_s: list[float]
    """Source newest sample minus live tenant's newest sample, polled every second."""
    diff: SampleDiff
    dead_kept_for_later: int
    """Cycles in which the dead sink's batch was kept (proof it was being tried)."""
    live_drops: list[dict[str, Any]]


# -- environment ------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _Env:
    http: httpx.AsyncClient
    infra: ServerProcess
    tenants: dict[str, ServerProcess]
    victoriametrics: ServerProcess
    target_pushgateway: ServerProcess
    main: MtproxyProcess
    killed: MtproxyProcess
    deadsink: MtproxyProcess
    driver: SourceDriver
    main_tenants_dir: Path
    dead_port: int
    killed_state_dir: Path


@dataclass(slots=True)
class Campaign:
    """The reports of every scenario, or the traceback that ended it."""

    reports: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    logs: dict[str, list[Path]] = field(default_factory=dict)

    def report(self, name: str) -> Any:
        if name in self.errors:
            logs = "\n".join(f"  {process}: {', '.join(map(str, paths))}" for process, paths in self.logs.items())
            pytest.fail(f"scenario {name} failed:\n{self.errors[name]}\nforwarder logs:\n{logs}", pytrace=False)
        return self.reports[name]


def _metricaccess(namespace: str, name: str, remote_write: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": namespace,
            "metricIsolation": True,
            "metrics": ["e2e_.*"],
            "remoteWrite": {"enabled": True, "interval": f"{INTERVAL_S}s", **remote_write},
        },
    }


def _prometheus_target(**fields: Any) -> dict[str, Any]:
    return {"target": {"type": "prometheus"}, "prometheus": {"serviceName": "prom", "servicePort": 9090, **fields}}


def _remote_write_target(url: str) -> dict[str, Any]:
    return {
        "target": {"type": "remote_write"},
        "remoteWrite": {
            "url": url,
            "basicAuth": {"username": VM_AUTH[0], "passwordSecret": {"name": "vm-credentials", "key": "password"}},
        },
    }


def _write_tenants(directory: Path, objects: dict[str, dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for filename, document in objects.items():
        (directory / filename).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _config(
    *,
    infra: ServerProcess,
    tenants_dir: Path,
    aliases: dict[str, str],
    state_dir: Path | None = None,
    secrets_file: Path | None = None,
    max_concurrent_jobs: int = 10,
    batch_size: int = 5000,
) -> dict[str, Any]:
    remote_write: dict[str, Any] = {
        "enabled": True,
        "host_aliases": aliases,
        "safety_delay": f"{SAFETY_DELAY_S}s",
        "max_concurrent_jobs": max_concurrent_jobs,
        "batch_size": batch_size,
    }
    if state_dir is not None:
        remote_write["state_dir"] = str(state_dir)
    if secrets_file is not None:
        remote_write["secrets_file"] = str(secrets_file)
    return {
        "discovery": {"static": {"targets": [infra.url]}},
        "tenants": {"source": "files", "files": {"directory": str(tenants_dir)}},
        "remote_write": remote_write,
        "auth": {"type": "none"},
        "guardrails": {"remote_write_url_allowlist": ["http://127.0.0.1:"]},
    }


def _records(process: MtproxyProcess, *messages: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in process.records()
        if r.get("msg") in messages and (namespace is None or r.get("namespace") == namespace)
    ]


def _job_records(process: MtproxyProcess, *messages: str, namespace: str) -> list[dict[str, Any]]:
    return [r for r in _records(process, *messages) if str(r.get("job", "")).startswith(f"{namespace}/")]


async def _bad_requests(env: _Env, tenant: ServerProcess) -> float:
    return await metric_total(
        env.http, tenant.url, "prometheus_http_requests_total", handler="/api/v1/write", code="400"
    )


def _rejected_writes(tenant: ServerProcess, bad_requests: float) -> dict[str, float]:
    # Prometheus logs each refused remote-write append ("Out of order sample from remote
    # write", also for out-of-bounds and duplicate samples) and each body it could not use:
    # 2.42 "Error decoding remote write request"; 3.x decompresses first in client_golang's
    # middleware ("Error reading request body" for a body cut off by a kill, "Error snappy
    # decoding …"), then "Error decoding v1 remote write request".
    log = tenant.log_path.read_text(encoding="utf-8", errors="replace")
    undecodable = sum(
        log.count(message)
        for message in (
            "Error decoding remote write request",
            "Error reading request body",
            "Error snappy decoding",
            "Error decoding v1 remote write request",
        )
    )
    return {
        "http_400": bad_requests,
        "refused_appends": float(log.count("Out of order sample from remote write")),
        "undecodable_bodies": float(undecodable),
    }


async def _converged_diff(
    env: _Env,
    namespace: str,
    copy_url: str,
    *,
    auth: tuple[str, str] | None = None,
    before_query: Callable[[], Awaitable[None]] | None = None,
    rel_tol: float = 0.0,
    stale_markers_in_copy: bool = False,
) -> SampleDiff:
    """Poll until the copy equals the source (or the timeout), and return the last comparison."""
    deadline = trio.current_time() + CONVERGE_TIMEOUT_S
    while True:
        if before_query is not None:
            await before_query()
        at_s = time.time()
        source = await raw_samples(env.http, env.infra.url, _selector(namespace), at_s=at_s, range_s=RANGE_S)
        copy = await raw_samples(env.http, copy_url, _selector(namespace), at_s=at_s, range_s=RANGE_S, auth=auth)
        diff = compare_samples(source, copy, rel_tol=rel_tol, stale_markers_in_copy=stale_markers_in_copy)
        if (diff.exact and diff.source_samples > 0) or trio.current_time() > deadline:
            return diff
        await trio.sleep(1)


async def _lag_s(env: _Env, namespace: str, tenant: ServerProcess) -> float | None:
    at_s = time.time()
    gauges = f'e2e_gauge{{namespace="{namespace}"}}'
    source = await newest_timestamp_s(env.http, env.infra.url, gauges, at_s=at_s)
    copy = await newest_timestamp_s(env.http, tenant.url, gauges, at_s=at_s)
    if source is None or copy is None:
        return None
    return source - copy


async def _wait_caught_up(env: _Env, namespace: str, tenants: list[ServerProcess], *, timeout_s: float = 60) -> float:
    """Seconds until every tenant is less than a cycle (plus the safety delay) behind the source."""
    started = trio.current_time()
    with trio.fail_after(timeout_s):
        while True:
            lags = [await _lag_s(env, namespace, tenant) for tenant in tenants]
            if all(lag is not None and lag <= INTERVAL_S + SAFETY_DELAY_S + 1 for lag in lags):
                return trio.current_time() - started
            await trio.sleep(0.5)


async def _lossless(
    env: _Env,
    *,
    namespace: str,
    process: MtproxyProcess,
    tenants: dict[str, ServerProcess],
    outage: Callable[[], Awaitable[dict[str, Any]]],
) -> LosslessReport:
    await trio.sleep(WARMUP_S)
    bad_requests = {name: await _bad_requests(env, tenant) for name, tenant in tenants.items()}
    notes = await outage()
    catch_up_s = await _wait_caught_up(env, namespace, list(tenants.values()))
    await trio.sleep(INTERVAL_S)
    await env.driver.remove_namespace(namespace)
    diffs = {name: await _converged_diff(env, namespace, tenant.url) for name, tenant in tenants.items()}
    rejected = {
        name: _rejected_writes(tenant, bad_requests[name] + await _bad_requests(env, tenant))
        for name, tenant in tenants.items()
    }
    return LosslessReport(
        diffs=diffs,
        drops=_records(process, _DROPPED, namespace=namespace),
        resent_already_stored=_job_records(process, _ALREADY_STORED, namespace=namespace),
        resent=len(_job_records(process, _RESENDING, namespace=namespace)),
        rejected_writes=rejected,
        catch_up_s=catch_up_s,
        kept_for_later=len(_records(process, _KEPT, namespace=namespace)),
        runs=process.runs,
        notes=notes,
    )


# -- scenarios -------------------------------------------------------------------------------------


async def tenant_outage(env: _Env) -> LosslessReport:
    """team-a: the tenant Prometheus is stopped for 30 s mid-run, then started again."""
    tenant = env.tenants["a"]

    async def outage() -> dict[str, Any]:
        await tenant.stop_async()
        await trio.sleep(OUTAGE_S)
        await tenant.start_async()
        return {}

    return await _lossless(env, namespace="team-a", process=env.main, tenants={"a": tenant}, outage=outage)


def _job_started_at(process: MtproxyProcess, job: str) -> float:
    """Wall-clock time the job last started: its cycles tick at this time plus multiples of the interval."""
    starts = [r for r in _records(process, "remote write job started") if r.get("job") == job]
    return _record_time(starts[-1])


async def forwarder_killed(env: _Env) -> LosslessReport:
    """team-b: the mtproxy process is SIGKILLed mid-cycle and started again on its state dir.

    With ``batch_size: 1`` a cycle sends each of its ~40 series in a request of its own
    (some tens of milliseconds in all), journaling each one before and after. The kill is
    aimed into that stretch, so the restarted process must resume from the journal, not
    only from the snapshot written at the window's end, and settle the request the kill
    cut off (stored or not); a kill that missed the stretch (no journal left) is retried.
    """
    job = "team-b/forward"
    journal = env.killed_state_dir / "team-b__forward.journal"

    async def outage() -> dict[str, Any]:
        journal_entries = 0
        for attempt in range(1, KILL_ATTEMPTS + 1):
            # cycles after the first fall at the job's own phase within the interval (runner._phase_of)
            phase = _job_started_at(env.killed, job) + INTERVAL_S * (_phase_of(job) - 0.5)
            ticks = (time.time() - phase) // INTERVAL_S + 1
            await trio.sleep(max(0.0, phase + ticks * INTERVAL_S + KILL_OFFSET_S - time.time()))
            env.killed.kill()
            journal_entries = len(journal.read_text().splitlines()) if journal.exists() else 0
            if journal_entries or attempt == KILL_ATTEMPTS:
                break
            await env.killed.start_async(jobs=[job])
        await trio.sleep(3 * INTERVAL_S)
        await env.killed.start_async(jobs=[job])
        return {"journal_entries_at_kill": journal_entries, "kill_attempts": attempt}

    return await _lossless(env, namespace="team-b", process=env.killed, tenants={"b": env.tenants["b"]}, outage=outage)


async def replica_outage(env: _Env) -> LosslessReport:
    """team-c: two tenant replicas; p-1 is stopped for 30 s."""
    replicas = {"p-0": env.tenants["c0"], "p-1": env.tenants["c1"]}

    async def outage() -> dict[str, Any]:
        await replicas["p-1"].stop_async()
        await trio.sleep(OUTAGE_S)
        await replicas["p-1"].start_async()
        return {}

    return await _lossless(env, namespace="team-c", process=env.main, tenants=replicas, outage=outage)


async def staleness(env: _Env) -> StalenessReport:
    """team-s: a series removed at the source goes stale at the tenant within one cycle."""
    tenant = env.tenants["s"]
    gone = '{__name__="e2e_gauge",namespace="team-s",series="0"}'
    with trio.fail_after(30):
        while not await instant_series(env.http, tenant.url, gone, at_s=time.time()):
            await trio.sleep(0.5)
    await trio.sleep(WARMUP_S)
    env.driver.remove_series("team-s", "e2e_gauge", "0")
    removed_at = trio.current_time()
    source_latency: float | None = None
    latency: float | None = None
    others_present = False
    with trio.move_on_after(60):
        while latency is None:
            now_s = time.time()
            if source_latency is None and not await instant_series(env.http, env.infra.url, gone, at_s=now_s):
                source_latency = trio.current_time() - removed_at
            if not await instant_series(env.http, tenant.url, gone, at_s=now_s):
                latency = trio.current_time() - removed_at
                others = await instant_series(env.http, tenant.url, _selector("team-s"), at_s=now_s)
                others_present = len(others) == len(env.driver.values("team-s"))
                break
            await trio.sleep(0.2)
    await env.driver.remove_namespace("team-s")
    diff = await _converged_diff(env, "team-s", tenant.url)
    return StalenessReport(
        removed_latency_s=latency,
        source_latency_s=source_latency,
        others_present=others_present,
        diff=diff,
        drops=_records(env.main, _DROPPED, namespace="team-s"),
    )


async def victoriametrics(env: _Env) -> VictoriaMetricsReport:
    """team-d writes to VictoriaMetrics with the right password, team-e with a wrong one."""
    vm = env.victoriametrics
    await trio.sleep(WARMUP_S)  # the instant query below is at a fixed time: let data arrive first
    found = await trio.to_thread.run_sync(
        lambda: wait_for_result(vm, _selector("team-d"), at_s=time.time(), auth=VM_AUTH, timeout_s=30)
    )
    window_start = time.time()
    await trio.sleep(6 * INTERVAL_S)
    window_end = time.time()

    def in_window(record: dict[str, Any]) -> bool:
        return window_start <= _record_time(record) < window_end

    drops = [r for r in _records(env.main, _DROPPED, namespace="team-e") if in_window(r)]
    retries = [r for r in _records(env.main, _RETRYING, _KEPT, namespace="team-e") if in_window(r)]
    await env.driver.remove_namespace("team-d")
    await env.driver.remove_namespace("team-e")

    async def flush() -> None:
        response = await env.http.get(f"{vm.url}/internal/force_flush", auth=VM_AUTH)
        response.raise_for_status()

    # VictoriaMetrics keeps about 12 significant digits, and returns staleness markers as NaN samples
    diff = await _converged_diff(
        env, "team-d", vm.url, auth=VM_AUTH, before_query=flush, rel_tol=1e-11, stale_markers_in_copy=True
    )
    return VictoriaMetricsReport(
        received_series=len(found),
        diff=diff,
        good_drops=_records(env.main, _DROPPED, namespace="team-d"),
        wrong_password_drops=len(drops),
        wrong_password_retries=len(retries),
        wrong_password_statuses=sorted({r.get("status") for r in drops}, key=str),
        cycles_observed=(window_end - window_start) / INTERVAL_S,
    )


async def _pushgateway_groups(env: _Env) -> list[dict[str, Any]]:
    response = await env.http.get(f"{env.target_pushgateway.url}/api/v1/metrics")
    response.raise_for_status()
    groups: list[dict[str, Any]] = response.json()["data"]
    return groups


def _group_series(group: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for name, family in group.items():
        if not isinstance(family, dict) or "metrics" not in family or not name.startswith("e2e_"):
            continue
        for metric in family["metrics"]:
            out[tuple(sorted({"__name__": name, **metric["labels"]}.items()))] = float(metric["value"])
    return out


def _expected_pushed(env: _Env) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(
            sorted(
                {
                    "__name__": name,
                    "series": series,
                    "job": PUSHGATEWAY_JOB,
                    "namespace": "team-g",
                    "instance": "",
                }.items()
            )
        ): value
        for (name, series), value in env.driver.values("team-g").items()
    }


async def _wait_pushed(
    env: _Env, expected: dict[tuple[tuple[str, str], ...], float], *, timeout_s: float
) -> dict[str, Any] | None:
    with trio.move_on_after(timeout_s):
        while True:
            for group in await _pushgateway_groups(env):
                if (
                    group.get("labels") == {"job": PUSHGATEWAY_JOB, "namespace": "team-g"}
                    and _group_series(group) == expected
                ):
                    return group
            await trio.sleep(0.25)
    return None


async def pushgateway(env: _Env) -> PushgatewayReport:
    """team-g: newest values PUT to the Pushgateway group; the group goes with the MetricAccess file."""
    env.driver.freeze("team-g")
    expected = _expected_pushed(env)
    first = await _wait_pushed(env, expected, timeout_s=30)
    env.driver.set_value("team-g", "e2e_gauge", "0", 4242.125)
    changed_at = trio.current_time()
    updated = await _wait_pushed(env, _expected_pushed(env), timeout_s=30)
    updated_latency = trio.current_time() - changed_at if updated is not None else None
    (env.main_tenants_dir / "team-g.yaml").unlink()
    removed_at = trio.current_time()
    deleted_latency: float | None = None
    with trio.move_on_after(30):
        while any(g.get("labels", {}).get("namespace") == "team-g" for g in await _pushgateway_groups(env)):
            await trio.sleep(0.1)
        deleted_latency = trio.current_time() - removed_at
    starts: dict[str, int] = {}
    for record in _records(env.main, "remote write job started"):
        starts[str(record.get("job"))] = starts.get(str(record.get("job")), 0) + 1
    starts.pop("team-g/forward", None)
    first_group = None
    if first is not None:
        first_group = {"labels": first["labels"], "series": _group_series(first)}
    return PushgatewayReport(
        first_group=first_group,
        expected=expected,
        updated_latency_s=updated_latency,
        deleted_latency_s=deleted_latency,
        other_job_starts=starts,
        drops=_records(env.main, _DROPPED, namespace="team-g"),
    )


async def dead_sink(env: _Env) -> DeadSinkReport:
    """team-f: one job writes to a live tenant, another to a dead port, one job slot between them."""
    tenant = env.tenants["f"]
    with trio.fail_after(30):
        while await _lag_s(env, "team-f", tenant) is None:
            await trio.sleep(0.5)
    lags: list[float] = []
    end = trio.current_time() + OUTAGE_S + WARMUP_S
    while trio.current_time() < end:
        lag = await _lag_s(env, "team-f", tenant)
        lags.append(float("inf") if lag is None else lag)
        await trio.sleep(1)
    await env.driver.remove_namespace("team-f")
    diff = await _converged_diff(env, "team-f", tenant.url)
    kept = [
        r
        for r in _records(env.deadsink, _KEPT, namespace="team-f")
        if str(r.get("destination", "")).endswith(f":{env.dead_port}/api/v1/write")
    ]
    live = [r for r in _records(env.deadsink, _DROPPED) if "prom.team-f" in str(r.get("destination", ""))]
    return DeadSinkReport(lags_s=lags, diff=diff, dead_kept_for_later=len(kept), live_drops=live)


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectedMetricsReport:
    """``/collected-metrics`` of the main forwarder as team-d (whose job delivers) and team-z (no job) see it."""

    own: str
    other: str


async def collected_metrics(env: _Env) -> CollectedMetricsReport:
    """team-d's job writes to VictoriaMetrics; once it has delivered, its page lists the series."""
    url = f"{env.main.url}/collected-metrics"
    with trio.fail_after(60):
        while True:
            own = await env.http.get(url, headers={"X-Tenant-Namespace": "team-d"})
            own.raise_for_status()
            if "# Job: team-d/forward (0 metrics)" not in own.text and "# Job: team-d/" in own.text:
                break
            await trio.sleep(1)
    other = await env.http.get(url, headers={"X-Tenant-Namespace": "team-z"})
    other.raise_for_status()
    return CollectedMetricsReport(own=own.text, other=other.text)


SCENARIOS: dict[str, Callable[[_Env], Awaitable[Any]]] = {
    "collected-metrics": collected_metrics,
    "tenant-outage": tenant_outage,
    "forwarder-killed": forwarder_killed,
    "replica-outage": replica_outage,
    "staleness": staleness,
    "victoriametrics": victoriametrics,
    "pushgateway": pushgateway,
    DEAD_SINK: dead_sink,
}


# -- the run --------------------------------------------------------------------------------------


async def _start_all(starters: list[Callable[[], Any]]) -> list[Any]:
    results: list[Any] = [None] * len(starters)

    async def one(index: int) -> None:
        results[index] = await trio.to_thread.run_sync(starters[index])

    async with trio.open_nursery() as nursery:
        for index in range(len(starters)):
            nursery.start_soon(one, index)
    return results


async def _campaign(servers: ServerSet, workdir: Path, campaign: Campaign) -> None:
    source_pg = await trio.to_thread.run_sync(servers.pushgateway)
    tenant_names = ["a", "b", "c0", "c1", "s", "f"]
    started = await _start_all(
        [
            lambda: servers.infrastructure_prometheus(
                targets=[
                    ScrapeTarget(
                        job="pushgateway", addresses=(source_pg.address,), interval_s=SCRAPE_S, honor_labels=True
                    )
                ]
            ),
            lambda: servers.victoriametrics(auth=VM_AUTH),
            servers.pushgateway,
            *[lambda: servers.tenant_prometheus(out_of_order_time_window_s=None) for _ in tenant_names],
        ]
    )
    infra, vm, target_pg = started[:3]
    tenants = dict(zip(tenant_names, started[3:], strict=True))
    dead_port = free_port()

    main_dir = workdir / "main-tenants"
    _write_tenants(
        main_dir,
        {
            "team-a.yaml": _metricaccess("team-a", "forward", _prometheus_target()),
            "team-c.yaml": _metricaccess("team-c", "forward", _prometheus_target(replicas=2, statefulSetName="p")),
            "team-s.yaml": _metricaccess("team-s", "forward", _prometheus_target()),
            "team-d.yaml": _metricaccess("team-d", "forward", _remote_write_target(f"{vm.url}/api/v1/write")),
            "team-e.yaml": _metricaccess("team-e", "forward", _remote_write_target(f"{vm.url}/api/v1/write")),
            "team-g.yaml": _metricaccess(
                "team-g",
                "forward",
                {
                    "target": {"type": "pushgateway"},
                    "pushgateway": {"serviceName": "pushgateway", "servicePort": 9091, "jobName": PUSHGATEWAY_JOB},
                },
            ),
        },
    )
    secrets_file = workdir / "secrets.yaml"
    secrets_file.write_text(
        json.dumps(
            {
                "team-d": {"vm-credentials": {"password": VM_AUTH[1]}},
                "team-e": {"vm-credentials": {"password": "wrong"}},
            }
        ),
        encoding="utf-8",
    )
    main = MtproxyProcess(
        "mtproxy-main",
        workdir / "main",
        _config(
            infra=infra,
            tenants_dir=main_dir,
            secrets_file=secrets_file,
            aliases={
                "prom.team-a.svc.cluster.local": tenants["a"].address,
                "p-0.prom.team-c.svc.cluster.local": tenants["c0"].address,
                "p-1.prom.team-c.svc.cluster.local": tenants["c1"].address,
                "prom.team-s.svc.cluster.local": tenants["s"].address,
                "pushgateway.team-g.svc.cluster.local": target_pg.address,
            },
        ),
        log_level="debug",
    )
    killed_dir = workdir / "killed-tenants"
    _write_tenants(killed_dir, {"team-b.yaml": _metricaccess("team-b", "forward", _prometheus_target())})
    killed = MtproxyProcess(
        "mtproxy-killed",
        workdir / "killed",
        _config(
            infra=infra,
            tenants_dir=killed_dir,
            state_dir=workdir / "killed" / "state",
            batch_size=1,
            aliases={"prom.team-b.svc.cluster.local": tenants["b"].address},
        ),
    )
    dead_dir = workdir / "deadsink-tenants"
    _write_tenants(
        dead_dir,
        {
            "team-f-live.yaml": _metricaccess("team-f", "live", _prometheus_target()),
            "team-f-dead.yaml": _metricaccess(
                "team-f",
                "dead",
                {
                    "target": {"type": "remote_write"},
                    "remoteWrite": {"url": f"http://127.0.0.1:{dead_port}/api/v1/write"},
                },
            ),
        },
    )
    deadsink = MtproxyProcess(
        "mtproxy-deadsink",
        workdir / "deadsink",
        _config(
            infra=infra,
            tenants_dir=dead_dir,
            aliases={"prom.team-f.svc.cluster.local": tenants["f"].address},
            max_concurrent_jobs=1,
        ),
    )
    try:
        await _start_all(
            [
                lambda: main.start(
                    jobs=[f"{ns}/forward" for ns in ("team-a", "team-c", "team-s", "team-d", "team-e", "team-g")]
                ),
                lambda: killed.start(jobs=["team-b/forward"]),
                lambda: deadsink.start(jobs=["team-f/live", "team-f/dead"]),
            ]
        )
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http, trio.open_nursery() as nursery:
            driver = SourceDriver(http, source_pg.url)
            for namespace in ("team-a", "team-c", "team-s", "team-d", "team-e", "team-f", "team-g"):
                driver.add_namespace(namespace)
            driver.add_namespace("team-b", gauges=KILLED_SERIES)
            await nursery.start(driver.run)
            env = _Env(
                http=http,
                infra=infra,
                tenants=tenants,
                victoriametrics=vm,
                target_pushgateway=target_pg,
                main=main,
                killed=killed,
                deadsink=deadsink,
                driver=driver,
                main_tenants_dir=main_dir,
                dead_port=dead_port,
                killed_state_dir=workdir / "killed" / "state",
            )

            async def run_one(name: str, scenario: Callable[[_Env], Awaitable[Any]]) -> None:
                try:
                    campaign.reports[name] = await scenario(env)
                except Exception:
                    campaign.errors[name] = traceback.format_exc()

            async with trio.open_nursery() as scenarios:
                for name, scenario in SCENARIOS.items():
                    scenarios.start_soon(run_one, name, scenario)
            if driver.errors:
                campaign.errors["source"] = "\n".join(driver.errors[:20])
            nursery.cancel_scope.cancel()
    finally:
        for process in (main, killed, deadsink):
            process.stop()
        campaign.logs = {p.name: p.log_paths() for p in (main, killed, deadsink)}


def run_campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    """Start the servers, run every scenario concurrently, stop everything; the reports."""
    servers = ServerSet(tmp_path_factory)
    campaign = Campaign()
    workdir = tmp_path_factory.mktemp("mtproxy-e2e")
    try:
        trio.run(_campaign, servers, workdir, campaign)
    finally:
        servers.stop_all()
        # for reading after a failure, next to the servers' and the forwarders' logs
        (workdir / "reports.txt").write_text(
            pprint.pformat({"reports": campaign.reports, "errors": campaign.errors}, width=160), encoding="utf-8"
        )
    return campaign
