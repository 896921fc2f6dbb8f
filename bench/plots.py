"""The PNG plots of ``bench/results.json``: how each cost grows with the work.

One PNG per plot name (``bench/plots/<name>.png``): the sweeps the benches wrote
(``bench/figures.py``; sweeps sharing a plot name are drawn side by side) and the ramp of
the 1,000-tenant bench (``bench_kube_scale.py``'s timeline: objects Ready, the service's CPU
and RSS against time, with the goal of 2 intervals). Every plot names the machine and the
load it ran under, since on a shared 2-core machine the load is part of the figure.

Run as a script to redraw from an existing results file: ``python bench/plots.py
[bench/results.json]``. matplotlib's Agg backend draws without a display.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = ["draw_all"]

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results.json"
DEFAULT_OUT = HERE / "plots"
_DPI = 110
_SUBPLOT_SIZE = (6.4, 4.6)
# One colour per subject across every plot, so "mtproxy" reads the same everywhere.
_COLOURS = {
    "direct": "#4c4c4c",
    "mtproxy": "#d62728",
    "prom-label-proxy": "#1f77b4",
    "vmauth": "#2ca02c",
}
_FALLBACK = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")
_TITLES = {
    "proxy_latency_vs_series": "Query latency against the size of the answer (one tenant's instant query, c=1)",
    "proxy_cpu_vs_series": "CPU each proxy spends per request against the size of the answer",
    "remote_write_cpu_vs_series": "Forwarding cost against the number of series forwarded",
    "informer_sync_vs_objects": "Informer sync against the number of MetricAccess objects",
}


def _colour(subject: str, index: int) -> str:
    for key, colour in _COLOURS.items():
        if subject.startswith(key):
            return colour
    return _FALLBACK[index % len(_FALLBACK)]


def _machine_line(results: Mapping[str, Any]) -> str:
    machine = results.get("machine", {})
    load = results.get("load", {})
    return (
        f"{machine.get('cores', '?')} cores ({machine.get('cpu_model', '?')}), "
        f"{machine.get('memory_gib', '?')} GiB, Python {machine.get('python', '?')}, "
        f"load average {load.get('mean_1min', '?')} (max {load.get('max_1min', '?')}) during the run, "
        f"{results.get('date', '')[:10]}, commit {str(machine.get('git_commit', ''))[:10]}"
    )


def _plain(value: float, _: object = None) -> str:
    """Tick labels as plain numbers (1,000 not 10^3; 0.02 not 2x10^-2)."""
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def _log_ticks(axis: Axis) -> None:
    """Ticks at 1, 2 and 5 of each decade, labelled plainly: a log axis should read without a calculator."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(NullFormatter())


def _draw_sweep(axes: Axes, sweep: Mapping[str, Any]) -> None:
    for index, (subject, points) in enumerate(sweep["lines"].items()):
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        style = "--" if "VictoriaMetrics" in subject else "-"
        axes.plot(xs, ys, style, marker="o", markersize=4, label=subject, color=_colour(subject, index))
    if sweep.get("goal_y") is not None:
        axes.axhline(sweep["goal_y"], color="black", linestyle=":", linewidth=1,
                     label=f"goal {sweep['goal_y']:,.0f} {sweep['y']['unit']}")
    if sweep.get("log_x"):
        axes.set_xscale("log")
        _log_ticks(axes.xaxis)
    else:
        axes.xaxis.set_major_formatter(FuncFormatter(_plain))
    if sweep.get("log_y"):
        axes.set_yscale("log")
        _log_ticks(axes.yaxis)
    else:
        axes.yaxis.set_major_formatter(FuncFormatter(_plain))
        axes.set_ylim(bottom=0)
    axes.set_xlabel(f"{sweep['x']['label']} ({sweep['x']['unit']})")
    axes.set_ylabel(f"{sweep['y']['label']} ({sweep['y']['unit']})")
    axes.set_title(sweep["name"], fontsize=11)
    axes.grid(True, which="major", alpha=0.4)
    axes.grid(True, which="minor", alpha=0.12)
    axes.legend(fontsize=8)


def _save(figure: Any, path: Path, *, title: str, footer: str) -> Path:
    figure.suptitle(title, fontsize=12)
    figure.text(0.01, 0.005, footer, fontsize=7, color="#555555", ha="left", va="bottom", wrap=True)
    figure.tight_layout(rect=(0, 0.05, 1, 0.93))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return path


def draw_sweeps(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for sweep in results.get("sweeps", []):
        groups.setdefault(sweep["plot"], []).append(sweep)
    paths = []
    for plot, sweeps in groups.items():
        width, height = _SUBPLOT_SIZE
        figure, axes_list = plt.subplots(1, len(sweeps), figsize=(max(width * len(sweeps), 8.5), height + 0.9),
                                         squeeze=False)
        for axes, sweep in zip(axes_list[0], sweeps, strict=True):
            _draw_sweep(axes, sweep)
        notes = sorted({sweep.get("note", "") for sweep in sweeps} - {""})
        footer = "; ".join([*notes, _machine_line(results)])
        title = f"{_TITLES.get(plot, plot.replace('_', ' '))}\n({sweeps[0]['bench']})"
        paths.append(_save(figure, out_dir / f"{plot}.png", title=title, footer=footer))
    return paths


def draw_kube_round(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """The ramp of ``bench_kube_scale``: Ready objects, CPU and RSS against time since the service started."""
    kube = results.get("kube_scale")
    if not kube or not kube.get("timeline"):
        return []
    parameters = kube.get("parameters", {})
    objects = parameters.get("objects", 0)
    interval_s = float(parameters.get("interval_s", 30.0))
    goal_intervals = float(kube.get("goals", {}).get("all_ready_intervals", 2.0))
    timeline: Sequence[Mapping[str, float]] = kube["timeline"]
    t = [point["t_s"] for point in timeline]
    width, height = _SUBPLOT_SIZE
    figure, (ready_axes, cost_axes) = plt.subplots(1, 2, figsize=(width * 2, height + 0.9))

    ready_axes.plot(t, [point["ready"] for point in timeline], color=_COLOURS["mtproxy"], label="objects Ready=True")
    ready_axes.axhline(objects, color="#4c4c4c", linestyle="--", linewidth=1, label=f"all {objects:,} objects")
    ready_axes.axvline(goal_intervals * interval_s, color="black", linestyle=":", linewidth=1,
                       label=f"goal: all Ready within {goal_intervals:g} intervals ({goal_intervals * interval_s:g} s)")
    ready = kube.get("ramp", {}).get("all_ready_s")
    if ready is not None:
        ready_axes.axvline(ready, color=_COLOURS["mtproxy"], linestyle="-.", linewidth=1,
                           label=f"all Ready after {ready:.1f} s")
    ready_axes.set_xlim(0, max(t[-1], goal_intervals * interval_s) * 1.05)
    ready_axes.set_ylim(0, objects * 1.08)
    ready_axes.set_xlabel("time since the service process started (s)")
    ready_axes.set_ylabel("MetricAccess objects Ready=True (objects)")
    ready_axes.set_title(f"ramp: {objects:,} objects in {parameters.get('namespaces', objects):,} namespaces, "
                         f"interval {interval_s:g} s", fontsize=11)
    ready_axes.grid(True, alpha=0.4)
    ready_axes.legend(fontsize=8, loc="lower right")

    cost_axes.plot(t, [point["cpu_s"] for point in timeline], color=_COLOURS["mtproxy"],
                   label="service CPU, cumulative (CPU-s)")
    cost_axes.set_xlabel("time since the service process started (s)")
    cost_axes.set_ylabel("service CPU, cumulative (CPU-s)")
    rss_axes = cost_axes.twinx()
    rss_axes.plot(t, [point["rss_mb"] for point in timeline], color=_COLOURS["prom-label-proxy"],
                  label="service RSS (MB)")
    rss_axes.set_ylabel("service RSS (MB)")
    cost_axes.set_xlim(0, max(t[-1], goal_intervals * interval_s) * 1.05)
    cost_axes.set_ylim(0, max(point["cpu_s"] for point in timeline) * 1.15)
    rss_axes.set_ylim(0, max(point["rss_mb"] for point in timeline) * 1.15)
    steady = kube.get("steady") or {}
    title = "service cost during the ramp"
    if steady:
        share = steady["cpu_share_of_one_core_per_round"] * interval_s / 30.0
        title += f"; steady: {steady['cpu_s_per_round']:.2f} CPU-s per round = {share:.1%} of a core at 30 s"
    cost_axes.set_title(title, fontsize=10)
    cost_axes.grid(True, alpha=0.4)
    lines = cost_axes.get_lines() + rss_axes.get_lines()
    cost_axes.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower right")
    footer = (f"API server: {parameters.get('api_server', '?')}; one tenant Prometheus receives every job; "
              + _machine_line(results))
    title = f"The {objects:,}-tenant round: every object Ready, and what it cost\n(bench_kube_scale)"
    return [_save(figure, out_dir / "kube_scale_round.png", title=title, footer=footer)]


def draw_all(results: Mapping[str, Any], out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Every plot of ``results`` into ``out_dir``; the paths written."""
    return draw_sweeps(results, out_dir) + draw_kube_round(results, out_dir)


def main(argv: Sequence[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_RESULTS
    for written in draw_all(json.loads(path.read_text(encoding="utf-8"))):
        print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
