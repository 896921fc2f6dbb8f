"""Proxy benchmark: a 1,000-series query through the proxy against the same query sent directly.

Figures, each at concurrency 1 and 16 (same query, same client, same run, 127.0.0.1):

1. Prometheus 2.42 direct, through ``mtproxy`` (one process, ``auth.type: none`` with
   ``X-Tenant-Namespace``) and through prom-label-proxy (the Go peer, built by ``make
   testbin``, enforcing ``namespace`` from the same header): median and p99 latency,
   throughput, and their ratios, mtproxy/prom-label-proxy included. The data is a synthetic
   set of 1,500 series (1,000 in ``team-a``, 500 in ``team-b``) back-filled with promtool;
   the proxied query is ``bench_requests_total``, which both proxies turn into
   ``bench_requests_total{namespace="team-a"}``, the query sent directly. All return the
   same 1,000 series. Without a prom-label-proxy build, its rows are left out (and said so).
2. VictoriaMetrics (the Debian package) direct, through vmauth enforcing the tenant with a
   per-user ``url_prefix`` carrying ``extra_label=namespace=team-a``, and through ``mtproxy``
   with ``auth.type: apikey`` (a credential check, as vmauth's): the proxy/vmauth ratio.

Also printed: the CPU time the server processes spent per request (from ``/proc/<pid>/stat``),
the backend's share of it, and the client's own, so a ratio can be read against who was
busy. The proxy asks backends for plain answers and gzips itself (see
``mtproxy.proxy.encoding``), so a backend spends less CPU per proxied answer than per
direct one; the backend column shows by how much. Goals, printed for
reference (issue "Proxy service"): median ratio <= 1.3 at concurrency 1; throughput >= 60 %
of direct at concurrency 16, one proxy process. Nothing is asserted; the script exits 0.

``--profile FILE`` runs the proxy under cProfile for the Prometheus figures and prints where
its time went. ``--quick`` sends a third of the requests. ``--json PATH`` also writes the
figures (``bench/figures.py``) for ``bench/run_all.py``.

``--series-sweep`` measures, instead, how latency grows with the size of the answer: the
instant query ``bench_sweep_<n>`` returns n series (10, 100, 1,000, 5,000; another n/2
series of ``team-b`` are stored and enforced away) through each of direct Prometheus,
mtproxy and prom-label-proxy in front of it, direct VictoriaMetrics, vmauth and mtproxy in
front of that, at concurrency 1. Each size is measured in rounds alternating between the
targets, each target at most ``SWEEP_REQUESTS`` requests or ``SWEEP_BUDGET_S`` seconds
per size, so the mode is bounded in time (about 2 minutes, under a minute with
``--quick``). Printed per size and target: median and p99 latency, answer size, and the
proxy's own CPU per request (its process' CPU time, the backend's excluded).

The module is one unit of about 600 lines because both modes share the servers, the targets
and the measurement, which must stay the same for their figures to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "proxy" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))

from figures import Axis, Goal, Report, Sweep  # noqa: E402
from realservers import (  # noqa: E402
    Dataset,
    MetricType,
    MtproxyProcess,
    Sample,
    Series,
    ServerProcess,
    start_prometheus_with_data,
)
from realservers.promlabelproxy import prom_label_proxy  # noqa: E402
from realservers.testbin import Program, locate  # noqa: E402
from realservers.victoriametrics import victoriametrics, vmauth, wait_for_result  # noqa: E402
from service import service_config  # noqa: E402
from tenancy import write_tenant_files  # noqa: E402

TEAM_A_SERIES = 1_000
TEAM_B_SERIES = 500
SAMPLES = 21
STEP_S = 15
WARMUP = 10
REQUESTS = {1: 300, 16: 960}
QUICK_DIVISOR = 3
ROUNDS = 6
SWEEP_SIZES = (10, 100, 1_000, 5_000)
SWEEP_REQUESTS = 300
SWEEP_BUDGET_S = 5.0
SWEEP_ROUNDS = 3
GOAL_MEDIAN_RATIO = Goal(op="<=", bound=1.3, source='issue "Proxy service": median latency x direct at c=1')
GOAL_THROUGHPUT = Goal(op=">=", bound=60.0, source='issue "Proxy service": throughput % of direct at c=16')
API_KEY = "bench-key-team-a-0123456789"
VMAUTH_TOKEN = "bench-vmauth-team-a-0123456789"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _window() -> tuple[int, int]:
    """(start, end) in seconds of SAMPLES samples STEP_S apart, ending 10 minutes ago."""
    end_s = (int(time.time()) - 600) // STEP_S * STEP_S
    return end_s - (SAMPLES - 1) * STEP_S, end_s


def _pods(name: str, namespace: str, count: int, start_s: int) -> list[Series]:
    """``count`` counters named ``name``, one per pod of ``namespace``."""
    series = []
    for i in range(count):
        labels = {
            "__name__": name,
            "namespace": namespace,
            "job": f"{namespace}/api",
            "pod": f"api-{i:04d}",
            "instance": f"10.{len(namespace)}.{i // 250}.{i % 250}:8080",
            "handler": "/api/v1/items",
            "code": "200",
        }
        samples = tuple(
            Sample(timestamp_ms=(start_s + k * STEP_S) * 1000, value=float(i + k * 4)) for k in range(SAMPLES)
        )
        series.append(
            Series(labels=tuple(sorted(labels.items())), family=name.removesuffix("_total"), type=MetricType.COUNTER,
                   samples=samples)
        )
    return series


def _dataset(series: list[Series], start_s: int, end_s: int) -> Dataset:
    return Dataset(start_ms=start_s * 1000, end_ms=end_s * 1000, step_ms=STEP_S * 1000,
                   namespaces=("team-a", "team-b"), series=tuple(series))


def synthetic_dataset() -> Dataset:
    """``bench_requests_total`` for 1,000 team-a pods and 500 team-b pods, ending 10 minutes ago."""
    start_s, end_s = _window()
    series = _pods("bench_requests_total", "team-a", TEAM_A_SERIES, start_s)
    series += _pods("bench_requests_total", "team-b", TEAM_B_SERIES, start_s)
    return _dataset(series, start_s, end_s)


def sweep_dataset() -> Dataset:
    """``bench_sweep_<n>_total`` with n team-a pods and n/2 team-b pods, for each n of SWEEP_SIZES."""
    start_s, end_s = _window()
    series: list[Series] = []
    for size in SWEEP_SIZES:
        series += _pods(f"bench_sweep_{size}_total", "team-a", size, start_s)
        series += _pods(f"bench_sweep_{size}_total", "team-b", size // 2, start_s)
    return _dataset(series, start_s, end_s)


def import_into_victoriametrics(server: ServerProcess, dataset: Dataset) -> None:
    """The data set through ``/api/v1/import/prometheus`` (text format, millisecond timestamps)."""
    lines: list[str] = []
    for s in dataset.series:
        labels = ",".join(f'{k}="{v}"' for k, v in s.labels if k != "__name__")
        lines.extend(f"{s.name}{{{labels}}} {sample.value:g} {sample.timestamp_ms}" for sample in s.samples)
    request = urllib.request.Request(
        f"{server.url}/api/v1/import/prometheus", data=("\n".join(lines) + "\n").encode(), method="POST"
    )
    with _OPENER.open(request, timeout=60) as response:
        response.read()
    deadline = time.monotonic() + 30
    loaded = 0
    while loaded != len(dataset.series) and time.monotonic() < deadline:
        result = wait_for_result(server, 'count({__name__=~"bench_.+"})', at_s=dataset.end_s, timeout_s=30)
        loaded = int(float(result[0]["value"][1]))
        if loaded != len(dataset.series):
            time.sleep(0.2)
    if loaded != len(dataset.series):
        raise RuntimeError(f"VictoriaMetrics holds {loaded} series, expected {len(dataset.series)}")


def pid_of(server: ServerProcess | MtproxyProcess) -> int:
    pid = server.pid
    assert pid is not None, f"{server} is not running"
    return pid


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    name: str
    url: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    pids: tuple[int, ...]
    """Server processes whose CPU time counts for this target (the proxy and its backend); the backend last."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    median_ms: float
    p99_ms: float
    per_s: float
    bytes: int
    series: int
    server_cpu_ms: float
    backend_cpu_ms: float
    client_cpu_ms: float


class Measurement:
    """One target at one concurrency, measured in rounds that alternate with the other targets'."""

    def __init__(self, target: Target, client: httpx.AsyncClient) -> None:
        self.target = target
        self.client = client
        self.latencies: list[float] = []
        self.elapsed_s = 0.0
        self.server_cpu_s = 0.0
        self.backend_cpu_s = 0.0
        self.client_cpu_s = 0.0
        self.body = b""
        self.series = 0

    async def check_and_warm_up(self) -> None:
        url = self.target.url + self.target.path
        first = await self.client.get(url, params=self.target.params)
        if first.status_code != 200:
            raise RuntimeError(f"{self.target.name}: {first.status_code} {first.text[:300]}")
        self.body = first.content
        self.series = len(first.json()["data"]["result"])
        for _ in range(WARMUP):
            await self.client.get(url, params=self.target.params)

    async def round(self, *, concurrency: int, requests: int, budget_s: float | None = None) -> None:
        """``requests`` requests from ``concurrency`` workers; none sent after ``budget_s`` seconds."""
        url = self.target.url + self.target.path
        failures: list[str] = []
        numbers = iter(range(requests))
        deadline = time.perf_counter() + budget_s if budget_s is not None else float("inf")

        async def worker() -> None:
            for _ in numbers:
                if time.perf_counter() > deadline:
                    break
                sent = time.perf_counter()
                response = await self.client.get(url, params=self.target.params)
                self.latencies.append(time.perf_counter() - sent)
                if response.status_code != 200 or len(response.content) != len(self.body):
                    failures.append(f"{response.status_code} {len(response.content)} bytes")

        server_cpu = sum(cpu_seconds(pid) for pid in self.target.pids)
        backend_cpu = cpu_seconds(self.target.pids[-1])
        client_cpu = time.process_time()
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        self.elapsed_s += time.perf_counter() - started
        self.client_cpu_s += time.process_time() - client_cpu
        self.server_cpu_s += sum(cpu_seconds(pid) for pid in self.target.pids) - server_cpu
        self.backend_cpu_s += cpu_seconds(self.target.pids[-1]) - backend_cpu
        if failures:
            raise RuntimeError(f"{self.target.name}: {len(failures)} bad answers, e.g. {failures[:3]}")

    def figure(self) -> Figure:
        latencies = sorted(self.latencies)
        count = len(latencies)
        return Figure(
            median_ms=statistics.median(latencies) * 1000,
            p99_ms=latencies[min(count - 1, int(count * 0.99))] * 1000,
            per_s=count / self.elapsed_s,
            bytes=len(self.body),
            series=self.series,
            server_cpu_ms=self.server_cpu_s / count * 1000,
            backend_cpu_ms=self.backend_cpu_s / count * 1000,
            client_cpu_ms=self.client_cpu_s / count * 1000,
        )


def print_row(concurrency: int, name: str, figure: Figure) -> None:
    print(
        f"  c={concurrency:<3} {name:<30} median {figure.median_ms:7.2f} ms   p99 {figure.p99_ms:7.2f} ms   "
        f"{figure.per_s:7.1f} req/s   server CPU {figure.server_cpu_ms:6.2f} ms/req "
        f"(backend {figure.backend_cpu_ms:5.2f})   "
        f"client CPU {figure.client_cpu_ms:5.2f} ms/req   ({figure.series} series, {figure.bytes / 1024:.0f} KiB)"
    )


def print_ratio(concurrency: int, what: str, ours: Figure, base: Figure, *, goals: bool) -> None:
    median = ours.median_ms / base.median_ms
    throughput = ours.per_s / base.per_s
    against_direct = what == "mtproxy/direct"
    goal_median = "  (goal <= 1.3)" if goals and against_direct and concurrency == 1 else ""
    goal_throughput = "  (goal >= 60 %)" if goals and against_direct and concurrency == 16 else ""
    print(
        f"  c={concurrency:<3} ratio {what}: median latency x{median:.2f}{goal_median}, "
        f"p99 x{ours.p99_ms / base.p99_ms:.2f}, throughput {throughput * 100:.0f} %{goal_throughput}"
    )


async def compare(
    targets: list[Target], *, ratios: list[tuple[str, str, str]], goals: bool, quick: bool
) -> dict[int, dict[str, Figure]]:
    """Each target at concurrency 1 and 16, in ``ROUNDS`` alternating rounds so drift hits all alike.

    Returns:
        The figure of each target (by name) at each concurrency.
    """
    results: dict[int, dict[str, Figure]] = {}
    for concurrency in (1, 16):
        requests = REQUESTS[concurrency] // (QUICK_DIVISOR if quick else 1)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with contextlib.AsyncExitStack() as stack:
            measurements = []
            for target in targets:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(limits=limits, timeout=60.0, headers=dict(target.headers))
                )
                measurement = Measurement(target, client)
                await measurement.check_and_warm_up()
                measurements.append(measurement)
            for index in range(ROUNDS):
                order = measurements[index % len(measurements):] + measurements[: index % len(measurements)]
                for measurement in order:
                    await measurement.round(concurrency=concurrency, requests=requests // ROUNDS)
        figures = {m.target.name: m.figure() for m in measurements}
        for name, figure in figures.items():
            print_row(concurrency, name, figure)
        for ours, base, label in ratios:
            print_ratio(concurrency, label, figures[ours], figures[base], goals=goals)
        results[concurrency] = figures
    return results


def report_comparison(
    report: Report, backend: str, results: dict[int, dict[str, Figure]], *, goals: bool
) -> None:
    """Median latency at c=1 and throughput at c=16 of each target, with ratios to the others;
    the CPU each proxy adds per request beyond its backend's; the goal ratios against direct."""
    for concurrency, attribute, what, unit in ((1, "median_ms", "median latency", "ms"),
                                               (16, "per_s", "throughput", "req/s")):
        figures = results[concurrency]
        for name, figure in figures.items():
            value = getattr(figure, attribute)
            peers = {other: value / getattr(theirs, attribute) for other, theirs in figures.items() if other != name}
            report.add(f"{backend} {figure.series:,} series: {name} {what}, c={concurrency}", value, unit,
                       peers=peers)
    for name, figure in results[1].items():
        if name != "direct":
            added = figure.server_cpu_ms - figure.backend_cpu_ms
            report.add(f"{backend}: CPU {name} adds per request, c=1", added, "ms",
                       note="the proxy process' CPU time per request, its backend's not counted")
    if goals:
        ours, direct = results[1]["mtproxy (header)"], results[1]["direct"]
        report.add(f"{backend}: mtproxy/direct median latency, c=1", ours.median_ms / direct.median_ms, "x",
                   goal=GOAL_MEDIAN_RATIO)
        ours, direct = results[16]["mtproxy (header)"], results[16]["direct"]
        report.add(f"{backend}: mtproxy/direct throughput, c=16", ours.per_s / direct.per_s * 100, "%",
                   goal=GOAL_THROUGHPUT)


def proxy_config(workdir: Path, backend: str, auth: Mapping[str, Any]) -> dict[str, Any]:
    tenants = write_tenant_files(workdir / "tenants", {"team-a": ["bench_.*"], "team-b": ["bench_.*"]})
    config: dict[str, Any] = service_config(
        targets=[backend],
        tenants_dir=tenants,
        auth=auth,
        proxy={"enable_metrics": False, "max_concurrent_requests": 100},
        discovery={"health_check_interval": "10s"},
    )
    return config


def start_proxy(workdir: Path, config: Mapping[str, Any], *, profile: str | None) -> MtproxyProcess:
    command = MtproxyProcess(workdir.name, workdir, config, log_level="warning")
    if profile:
        command.argv_prefix = [sys.executable, "-P", "-m", "cProfile", "-o", profile, "-m", "mtproxy.cmd.main"]
    return command.start()


_AREAS = (
    ("epoll wait (idle)", ("select.epoll",)),
    ("socket send/recv", ("_socket.socket",)),
    ("json (result check, merge)", ("json/", "resultcheck.py")),
    ("mtproxy", ("/proxy/", "/cmd/", "/api/", "/reconcilers/")),
    ("hypercorn + h11 (server)", ("hypercorn", "/h11/")),
    ("httpx + httpcore (backend client)", ("httpx", "httpcore", "zlib")),
    ("trio", ("/trio/", "outcome", "_contextvars")),
    ("prometheus_client", ("prometheus_client",)),
)


def print_profile(path: str) -> None:
    """Own time grouped by area, then the top functions by own time."""
    stats = pstats.Stats(path)
    areas: dict[str, float] = {}
    total = 0.0
    for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]
        total += own
        where = f"{filename}:{function}"
        area = next((name for name, keys in _AREAS if any(k in where for k in keys)), "other")
        areas[area] = areas.get(area, 0.0) + own
    busy = total - areas.get("epoll wait (idle)", 0.0)
    print(f"\n== cProfile of the proxy process ({path}): {total:.1f} s, {busy:.1f} s not waiting in epoll")
    for name, seconds in sorted(areas.items(), key=lambda item: -item[1]):
        share = f"{seconds / busy * 100:5.1f} % of busy" if name != "epoll wait (idle)" else ""
        print(f"  {name:<36} {seconds:7.2f} s  {share}")
    print("== top 20 functions by own time")
    stats.sort_stats("tottime").print_stats(20)


async def run(workdir: Path, *, profile: str | None, quick: bool, report: Report) -> None:
    dataset = synthetic_dataset()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    servers: list[Any] = []
    try:
        prometheus = start_prometheus_with_data(workdir / "prometheus", dataset).server
        servers.append(prometheus)
        proxy = start_proxy(
            workdir / "mtproxy-prometheus", proxy_config(workdir, prometheus.url, {"type": "none"}), profile=profile
        )
        servers.append(proxy)
        instant = {"time": str(dataset.end_s)}
        targets = [
            Target(name="direct", url=prometheus.url, path="/api/v1/query",
                   params={"query": 'bench_requests_total{namespace="team-a"}', **instant}, headers={},
                   pids=(pid_of(prometheus),)),
            Target(name="mtproxy (header)", url=proxy.url, path="/api/v1/query",
                   params={"query": "bench_requests_total", **instant},
                   headers={"X-Tenant-Namespace": "team-a"}, pids=(pid_of(proxy), pid_of(prometheus))),
        ]
        ratios = [("mtproxy (header)", "direct", "mtproxy/direct")]
        peer = locate(Program.PROM_LABEL_PROXY)
        if peer.present:
            label_proxy = prom_label_proxy(workdir / "prom-label-proxy", upstream=prometheus.url)
            servers.append(label_proxy)
            label_proxy.start()
            targets.append(Target(name="prom-label-proxy", url=label_proxy.url, path="/api/v1/query",
                                  params={"query": "bench_requests_total", **instant},
                                  headers={"X-Tenant-Namespace": "team-a"},
                                  pids=(pid_of(label_proxy), pid_of(prometheus))))
            ratios += [("prom-label-proxy", "direct", "prom-label-proxy/direct"),
                       ("mtproxy (header)", "prom-label-proxy", "mtproxy/prom-label-proxy")]
        else:
            print(f"prom-label-proxy {peer.version} is not built ({peer.path}): `make testbin` adds its rows")
        print(f"\n== Prometheus: {TEAM_A_SERIES}-series instant query (of {len(dataset.series)} series stored)")
        results = await compare(targets, ratios=ratios, goals=True, quick=quick)
        report_comparison(report, "Prometheus", results, goals=True)
        for server in servers[1:]:
            server.stop()
        del servers[1:]

        vm = victoriametrics(workdir / "victoriametrics")
        servers.append(vm)
        vm.start()
        import_into_victoriametrics(vm, dataset)
        auth_path = workdir / "vmauth.yml"
        auth_path.write_text(json.dumps({"users": [{
            "bearer_token": VMAUTH_TOKEN,
            "url_prefix": f"{vm.url}/?extra_label=namespace=team-a",
        }]}))
        gate = vmauth(workdir / "vmauth", auth_config=auth_path)
        servers.append(gate)
        gate.start()
        vm_proxy = start_proxy(
            workdir / "mtproxy-vm",
            proxy_config(workdir, vm.url, {"type": "apikey", "apikey": {"static_keys": {API_KEY: ["team-a"]}}}),
            profile=None,
        )
        servers.append(vm_proxy)
        print(f"\n== VictoriaMetrics: {TEAM_A_SERIES}-series instant query; tenant enforced by vmauth or mtproxy")
        async with httpx.AsyncClient(timeout=30.0) as client:
            query = {"query": "bench_requests_total", **instant}
            refused = [
                (await client.get(gate.url + "/api/v1/query", params=query,
                                  headers={"Authorization": "Bearer not-a-known-token"})).status_code,
                (await client.get(vm_proxy.url + "/api/v1/query", params=query,
                                  headers={"X-API-Key": "not-a-known-key"})).status_code,
            ]
        print(f"  unknown credential answered: vmauth {refused[0]}, mtproxy {refused[1]}")
        results = await compare(
            [
                Target(name="direct", url=vm.url, path="/api/v1/query",
                       params={"query": 'bench_requests_total{namespace="team-a"}', **instant}, headers={},
                       pids=(pid_of(vm),)),
                Target(name="vmauth (extra_label)", url=gate.url, path="/api/v1/query",
                       params={"query": "bench_requests_total", **instant},
                       headers={"Authorization": f"Bearer {VMAUTH_TOKEN}"}, pids=(pid_of(gate), pid_of(vm))),
                Target(name="mtproxy (apikey)", url=vm_proxy.url, path="/api/v1/query",
                       params={"query": "bench_requests_total", **instant},
                       headers={"X-API-Key": API_KEY}, pids=(pid_of(vm_proxy), pid_of(vm))),
            ],
            ratios=[
                ("vmauth (extra_label)", "direct", "vmauth/direct"),
                ("mtproxy (apikey)", "direct", "mtproxy/direct"),
                ("mtproxy (apikey)", "vmauth (extra_label)", "mtproxy/vmauth"),
            ],
            goals=False,
            quick=quick,
        )
        report_comparison(report, "VictoriaMetrics", results, goals=False)
    finally:
        for server in reversed(servers):
            server.stop()
    if profile:
        print_profile(profile)


async def run_sweep(workdir: Path, *, quick: bool, report: Report) -> None:
    """Latency and proxy CPU against the number of series returned, at c=1, for every target."""
    dataset = sweep_dataset()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    print(f"series sweep: {', '.join(f'{n:,}' for n in SWEEP_SIZES)} series returned "
          f"({len(dataset.series):,} stored), c=1")
    requests = SWEEP_REQUESTS // (QUICK_DIVISOR if quick else 1)
    budget_s = SWEEP_BUDGET_S / (QUICK_DIVISOR if quick else 1)
    servers: list[Any] = []
    try:
        prometheus = start_prometheus_with_data(workdir / "prometheus", dataset).server
        servers.append(prometheus)
        proxy = start_proxy(workdir / "mtproxy-prometheus",
                            proxy_config(workdir, prometheus.url, {"type": "none"}), profile=None)
        servers.append(proxy)
        vm = victoriametrics(workdir / "victoriametrics")
        servers.append(vm)
        vm.start()
        import_into_victoriametrics(vm, dataset)
        auth_path = workdir / "vmauth.yml"
        auth_path.write_text(json.dumps({"users": [{
            "bearer_token": VMAUTH_TOKEN,
            "url_prefix": f"{vm.url}/?extra_label=namespace=team-a",
        }]}))
        gate = vmauth(workdir / "vmauth", auth_config=auth_path)
        servers.append(gate)
        gate.start()
        vm_proxy = start_proxy(
            workdir / "mtproxy-vm",
            proxy_config(workdir, vm.url, {"type": "apikey", "apikey": {"static_keys": {API_KEY: ["team-a"]}}}),
            profile=None,
        )
        servers.append(vm_proxy)
        # (name, url, headers, pids: proxy first, backend last, enforced by the server?)
        subjects: list[tuple[str, str, dict[str, str], tuple[int, ...], bool]] = [
            ("direct Prometheus", prometheus.url, {}, (pid_of(prometheus),), False),
            ("mtproxy (Prometheus)", proxy.url, {"X-Tenant-Namespace": "team-a"},
             (pid_of(proxy), pid_of(prometheus)), True),
        ]
        peer = locate(Program.PROM_LABEL_PROXY)
        if peer.present:
            label_proxy = prom_label_proxy(workdir / "prom-label-proxy", upstream=prometheus.url)
            servers.append(label_proxy)
            label_proxy.start()
            subjects.append(("prom-label-proxy (Prometheus)", label_proxy.url, {"X-Tenant-Namespace": "team-a"},
                             (pid_of(label_proxy), pid_of(prometheus)), True))
        else:
            print(f"prom-label-proxy {peer.version} is not built ({peer.path}): `make testbin` adds its line")
        subjects += [
            ("direct VictoriaMetrics", vm.url, {}, (pid_of(vm),), False),
            ("vmauth (VictoriaMetrics)", gate.url, {"Authorization": f"Bearer {VMAUTH_TOKEN}"},
             (pid_of(gate), pid_of(vm)), True),
            ("mtproxy (VictoriaMetrics)", vm_proxy.url, {"X-API-Key": API_KEY}, (pid_of(vm_proxy), pid_of(vm)), True),
        ]
        medians: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in subjects}
        p99s: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in subjects}
        added_cpu: dict[str, list[tuple[float, float]]] = {name: [] for name, *_, enforced in subjects if enforced}
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        for size in SWEEP_SIZES:
            name_of_metric = f"bench_sweep_{size}_total"
            instant = {"time": str(dataset.end_s)}
            async with contextlib.AsyncExitStack() as stack:
                measurements = []
                for name, url, headers, pids, enforced in subjects:
                    query = name_of_metric if enforced else f'{name_of_metric}{{namespace="team-a"}}'
                    client = await stack.enter_async_context(
                        httpx.AsyncClient(limits=limits, timeout=60.0, headers=headers)
                    )
                    target = Target(name=name, url=url, path="/api/v1/query", params={"query": query, **instant},
                                    headers=headers, pids=pids)
                    measurement = Measurement(target, client)
                    await measurement.check_and_warm_up()
                    if measurement.series != size:
                        raise RuntimeError(f"{name} returned {measurement.series} series, expected {size}")
                    measurements.append(measurement)
                for index in range(SWEEP_ROUNDS):
                    order = measurements[index % len(measurements):] + measurements[: index % len(measurements)]
                    for measurement in order:
                        await measurement.round(concurrency=1, requests=requests // SWEEP_ROUNDS,
                                                budget_s=budget_s / SWEEP_ROUNDS)
            print(f"\n== {size:,} series returned")
            for measurement in measurements:
                figure = measurement.figure()
                name = measurement.target.name
                print_row(1, name, figure)
                medians[name].append((size, figure.median_ms))
                p99s[name].append((size, figure.p99_ms))
                if name in added_cpu:
                    added_cpu[name].append((size, figure.server_cpu_ms - figure.backend_cpu_ms))
                if size == SWEEP_SIZES[-1]:
                    backend = "Prometheus" if "Prometheus" in name else "VictoriaMetrics"
                    peers = {
                        other.target.name: figure.median_ms / other.figure().median_ms
                        for other in measurements
                        if other is not measurement and backend in other.target.name
                    }
                    report.add(f"{size:,}-series query: {name} median latency, c=1", figure.median_ms, "ms",
                               peers=peers)
    finally:
        for server in reversed(servers):
            server.stop()
    series_axis = Axis(label="series returned by the instant query", unit="series")
    note = f"c=1, up to {requests} requests or {budget_s:.1f} s per point, {SWEEP_ROUNDS} alternating rounds"
    report.add_sweep(Sweep(name="proxy latency vs series returned (median)", plot="proxy_latency_vs_series",
                           x=series_axis, y=Axis(label="median latency", unit="ms"), lines=medians,
                           log_x=True, log_y=True, note=note))
    report.add_sweep(Sweep(name="proxy latency vs series returned (p99)", plot="proxy_latency_vs_series",
                           x=series_axis, y=Axis(label="p99 latency", unit="ms"), lines=p99s,
                           log_x=True, log_y=True, note=note))
    report.add_sweep(Sweep(name="CPU the proxy adds per request vs series returned",
                           plot="proxy_cpu_vs_series", x=series_axis,
                           y=Axis(label="proxy process CPU per request (backend's excluded)", unit="ms"),
                           lines=added_cpu, log_x=True, log_y=True, note=note))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", metavar="FILE", help="run the proxy under cProfile, write stats to FILE")
    parser.add_argument("--series-sweep", action="store_true",
                        help=f"latency against series returned ({', '.join(map(str, SWEEP_SIZES))}), c=1")
    parser.add_argument("--quick", action="store_true", help=f"1/{QUICK_DIVISOR} of the requests")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    report = Report("bench_proxy --series-sweep" if args.series_sweep else "bench_proxy")
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as workdir:
        if args.series_sweep:
            trio.run(lambda: run_sweep(Path(workdir), quick=args.quick, report=report))
        else:
            trio.run(lambda: run(Path(workdir), profile=args.profile, quick=args.quick, report=report))
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
