"""The runner of ``make bench``: every benchmark under ``bench/``, its figures, plots and a table.

Each bench runs as a child process (``python -P bench/bench_X.py ... --json FILE``) in a
process group of its own, with a time limit: past it the group gets SIGINT (the bench's
``finally`` blocks stop its servers), then SIGKILL after a grace period. Its text output
is passed through as it comes and kept in ``build/bench/<name>.log``. A bench that fails,
times out or writes no figures is reported as such in the table and in
``bench/results.json``; the others still run. ``bench_kube_scale.py`` is optional: if it is
missing or fails, it is reported as missing and the run does not fail.

Then:

- ``bench/results.json``: the figures of every bench (name, value, unit, goal, met, ratio to
  peers), the sweeps, the raw figures of ``bench_kube_scale``, what ran and how long, and the
  machine (cores, memory, CPU model, Python, kernel, date, git commit) with the load it
  carried during the run (sampled every 5 s: the machine is shared);
- ``bench/plots/*.png`` (``bench/plots.py``);
- a table of every figure against its goal, with its ratio to its peers.

``--quick`` runs every bench with less work (about 4 minutes; a full run takes 6 to 10 on two
cores, depending on their load); ``--only NAME`` (repeatable) runs some. All traffic is to
127.0.0.1. The exit status is 1 when a required bench failed, else 0: a missed goal is a
figure, not a failure.

The module is one unit of about 450 lines because it is the one place that knows every bench:
how to run it, how to read its figures (``bench_kube_scale``'s own JSON included) and how to
tabulate them; the plots live apart in ``bench/plots.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = ROOT / "build" / "bench"
RESULTS = HERE / "results.json"
PLOTS = HERE / "plots"
INTERRUPT_GRACE_S = 20.0
LOAD_SAMPLE_S = 5.0
KUBE_GOAL_SOURCE = 'issue "Kubernetes mode that holds"'

__all__ = ["BENCHES", "Bench", "main"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bench:
    """One child run: a script, its arguments (full and quick) and its time limits."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    limit_s: float
    quick_limit_s: float
    optional: bool = False
    """Missing or failing is reported, not a failure of the run."""
    kube_scale: bool = False
    """Writes bench_kube_scale's own JSON, translated here into figures."""
    if_supported: tuple[str, ...] = ()
    """Flags added only when the script's ``--help`` lists them (a bench still changing)."""


BENCHES: tuple[Bench, ...] = (
    Bench(name="bench_enforce", script="bench_enforce.py", limit_s=150, quick_limit_s=90),
    Bench(name="bench_fairness", script="bench_fairness.py", limit_s=180, quick_limit_s=90),
    Bench(name="bench_informer", script="bench_informer.py", limit_s=150, quick_limit_s=90),
    Bench(name="bench_informer --sweep", script="bench_informer.py", args=("--sweep",),
          quick_args=("--sweep", "--quick"), limit_s=180, quick_limit_s=90),
    Bench(name="bench_proxy", script="bench_proxy.py", limit_s=420, quick_limit_s=200),
    Bench(name="bench_proxy --series-sweep", script="bench_proxy.py", args=("--series-sweep",),
          quick_args=("--series-sweep", "--quick"), limit_s=300, quick_limit_s=150),
    Bench(name="bench_remote_write --sweep", script="bench_remote_write.py", args=("--sweep",),
          quick_args=("--sweep", "--quick"), limit_s=420, quick_limit_s=150),
    # 1,000 objects at a 30 s interval: set-up, the ramp, one interval to settle, 2 rounds measured.
    # Its restart phase (a rollout) is left to a run of its own: the round is the ramp and the steady state.
    Bench(name="bench_kube_scale", script="bench_kube_scale.py", args=("--rounds", "2"),
          quick_args=("--objects", "100", "--interval", "10", "--rounds", "1"),
          limit_s=540, quick_limit_s=240, optional=True, kube_scale=True, if_supported=("--no-restart",)),
)


@dataclass(slots=True, kw_only=True)
class Outcome:
    bench: Bench
    status: str
    """ok, failed, timeout, missing (script absent, or optional and failed), no-figures."""
    seconds: float = 0.0
    returncode: int | None = None
    reason: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    log: Path | None = None
    command: list[str] = field(default_factory=list)


# -- the machine and its load --------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_uncommitted_in_bench": _git("status", "--porcelain", "--", "bench").splitlines(),
    }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class LoadSampler:
    """The 1-minute load average every LOAD_SAMPLE_S, and the machine's CPU busy share overall."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="load-sampler", daemon=True)
        self._cpu0 = _cpu_times()
        self.start_load = os.getloadavg()

    def _sample(self) -> None:
        while not self._stop.wait(LOAD_SAMPLE_S):
            self.samples.append(os.getloadavg()[0])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        busy, total = (after - before for after, before in zip(_cpu_times(), self._cpu0, strict=True))
        samples = self.samples or [os.getloadavg()[0]]
        return {
            "at_start": [round(v, 2) for v in self.start_load],
            "at_end": [round(v, 2) for v in os.getloadavg()],
            "mean_1min": round(sum(samples) / len(samples), 2),
            "max_1min": round(max(samples), 2),
            "cpu_busy_share": round(busy / total, 3) if total else None,
            "note": "load average over the machine's cores, all processes (the benches' servers and other "
            "users of this shared machine); cpu_busy_share is the share of all CPU time that was busy",
        }


# -- running one bench ---------------------------------------------------------------------------------


def _stream(process: subprocess.Popen[bytes], log: Path) -> None:
    assert process.stdout is not None
    with log.open("wb") as out:
        for line in iter(process.stdout.readline, b""):
            out.write(line)
            out.flush()
            sys.stdout.buffer.write(line)
            sys.stdout.flush()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the bench's group (its servers stop in its finally blocks), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=INTERRUPT_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_bench(bench: Bench, *, quick: bool) -> Outcome:
    script = HERE / bench.script
    if not script.exists():
        return Outcome(bench=bench, status="missing", reason=f"{script.relative_to(ROOT)} is not there")
    WORK.mkdir(parents=True, exist_ok=True)
    slug = bench.name.replace(" --", "-").replace(" ", "-")
    json_path, log = WORK / f"{slug}.json", WORK / f"{slug}.log"
    json_path.unlink(missing_ok=True)
    limit_s = bench.quick_limit_s if quick else bench.limit_s
    argv = [sys.executable, "-P", str(script), *(bench.quick_args if quick else bench.args)]
    if bench.if_supported:
        usage = subprocess.run([sys.executable, "-P", str(script), "--help"], cwd=ROOT, capture_output=True,
                               text=True, check=False, timeout=60).stdout
        argv += [flag for flag in bench.if_supported if flag in usage]
    argv += ["--json", str(json_path)]
    print(f"\n=== {bench.name}: {' '.join(argv[2:])} (limit {limit_s:.0f} s)", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    reader = threading.Thread(target=_stream, args=(process, log), daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop_group(process)
    except BaseException:
        _stop_group(process)
        raise
    reader.join(timeout=10)
    seconds = time.monotonic() - started
    outcome = Outcome(bench=bench, status="ok", seconds=round(seconds, 1), returncode=process.returncode, log=log,
                      command=["python", *(str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a
                                           for a in argv[1:])])
    if timed_out:
        outcome.status, outcome.reason = "timeout", f"stopped after its limit of {limit_s:.0f} s"
    elif process.returncode != 0:
        outcome.status, outcome.reason = "failed", f"exit status {process.returncode}; see {log.relative_to(ROOT)}"
    elif not json_path.exists():
        outcome.status, outcome.reason = "no-figures", f"wrote no {json_path.relative_to(ROOT)}"
    else:
        raw = json.loads(json_path.read_text(encoding="utf-8"))
        outcome.report = kube_scale_report(raw) if bench.kube_scale else raw
    if outcome.status != "ok" and bench.optional:
        outcome.reason = f"reported as missing ({outcome.status}): {outcome.reason}"
        outcome.status = "missing"
    print(f"=== {bench.name}: {outcome.status} in {seconds:.0f} s {outcome.reason}", flush=True)
    return outcome


# -- bench_kube_scale's own JSON, as figures ---------------------------------------------------------------


def _figure(name: str, value: float | None, unit: str, *, goal: tuple[str, float] | None = None,
            source: str = KUBE_GOAL_SOURCE, peers: Mapping[str, float] | None = None,
            note: str = "") -> dict[str, Any]:
    met = None
    goal_json = None
    if goal is not None:
        op, bound = goal
        goal_json = {"op": op, "value": bound, "text": f"{op} {bound:g} {unit}", "source": source}
        if value is not None:
            met = value <= bound if op == "<=" else value < bound
    return {"name": name, "value": value, "unit": unit, "goal": goal_json, "met": met, "peers": dict(peers or {}),
            "note": note}


def kube_scale_report(raw: Mapping[str, Any]) -> dict[str, Any]:
    """bench_kube_scale's figures (its ``--json``) in the form of ``bench/figures.py``; the raw kept."""
    parameters, goals = raw.get("parameters", {}), raw.get("goals", {})
    ramp, steady, service = raw.get("ramp", {}), raw.get("steady") or {}, raw.get("service", {})
    objects, interval_s = parameters.get("objects", 0), float(parameters.get("interval_s", 30.0))
    where = f"{objects:,} objects, interval {interval_s:g} s"
    figures = []
    not_reached = f"not reached: {ramp.get('ready_at_end')}/{objects} Ready after {ramp.get('duration_s')} s"
    figures.append(_figure(f"time to all Ready, {where}", ramp.get("all_ready_intervals"), "intervals",
                           goal=("<=", float(goals.get("all_ready_intervals", 2.0))),
                           note="" if ramp.get("all_ready_s") is not None else not_reached))
    figures.append(_figure(f"time to all Ready, {where}", ramp.get("all_ready_s"), "s",
                           note=f"/-/ready after {ramp.get('service_ready_endpoint_s')} s"))
    figures.append(_figure(f"service peak RSS, {where}", service.get("peak_rss_mb"), "MB",
                           goal=("<", float(goals.get("peak_rss_mb", 250.0)))))
    if steady:
        share = steady["cpu_share_of_one_core_per_round"] * interval_s / 30.0 * 100
        figures.append(_figure(f"CPU per round of all jobs, {where}, as at a 30 s interval", round(share, 2),
                               "% of one core",
                               goal=("<", float(goals.get("cpu_share_of_one_core_at_30s", 0.25)) * 100),
                               note=f"{steady['cpu_s_per_round']} CPU-s per round; "
                               f"{steady['rounds_completed']} of {steady['rounds']} rounds completed"))
        figures.append(_figure(f"CPU per job per round, {where}", steady.get("cpu_ms_per_job_per_round"), "CPU-ms"))
        figures.append(_figure(f"status writes, steady, {where}", steady.get("status_writes_per_s"), "writes/s",
                               note=f"{steady.get('status_writes_per_object_per_round')} per object per round"))
        figures.append(_figure(f"ConfigMap (job state) writes, steady, {where}",
                               steady.get("configmap_writes_per_round"), "writes per round"))
        probe = steady.get("health_probe", {})
        figures.append(_figure(f"slowest /-/healthy, steady, {where}", probe.get("slowest_s"), "s",
                               note=f"{probe.get('over_1s')} of {probe.get('probes')} probes over 1 s"))
    figures.append(_figure(f"status writes, ramp, {where}", ramp.get("status_writes_per_s"), "writes/s"))
    tenant = raw.get("tenant", {})
    if tenant:
        figures.append(_figure(f"series at the tenant, {where}", tenant.get("series"), "series",
                               peers={"expected": tenant["series"] / tenant["series_expected"]}
                               if tenant.get("series_expected") else None))
    return {"bench": "bench_kube_scale", "figures": figures, "sweeps": [], "raw": dict(raw)}


# -- results, table, plots -----------------------------------------------------------------------------------


def _value_text(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if magnitude >= 0.1 or value == 0 else f"{value:.3g}"


def _peers_text(peers: Mapping[str, float]) -> str:
    return ", ".join(f"x{ratio:.2f} {peer}" if ratio >= 0.01 else f"x{ratio:.2g} {peer}"
                     for peer, ratio in peers.items())


def results_document(outcomes: Sequence[Outcome], *, quick: bool, load: Mapping[str, Any], total_s: float,
                     started: datetime.datetime, plots: Sequence[Path]) -> dict[str, Any]:
    figures, sweeps = [], []
    kube = None
    for outcome in outcomes:
        for figure in outcome.report.get("figures", []):
            figures.append({"bench": outcome.bench.name, **figure})
        for sweep in outcome.report.get("sweeps", []):
            sweeps.append({"bench": outcome.bench.name, **sweep})
        if outcome.bench.kube_scale and outcome.report:
            kube = outcome.report.get("raw")
    return {
        "generated_by": "make bench (bench/run_all.py)" + (" --quick" if quick else ""),
        "mode": "quick" if quick else "full",
        "date": started.isoformat(timespec="seconds"),
        "total_s": round(total_s, 1),
        "machine": machine(),
        "load": dict(load),
        "benches": [
            {
                "name": o.bench.name,
                "command": o.command,
                "status": o.status,
                "seconds": o.seconds,
                "returncode": o.returncode,
                "reason": o.reason,
                "load_average": o.report.get("load_average"),
            }
            for o in outcomes
        ],
        "figures": figures,
        "sweeps": sweeps,
        "kube_scale": kube,
        "plots": [str(path.relative_to(ROOT)) for path in plots],
    }


def print_table(document: Mapping[str, Any], console: Console) -> None:
    table = Table(title="make bench: figures against goals", show_lines=False, expand=False)
    for column, justify in (("bench", "left"), ("figure", "left"), ("value", "right"), ("unit", "left"),
                            ("goal", "left"), ("met", "center"), ("ratio to peers", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    previous = None
    for figure in document["figures"]:
        met = figure["met"]
        verdict = "" if met is None else "[green]met[/]" if met else "[red]missed[/]"
        bench = figure["bench"] if figure["bench"] != previous else ""
        if bench and previous is not None:
            table.add_section()
        previous = figure["bench"]
        table.add_row(bench, figure["name"], _value_text(figure["value"]), figure["unit"],
                      figure["goal"]["text"] if figure["goal"] else "", verdict, _peers_text(figure["peers"]))
    for bench in document["benches"]:
        if bench["status"] != "ok":
            table.add_section()
            table.add_row(bench["name"], f"[yellow]{bench['status']}[/]: {bench['reason']}", "", "", "", "", "")
    console.print(table)
    goals = [f for f in document["figures"] if f["met"] is not None]
    met = sum(1 for f in goals if f["met"])
    machine_info, load = document["machine"], document["load"]
    console.print(
        f"{met} of {len(goals)} goals met; {len(document['figures'])} figures from "
        f"{sum(1 for b in document['benches'] if b['status'] == 'ok')} of {len(document['benches'])} runs in "
        f"{document['total_s'] / 60:.1f} min on {machine_info['cores']} cores ({machine_info['cpu_model']}), "
        f"load average {load['mean_1min']} (max {load['max_1min']}) during the run"
    )


# -- main --------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every bench with less work (about 4 minutes)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this bench (repeatable), "
                        f"one of: {', '.join(b.name for b in BENCHES)}")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the results JSON")
    parser.add_argument("--plots", type=Path, default=PLOTS, help="where to write the PNG plots")
    args = parser.parse_args(argv)
    selected = [b for b in BENCHES if not args.only or b.name in args.only or b.name.split()[0] in args.only]
    if not selected:
        parser.error(f"--only matches none of: {', '.join(b.name for b in BENCHES)}")
    console = Console()
    if not console.is_terminal:  # a log file: wide enough that the table's rows do not fold
        console = Console(width=180)
    started_at = datetime.datetime.now(datetime.UTC)
    started = time.monotonic()
    outcomes = []
    sampler = LoadSampler()
    sampler.start()
    try:
        for bench in selected:
            outcomes.append(run_bench(bench, quick=args.quick))
    finally:
        load = sampler.stop()
    total_s = time.monotonic() - started
    document = results_document(outcomes, quick=args.quick, load=load, total_s=total_s, started=started_at,
                                plots=[])
    sys.path.insert(0, str(HERE))
    from plots import draw_all  # matplotlib is the bench extra's: imported only once figures exist

    plots = draw_all(document, args.plots)
    document["plots"] = [str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path) for path in plots]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print_table(document, console)
    console.print(f"results: {args.results}; plots: {', '.join(document['plots']) or 'none'}")
    failed = [o for o in outcomes if o.status not in ("ok", "missing") or (o.status == "missing"
                                                                            and not o.bench.optional)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
