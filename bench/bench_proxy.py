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
its time went.
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
ROUNDS = 6
API_KEY = "bench-key-team-a-0123456789"
VMAUTH_TOKEN = "bench-vmauth-team-a-0123456789"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def synthetic_dataset() -> Dataset:
    """``bench_requests_total`` for 1,000 team-a pods and 500 team-b pods, ending 10 minutes ago."""
    end_s = (int(time.time()) - 600) // STEP_S * STEP_S
    start_s = end_s - (SAMPLES - 1) * STEP_S
    series = []
    for namespace, count in (("team-a", TEAM_A_SERIES), ("team-b", TEAM_B_SERIES)):
        for i in range(count):
            labels = {
                "__name__": "bench_requests_total",
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
                Series(labels=tuple(sorted(labels.items())), family="bench_requests", type=MetricType.COUNTER,
                       samples=samples)
            )
    return Dataset(start_ms=start_s * 1000, end_ms=end_s * 1000, step_ms=STEP_S * 1000,
                   namespaces=("team-a", "team-b"), series=tuple(series))


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
    result = wait_for_result(server, "count(bench_requests_total)", at_s=dataset.end_s, timeout_s=30)
    loaded = int(float(result[0]["value"][1]))
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

    async def round(self, *, concurrency: int, requests: int) -> None:
        url = self.target.url + self.target.path
        failures: list[str] = []
        numbers = iter(range(requests))

        async def worker() -> None:
            for _ in numbers:
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
        f"  c={concurrency:<3} {name:<22} median {figure.median_ms:7.2f} ms   p99 {figure.p99_ms:7.2f} ms   "
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


async def compare(targets: list[Target], *, ratios: list[tuple[str, str, str]], goals: bool) -> None:
    """Each target at concurrency 1 and 16, in ``ROUNDS`` alternating rounds so drift hits all alike."""
    for concurrency in (1, 16):
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
                    await measurement.round(concurrency=concurrency, requests=REQUESTS[concurrency] // ROUNDS)
        figures = {m.target.name: m.figure() for m in measurements}
        for name, figure in figures.items():
            print_row(concurrency, name, figure)
        for ours, base, label in ratios:
            print_ratio(concurrency, label, figures[ours], figures[base], goals=goals)


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


async def run(workdir: Path, *, profile: str | None) -> None:
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
        await compare(targets, ratios=ratios, goals=True)
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
        await compare(
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
        )
    finally:
        for server in reversed(servers):
            server.stop()
    if profile:
        print_profile(profile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", metavar="FILE", help="run the proxy under cProfile, write stats to FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as workdir:
        trio.run(lambda: run(Path(workdir), profile=args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
