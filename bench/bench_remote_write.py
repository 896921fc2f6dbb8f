"""Remote-write benchmark: 100,000 series forwarded end to end into a real tenant Prometheus.

Figure: samples forwarded per CPU-second of this process (the forwarder's whole cost:
query, JSON parse, relabel/transform, watermarks, encode, compress, HTTP), for one cold
cycle (transform and label caches empty, every series new to the tenant) and one warm
cycle (the steady state of a running job), with the time each stage took, and the peak
RSS. Goal (issue "Lossless remote-write pipeline"): at least 150,000 samples/s per core
end to end, RSS under 300 MB.

The source is an infrastructure Prometheus holding 100,000 series x 4 samples (15 s
apart, 9 labels each, one namespace), loaded from OpenMetrics through ``promtool tsdb
create-blocks-from openmetrics`` (``realservers.backfill``); the destination is a tenant
Prometheus with its remote-write receiver and out-of-order ingestion off. Both run as
child processes on 127.0.0.1, so their CPU is not counted here. The pipeline runs in
this process exactly as the runner drives it (``RemoteWritePipeline.cycle`` with a real
``Collector``, ``JobReads`` and ``RemoteWriteSender``): cycle 1 reads the window holding
the first two samples of every series, cycle 2 the one holding the last two.

Stages are timed by wrapping the functions that do them (wall time, and CPU time of the
trio thread): the source's HTTP answer, its parse (``scan_matrix_answer``; the vanished-series
answer's ``parse_vector_answer``), the resolution of each series to what is sent
(``SeriesTransform.resolve``: relabel + extra labels, the encoded label block and the
series hash, once per series; a cache lookup once warm), watermarks, the protobuf encoding
and snappy compression, the journal and snapshot writes, and the HTTP sends (their wall time is
mostly the tenant's ingestion). The timers cost CPU themselves (about a microsecond per call, and
there are hundreds of thousands of calls), so the headline figures come from a first pass
without them, into one tenant, and the stage table from a second pass with them, into a
second tenant. ``--file-state`` keeps the job's state as files mode does (``FileStateStore``:
a journal line per series per batch, a snapshot per window) instead of in memory
(Kubernetes mode). ``--profile`` adds a cProfile of the first pass' warm cycle (``--profile cold``:
its cold one). No timing is
asserted; the script checks that each tenant holds every sample and exits 0 (1 when one does not).

``--sweep`` then measures how the forwarding CPU grows with the number of series: jobs
selecting 1 %, 5 %, 20 % and 50 % of the same source (``bench_metric_0{job="app-0"}``,
``bench_metric_0``, ``bench_metric_[0-3]``, ``bench_metric_[0-9]``) each forward their two
cycles, uninstrumented, into a fresh tenant Prometheus of their own (so every series is new
to it); the first pass is the 100 % point. ``--series N`` forwards N series instead of
100,000 (a multiple of 100); ``--quick`` is ``--series 20000`` without the instrumented
second pass. ``--json PATH`` also writes the figures (``bench/figures.py``).

The module is one unit of about 500 lines because the sweep must drive the pipeline exactly
as the headline figures do (the same source, job, collector and sender), so it reuses them.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import gc
import inspect
import io
import pstats
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Axis, Goal, Report, Sweep
from realservers.backfill import create_blocks
from realservers.prometheus import infrastructure_prometheus, tenant_prometheus

import mtproxy.remotewrite.collect as collect_module
import mtproxy.remotewrite.pipeline as pipeline_module
from mtproxy.api import rules_for
from mtproxy.remotewrite import (
    Collector,
    Destination,
    DestinationKind,
    FileStateStore,
    JobReads,
    JobState,
    MemoryStateStore,
    RemoteWriteJob,
    RemoteWritePipeline,
    RemoteWriteSender,
)

SERIES = 100_000
SAMPLES_PER_SERIES = 4
STEP_S = 15
METRICS = 20
NAMESPACE = "bench"
BATCH_SIZE = 5000
CYCLE_TIMEOUT_S = 600
GOAL_SAMPLES_PER_CORE_S = 150_000
GOAL_RSS_MB = 300
QUICK_SERIES = 20_000
_SOURCE = 'issue "Lossless remote-write pipeline"'
GOAL_THROUGHPUT = Goal(op=">=", bound=GOAL_SAMPLES_PER_CORE_S, source=_SOURCE + ": end to end, per core")
GOAL_RSS = Goal(op="<", bound=GOAL_RSS_MB, source=_SOURCE)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The part of the source a job forwards."""

    patterns: tuple[str, ...]
    series: int


def sweep_selections(series: int) -> list[Selection]:
    """Nested parts of the source: metric 0 holds series/METRICS series, a fifth of them with job app-0."""
    per_metric = series // METRICS
    return [
        Selection(patterns=('bench_metric_0{job="app-0"}',), series=per_metric // 5),
        Selection(patterns=("bench_metric_0",), series=per_metric),
        Selection(patterns=("bench_metric_[0-3]",), series=4 * per_metric),
        Selection(patterns=("bench_metric_[0-9]",), series=10 * per_metric),
    ]

P = ParamSpec("P")
R = TypeVar("R")


# -- stage timing ---------------------------------------------------------------------------------


class GarbageCollections:
    """Time spent in the cyclic garbage collector (``gc.callbacks``), per generation."""

    def __init__(self) -> None:
        self.seconds: dict[int, float] = defaultdict(float)
        self.runs: dict[int, int] = defaultdict(int)
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started
            self.runs[info["generation"]] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.runs.clear()

    def summary(self) -> str:
        total = sum(self.seconds.values())
        per_generation = ", ".join(f"gen{g} {self.runs[g]}x {self.seconds[g]:.2f} s" for g in sorted(self.runs))
        return f"{total:.2f} s ({per_generation})"


class Stages:
    """Wall and CPU seconds per stage, from wrapped functions."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.calls.clear()

    def sync(self, stage: str, fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[stage] += time.perf_counter() - wall
                self.cpu[stage] += time.thread_time() - cpu
                self.calls[stage] += 1

        return timed

    def asynchronous(self, stage: str, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.wall[stage] += time.perf_counter() - wall
                self.cpu[stage] += time.thread_time() - cpu
                self.calls[stage] += 1

        return timed


def _instrument(
    stages: Stages, collector: Collector, reads: JobReads, sender: RemoteWriteSender, pipeline: RemoteWritePipeline
) -> None:
    """Replace each stage's function, where its caller looks it up, with a timed one."""
    wrapped: list[tuple[object, str, str]] = [
        # the source: the HTTP answer, then its parse (module functions the collector calls)
        (collector, "_query", "source query (HTTP)"),
        (collect_module, "scan_matrix_answer", "source JSON parse"),
        (collect_module, "parse_vector_answer", "source JSON parse"),
        (reads.transform, "resolve", "resolve (relabel, labels, hash)"),
        (pipeline.marks, "pending", "watermarks"),
        (pipeline_module, "encode_series", "encode"),
        (pipeline_module, "encode_write_request", "encode"),
        (pipeline_module, "compress_block", "snappy compress"),
        (pipeline._store, "append_marks", "state (journal)"),
        (pipeline._store, "snapshot", "state (snapshot capture)"),
        (pipeline._store, "append_in_flight", "state (journal)"),
        (sender, "send", "send (HTTP, tenant ingests)"),
    ]
    for owner, attribute, stage in wrapped:
        function = getattr(owner, attribute)
        timed = (
            stages.asynchronous(stage, function)
            if inspect.iscoroutinefunction(function)
            else stages.sync(stage, function)
        )
        setattr(owner, attribute, timed)


# -- data -------------------------------------------------------------------------------------------


def _write_openmetrics(path: Path, first_s: int, series: int) -> None:
    """``series`` series x SAMPLES_PER_SERIES samples, streamed (the file is never held in memory)."""
    with path.open("w", encoding="utf-8") as out:
        for metric in range(METRICS):
            name = f"bench_metric_{metric}"
            out.write(f"# TYPE {name} gauge\n")
            for index in range(metric, series, METRICS):
                address = f"10.{index % 200}.{index // 200 % 250}.7:8080"
                labels = (
                    f'namespace="{NAMESPACE}",job="app-{index % 50}",instance="{address}",'
                    f'pod="app-{index % 50}-{index // 50:05d}",container="main",node="node-{index % 40}",'
                    f'zone="zone-{index % 3}",series="{index}"'
                )
                for step in range(SAMPLES_PER_SERIES):
                    value = (index * 7 + step * 13) % 10007 + step / 8
                    out.write(f"{name}{{{labels}}} {value} {first_s + step * STEP_S}\n")
        out.write("# EOF\n")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# -- the run ----------------------------------------------------------------------------------------


async def _count(http: httpx.AsyncClient, url: str, query: str, at_s: float) -> float:
    response = await http.post(f"{url}/api/v1/query", data={"query": query, "time": str(at_s)})
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def _forward(
    http: httpx.AsyncClient,
    infra_url: str,
    tenant_url: str,
    first_ms: int,
    *,
    stages: Stages | None,
    profile: str | None,
    state_dir: Path | None,
    selection: Selection,
    quiet: bool = False,
) -> list[tuple[int, float, float]]:
    """Two cycles of the ``selection`` into ``tenant_url``; (samples, wall s, process CPU s) per cycle."""
    destination = Destination(
        kind=DestinationKind.REMOTE_WRITE, url=f"{tenant_url}/api/v1/write", name="http://tenant/api/v1/write"
    )
    job = RemoteWriteJob(
        namespace=NAMESPACE,
        name="bench",
        rules=rules_for(selection.patterns, label_selectors={}, isolation_namespace=NAMESPACE),
        interval_ms=30_000,
        destinations=(destination,),
        batch_size=BATCH_SIZE,
        max_backfill_ms=24 * 3_600_000,
    )
    collector = Collector(http, source_urls=lambda: [infra_url])
    reads = JobReads(job, collector)
    sender = RemoteWriteSender(http, destination, namespace=NAMESPACE, secrets=None)
    pipeline = RemoteWritePipeline(
        reads,
        destination,
        sender=sender,
        state=JobState(),
        store=MemoryStateStore() if state_dir is None else FileStateStore(state_dir),
        window_ms=3_600_000,
    )
    if stages is not None:
        _instrument(stages, collector, reads, sender, pipeline)
    # Window ends: cycle 1 holds steps 0-1, cycle 2 steps 2-3 (windows are (start, end]).
    ends_ms = [first_ms + STEP_S * 1000, first_ms + (SAMPLES_PER_SERIES - 1) * STEP_S * 1000]
    profiler = cProfile.Profile() if profile else None
    profiled_cycle = 1 if profile == "cold" else len(ends_ms)
    collections = GarbageCollections()
    cycles = []
    for number, end_ms in enumerate(ends_ms, start=1):
        collections.reset()
        if stages is not None:
            stages.reset()
        forwarded_before = pipeline.samples_forwarded
        if profiler is not None and number == profiled_cycle:
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        with trio.fail_after(CYCLE_TIMEOUT_S):
            await pipeline.cycle(end_ms, first_start_ms=first_ms - 1000)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None and number == profiled_cycle:
            profiler.disable()
        cycles.append((pipeline.samples_forwarded - forwarded_before, wall, cpu))
        if stages is not None:
            _print_stages(CYCLE_LABELS[number - 1], *cycles[-1], stages)
            print(f"    of which garbage collection: {collections.summary()}")
        elif quiet:
            pass
        else:
            profiled = " [under cProfile: slower]" if profiler is not None and number == profiled_cycle else ""
            _print_throughput(CYCLE_LABELS[number - 1] + profiled, *cycles[-1])
        if pipeline.samples_dropped or pipeline.last_error:
            print(f"    dropped {pipeline.samples_dropped}, last error: {pipeline.last_error}")
    at_s = ends_ms[-1] / 1000
    held = await _count(
        http, tenant_url, f'sum(count_over_time({{__name__=~"bench_.*"}}[{SAMPLES_PER_SERIES * STEP_S}s]))', at_s
    )
    series = await _count(http, tenant_url, 'count({__name__=~"bench_.*"})', at_s)
    expected = selection.series * SAMPLES_PER_SERIES
    complete = held == expected and series == selection.series
    print(
        f"  tenant holds {held:,.0f} samples of {series:,.0f} series (expected {expected:,} of "
        f"{selection.series:,}): {'complete' if complete else 'INCOMPLETE'}"
    )
    if not complete:
        raise RuntimeError(f"the tenant holds {held:,.0f} samples of {series:,.0f} series, expected {expected:,}")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        print(f"cProfile of the {'cold' if profiled_cycle == 1 else 'warm'} cycle, by own time:")
        print(out.getvalue())
    return cycles


CYCLE_LABELS = ("cycle 1 (cold: caches empty, every series new)", "cycle 2 (warm: steady state)")


def _print_throughput(label: str, samples: int, wall_s: float, cpu_s: float) -> None:
    per_core = samples / cpu_s
    print(
        f"  {label}: {samples:,} samples in {wall_s:.2f} s wall = {samples / wall_s:,.0f} samples/s; "
        f"process CPU {cpu_s:.2f} s = {per_core:,.0f} samples/s per core "
        f"({per_core / GOAL_SAMPLES_PER_CORE_S:.2f} x the goal of {GOAL_SAMPLES_PER_CORE_S:,})"
    )


def _print_stages(label: str, samples: int, wall_s: float, cpu_s: float, stages: Stages) -> None:
    print(f"  {label}: {samples:,} samples, {wall_s:.2f} s wall, {cpu_s:.2f} s process CPU (instrumented)")
    accounted = sum(stages.cpu.values())
    for stage in sorted(stages.wall, key=lambda s: -stages.wall[s]):
        print(
            f"    {stage:<30} wall {stages.wall[stage]:7.3f} s   CPU {stages.cpu[stage]:7.3f} s   "
            f"calls {stages.calls[stage]:>9,}"
        )
    print(f"    {'rest (pipeline, timers, trio, GC)':<34} CPU {max(0.0, cpu_s - accounted):7.3f} s")


async def _run(
    infra_url: str,
    tenant_urls: tuple[str, str],
    first_s: int,
    *,
    series: int,
    profile: str | None,
    state_dir: Path | None,
    instrumented: bool,
    report: Report,
) -> list[tuple[int, float, float]]:
    """The first pass (the figures) and, when ``instrumented``, the second (the stage table)."""
    everything = Selection(patterns=("bench_.*",), series=series)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), trust_env=False) as http:
        rss_before = _peak_rss_mb()
        print(f"peak RSS before the pipeline: {rss_before:.0f} MB")
        print("pass 1, uninstrumented, into tenant 1:")
        state = None if state_dir is None else state_dir / "pass-1"
        cycles = await _forward(http, infra_url, tenant_urls[0], first_s * 1000, stages=None, profile=profile,
                                state_dir=state, selection=everything)
        peak = _peak_rss_mb()
        print(f"  peak RSS: {peak:.0f} MB (goal < {GOAL_RSS_MB} MB: {peak / GOAL_RSS_MB:.2f} x)")
        (cold_samples, cold_wall, cold_cpu), (warm_samples, warm_wall, warm_cpu) = cycles
        where = f"{series:,} series" + (", state in files" if state_dir is not None else "")
        report.add(f"forwarding, warm cycle (steady state), {where}", warm_samples / warm_cpu, "samples/s per core",
                   goal=GOAL_THROUGHPUT, peers={"cold cycle": (warm_samples / warm_cpu) / (cold_samples / cold_cpu)},
                   note=f"{warm_samples:,} samples in {warm_cpu:.2f} CPU-s, {warm_wall:.1f} s wall")
        report.add(f"forwarding, cold cycle (every series new), {where}", cold_samples / cold_cpu,
                   "samples/s per core", goal=GOAL_THROUGHPUT,
                   note=f"{cold_samples:,} samples in {cold_cpu:.2f} CPU-s, {cold_wall:.1f} s wall")
        report.add(f"forwarder peak RSS, {where}", peak, "MB", goal=GOAL_RSS,
                   note=f"{rss_before:.0f} MB before the pipeline")
        if instrumented:
            print("pass 2, every stage timed (the timers add CPU of their own), into tenant 2:")
            state = None if state_dir is None else state_dir / "pass-2"
            await _forward(http, infra_url, tenant_urls[1], first_s * 1000, stages=Stages(), profile=None,
                           state_dir=state, selection=everything)
        return cycles


async def _sweep(
    infra_url: str, workdir: Path, first_s: int, *, series: int, full: list[tuple[int, float, float]], report: Report
) -> None:
    """Each selection into a fresh tenant; the figures of the whole source are the first pass'."""
    points: list[tuple[int, list[tuple[int, float, float]]]] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), trust_env=False) as http:
        for selection in sweep_selections(series):
            tenant = tenant_prometheus(workdir / f"tenant-sweep-{selection.series}")
            await trio.to_thread.run_sync(tenant.start)
            try:
                print(f"sweep: {selection.series:,} series ({', '.join(selection.patterns)}) into a fresh tenant:")
                cycles = await _forward(http, infra_url, tenant.url, first_s * 1000, stages=None, profile=None,
                                        state_dir=None, selection=selection, quiet=True)
            finally:
                await trio.to_thread.run_sync(tenant.stop)
            for label, (samples, wall, cpu) in zip(("cold", "warm"), cycles, strict=True):
                print(f"    {label}: {samples:,} samples, {cpu:.3f} CPU-s = {samples / cpu:,.0f} samples/s per core, "
                      f"{wall:.2f} s wall")
            points.append((selection.series, cycles))
    points.append((series, full))
    cpu_lines: dict[str, list[tuple[float, float]]] = {"cold cycle": [], "warm cycle": []}
    rate_lines: dict[str, list[tuple[float, float]]] = {"cold cycle": [], "warm cycle": []}
    for count, cycles in points:
        for label, (samples, _, cpu) in zip(("cold cycle", "warm cycle"), cycles, strict=True):
            cpu_lines[label].append((count, cpu))
            rate_lines[label].append((count, samples / cpu))
    axis = Axis(label="series forwarded per cycle (2 samples each)", unit="series")
    note = "process CPU of the forwarder per cycle; source and tenant Prometheus are other processes"
    report.add_sweep(Sweep(name="forwarding CPU per cycle vs series", plot="remote_write_cpu_vs_series", x=axis,
                           y=Axis(label="forwarder CPU per cycle", unit="CPU-s"), lines=cpu_lines,
                           log_x=True, log_y=True, note=note))
    report.add_sweep(Sweep(name="forwarding throughput vs series", plot="remote_write_cpu_vs_series", x=axis,
                           y=Axis(label="samples forwarded per CPU-second", unit="samples/s per core"),
                           lines=rate_lines, log_x=True, goal_y=GOAL_SAMPLES_PER_CORE_S, note=note))
    smallest, cycles = points[0]
    samples, _, cpu = cycles[1]
    report.add(f"forwarding, warm cycle, {smallest:,} series (sweep)", samples / cpu, "samples/s per core",
               peers={f"{series:,} series": (samples / cpu) / (full[1][0] / full[1][2])})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", nargs="?", const="warm", choices=("warm", "cold"), help="cProfile the warm (or cold) cycle"
    )
    parser.add_argument("--file-state", action="store_true", help="keep the job state in files (files mode)")
    parser.add_argument("--series", type=int, default=None, help=f"series in the source (default {SERIES:,})")
    parser.add_argument("--sweep", action="store_true", help="then forwarding CPU against the number of series")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SERIES:,} series, no instrumented pass")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    series = args.series or (QUICK_SERIES if args.quick else SERIES)
    if series <= 0 or series % 100:
        parser.error("--series must be a positive multiple of 100")
    report = Report("bench_remote_write")
    with tempfile.TemporaryDirectory(prefix="bench-remote-write-") as tmp:
        workdir = Path(tmp)
        # Recent enough for the tenant (whose head starts empty), old enough to be in blocks.
        first_s = (int(time.time()) // 60 - 30) * 60
        om = workdir / "source.om"
        started = time.perf_counter()
        _write_openmetrics(om, first_s, series)
        create_blocks(om, workdir / "infra" / "data")
        print(
            f"source: {series:,} series x {SAMPLES_PER_SERIES} samples, {om.stat().st_size / 2**20:.0f} MB of "
            f"OpenMetrics, blocks built in {time.perf_counter() - started:.1f} s"
        )
        om.unlink()
        infra = infrastructure_prometheus(workdir / "infra", storage_dir=workdir / "infra" / "data", retention="3650d")
        tenants = (tenant_prometheus(workdir / "tenant-1"), tenant_prometheus(workdir / "tenant-2"))
        servers = (infra, *tenants)
        try:
            for server in servers:
                server.start()
            state_dir = workdir / "state" if args.file_state else None
            full = trio.run(functools.partial(
                _run, infra.url, (tenants[0].url, tenants[1].url), first_s, series=series, profile=args.profile,
                state_dir=state_dir, instrumented=not args.quick, report=report,
            ))
            tenants[0].stop()
            tenants[1].stop()
            if args.sweep:
                trio.run(functools.partial(_sweep, infra.url, workdir, first_s, series=series, full=full,
                                           report=report))
        finally:
            for server in servers:
                server.stop()
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
