"""Informer benchmark: 10,000 MetricAccess objects listed and watched, then 1,000 updates/s.

Figure: time for an ``Informer`` to list 10,000 MetricAccess objects (paged, 500 per
page) into its store and hand every one to a handler; then the handler throughput and
the end-to-end lag (write in the double -> watch event -> informer -> handler) while
1,000 updates per second stream for 5 s. Goal (issue "Controller runtime"): sync under
3 s, peak RSS under 150 MB, on one core.

The API double (generated CRD, 127.0.0.1, a thread of its own) and the informer (trio
in the main thread) share this process, and the process is pinned to one CPU, so the
double's work (admission, JSON encoding, HTTP) competes with the informer's for that one
core and its objects count in the RSS. To separate them, the CPU time of each thread is
read from its own clock (``time.thread_time`` in the informer's thread,
``pthread_getcpuclockid`` for the double's thread and the update driver's). RSS cannot
be split that way: the informer's share is estimated as the growth over the RSS before
it started. No timing is asserted; the script prints and exits 0.

``--sweep`` measures, instead, how the sync grows with the number of objects: one double
seeded in steps (1,000 to 20,000 objects; up to 10,000 with ``--quick``), and at each step a
fresh informer syncs and hands every object to a handler, timed as above. ``--quick``
streams updates for 2 s instead of 5; ``--json PATH`` also writes the figures
(``bench/figures.py``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Axis, Goal, Report, Sweep
from kubetesting import METRICACCESSES, load_crd, metricaccess, open_kube

from mtproxy.apidouble import RunningDouble, start_in_thread
from mtproxy.controller.informer import Change, ChangeType, Informer

OBJECTS = 10_000
NAMESPACES = 100
SEED_BATCH = 1_000
UPDATES_PER_S = 1_000
UPDATE_SECONDS = 5
TICK_S = 0.01
SYNC_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 60.0
SENT_AT = "bench.mtproxy/sent-at"
QUICK_UPDATE_SECONDS = 2
SWEEP_OBJECTS = (1_000, 2_000, 5_000, 10_000, 20_000)
QUICK_SWEEP_OBJECTS = (1_000, 2_000, 5_000, 10_000)
_SOURCE = 'issue "Controller runtime"'
GOAL_SYNC_S = Goal(op="<", bound=3.0, source=_SOURCE + ": 10,000 objects, one core")
GOAL_RSS_MB = Goal(op="<", bound=150.0, source=_SOURCE)


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _thread_cpu_s(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _object(index: int, *, sent_at: float | None = None) -> dict[str, Any]:
    namespace = f"bench-{index % NAMESPACES:03d}"
    body = metricaccess(namespace, f"access-{index:05d}", metrics=["up", 'http_requests_total{job="app"}'])
    if sent_at is not None:
        body["metadata"]["annotations"] = {SENT_AT: f"{sent_at:.9f}"}
    return body


def _pin_to_one_cpu() -> str:
    # Threads inherit the affinity of the thread that creates them: pin before any start.
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


class Handler:
    """Counts ADDED until every object arrived, then the lag of each UPDATED."""

    def __init__(self, objects: int = OBJECTS) -> None:
        self.objects = objects
        self.added = 0
        self.all_added = trio.Event()
        self.added_at = 0.0
        self.lags_s: list[float] = []
        self.last_update_at = 0.0
        self.updates_expected = 0
        self.all_updated = trio.Event()

    def __call__(self, change: Change) -> None:
        now = time.perf_counter()
        if change.type is ChangeType.ADDED:
            self.added += 1
            if self.added == self.objects:
                self.added_at = now
                self.all_added.set()
        elif change.type is ChangeType.UPDATED:
            sent = (change.new["metadata"].get("annotations") or {}).get(SENT_AT)
            if sent is not None:
                self.lags_s.append(now - float(sent))
                self.last_update_at = now
                if self.updates_expected and len(self.lags_s) >= self.updates_expected:
                    self.all_updated.set()


def _drive_updates(double: RunningDouble, result: dict[str, float], seconds: float) -> None:
    """Write UPDATES_PER_S updates per second for ``seconds``, in ticks, from this thread."""
    per_tick = int(UPDATES_PER_S * TICK_S)
    ticks = int(seconds / TICK_S)
    started = time.perf_counter()
    sent = 0
    for tick in range(ticks):
        delay = started + tick * TICK_S - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        now = time.perf_counter()
        double.seed([_object((tick * per_tick + i) % OBJECTS, sent_at=now) for i in range(per_tick)])
        sent += per_tick
    result["sent"] = sent
    result["elapsed_s"] = time.perf_counter() - started
    result["driver_cpu_s"] = time.thread_time()


async def _measure(
    double: RunningDouble, double_thread: threading.Thread, rss_before_mb: float, update_seconds: float,
    report: Report,
) -> None:
    client, http = open_kube(double.url)
    handler = Handler()
    informer = Informer(client, METRICACCESSES, backoff_initial_s=0.05, backoff_max_s=0.5)
    informer.add_handler(handler)
    async with http, trio.open_nursery() as nursery:
        wall0, cpu0, double_cpu0 = time.perf_counter(), time.thread_time(), _thread_cpu_s(double_thread)
        await nursery.start(informer.run)
        with trio.move_on_after(SYNC_TIMEOUT_S) as sync_deadline:
            await informer.wait_synced()
            synced_at = time.perf_counter()
            await handler.all_added.wait()
        if sync_deadline.cancelled_caught:
            print(f"sync: TIMED OUT after {SYNC_TIMEOUT_S:.0f} s ({len(informer.store)} objects stored)")
            nursery.cancel_scope.cancel()
            return
        sync_s = synced_at - wall0
        handled_s = handler.added_at - wall0
        informer_cpu = time.thread_time() - cpu0
        double_cpu = _thread_cpu_s(double_thread) - double_cpu0
        print(f"sync: {len(informer.store):,} objects in {sync_s:.2f} s = {OBJECTS / sync_s:,.0f} objects/s "
              f"(goal < 3 s: {sync_s / 3.0:.2f} of the budget)")
        print(f"sync: every ADDED handled after {handled_s:.2f} s = {OBJECTS / handled_s:,.0f} objects/s")
        larger = "the double's own cost dominates" if double_cpu > informer_cpu else "the informer's cost dominates"
        print(f"sync CPU over those {handled_s:.2f} s: informer thread {informer_cpu:.2f} s, apidouble thread "
              f"{double_cpu:.2f} s ({double_cpu / (informer_cpu + double_cpu):.0%} of the two: {larger}); "
              f"the informer alone: {OBJECTS / informer_cpu:,.0f} objects per CPU-second")
        print(f"RSS after sync: {_rss_mb():.0f} MB (before the informer: {rss_before_mb:.0f} MB, "
              f"growth {_rss_mb() - rss_before_mb:.0f} MB)")
        report.add(f"informer sync of {OBJECTS:,} objects", sync_s, "s", goal=GOAL_SYNC_S,
                   note="list (500 per page) into the store; the API double shares the one pinned CPU")
        report.add("informer sync, every ADDED handled", OBJECTS / handled_s, "objects/s")
        report.add("informer CPU per object synced", informer_cpu / OBJECTS * 1e6, "µs",
                   peers={"API double (same objects)": informer_cpu / double_cpu})

        handler.updates_expected = int(UPDATES_PER_S * update_seconds)
        driven: dict[str, float] = {}
        driver = threading.Thread(target=_drive_updates, args=(double, driven, update_seconds), name="bench-driver")
        wall1, cpu1, double_cpu1 = time.perf_counter(), time.thread_time(), _thread_cpu_s(double_thread)
        driver.start()
        await trio.to_thread.run_sync(driver.join)
        with trio.move_on_after(DRAIN_TIMEOUT_S) as drain_deadline:
            await handler.all_updated.wait()
        elapsed = time.perf_counter() - wall1
        informer_cpu = time.thread_time() - cpu1
        double_cpu = _thread_cpu_s(double_thread) - double_cpu1
        nursery.cancel_scope.cancel()

    got = len(handler.lags_s)
    lags_ms = sorted(lag * 1000 for lag in handler.lags_s) or [float("nan")]
    p99 = lags_ms[min(len(lags_ms) - 1, int(len(lags_ms) * 0.99))]
    sent = int(driven.get("sent", 0))
    print(f"updates: {sent:,} written in {driven.get('elapsed_s', 0):.2f} s = "
          f"{sent / max(driven.get('elapsed_s', 1), 1e-9):,.0f} updates/s written (target {UPDATES_PER_S:,}/s)")
    drained = "" if not drain_deadline.cancelled_caught else f" (drain TIMED OUT after {DRAIN_TIMEOUT_S:.0f} s)"
    print(f"updates: {got:,} handled in {elapsed:.2f} s = {got / elapsed:,.0f} updates/s handled{drained}")
    print(f"update lag (write -> handler): p50 {statistics.median(lags_ms):.1f} ms, p99 {p99:.1f} ms, "
          f"max {lags_ms[-1]:.1f} ms")
    print(f"update CPU: informer thread {informer_cpu:.2f} s ({informer_cpu / elapsed:.0%} of the core), "
          f"apidouble thread {double_cpu:.2f} s ({double_cpu / elapsed:.0%}), "
          f"driver thread {driven.get('driver_cpu_s', 0):.2f} s")
    print(f"informer CPU per update: {informer_cpu / max(got, 1) * 1e6:.0f} us")
    report.add(f"updates handled while {UPDATES_PER_S:,}/s are written", got / elapsed, "updates/s",
               peers={"written": (got / elapsed) / max(sent / max(driven.get("elapsed_s", 1), 1e-9), 1e-9)})
    report.add("update lag p99 (write -> handler)", p99, "ms",
               note="the writer, the double and the informer share one pinned CPU")
    report.add("informer CPU per update", informer_cpu / max(got, 1) * 1e6, "µs")


async def _sync_once(double: RunningDouble, double_thread: threading.Thread, objects: int) -> dict[str, float]:
    """A fresh informer's sync of the ``objects`` the double holds: wall and CPU seconds."""
    client, http = open_kube(double.url)
    handler = Handler(objects)
    informer = Informer(client, METRICACCESSES, backoff_initial_s=0.05, backoff_max_s=0.5)
    informer.add_handler(handler)
    async with http, trio.open_nursery() as nursery:
        wall0, cpu0, double_cpu0 = time.perf_counter(), time.thread_time(), _thread_cpu_s(double_thread)
        await nursery.start(informer.run)
        with trio.fail_after(SYNC_TIMEOUT_S):
            await informer.wait_synced()
            synced_at = time.perf_counter()
            await handler.all_added.wait()
        result = {
            "sync_s": synced_at - wall0,
            "handled_s": handler.added_at - wall0,
            "informer_cpu_s": time.thread_time() - cpu0,
            "double_cpu_s": _thread_cpu_s(double_thread) - double_cpu0,
        }
        nursery.cancel_scope.cancel()
    return result


def _sweep(double: RunningDouble, counts: tuple[int, ...], report: Report) -> None:
    (double_thread,) = [t for t in threading.enumerate() if t.name == "apidouble"]
    seeded = 0
    lines: dict[str, list[tuple[float, float]]] = {
        "sync, every ADDED handled (wall)": [], "informer thread CPU": [], "API double thread CPU": [],
    }
    for count in counts:
        for first in range(seeded, count, SEED_BATCH):
            double.seed([_object(i) for i in range(first, min(first + SEED_BATCH, count))])
        seeded = count
        result = trio.run(_sync_once, double, double_thread, count)
        print(f"sweep: {count:>6,} objects synced in {result['sync_s']:.2f} s, handled in {result['handled_s']:.2f} s; "
              f"CPU informer {result['informer_cpu_s']:.2f} s, double {result['double_cpu_s']:.2f} s")
        lines["sync, every ADDED handled (wall)"].append((count, result["handled_s"]))
        lines["informer thread CPU"].append((count, result["informer_cpu_s"]))
        lines["API double thread CPU"].append((count, result["double_cpu_s"]))
    largest = counts[-1]
    report.add(f"informer sync of {largest:,} objects, every ADDED handled (sweep)",
               lines["sync, every ADDED handled (wall)"][-1][1], "s",
               peers={f"{counts[0]:,} objects": lines["sync, every ADDED handled (wall)"][-1][1]
                      / lines["sync, every ADDED handled (wall)"][0][1]})
    report.add_sweep(Sweep(
        name="informer sync time vs objects", plot="informer_sync_vs_objects",
        x=Axis(label="MetricAccess objects listed", unit="objects"), y=Axis(label="time", unit="s"),
        lines=lines, log_x=True, log_y=True,
        note="a fresh informer per point; the double (same process, same pinned CPU) serves the list",
    ))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="sync time against the number of objects")
    parser.add_argument("--quick", action="store_true", help="shorter update stream, smaller sweep")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    pinned = _pin_to_one_cpu()
    if args.sweep:
        report = Report("bench_informer --sweep")
        counts = QUICK_SWEEP_OBJECTS if args.quick else SWEEP_OBJECTS
        print(f"bench_informer --sweep: {', '.join(f'{n:,}' for n in counts)} MetricAccess objects in {NAMESPACES} "
              f"namespaces; the API double and the informer share this process, {pinned}")
        double = start_in_thread(history_limit=2 * max(counts))
        try:
            double.seed([load_crd()])
            _sweep(double, counts, report)
        finally:
            double.stop()
        report.write(args.json)
        return 0
    report = Report("bench_informer")
    print(f"bench_informer: {OBJECTS:,} MetricAccess objects in {NAMESPACES} namespaces; the API double and the "
          f"informer share this process, {pinned}")
    started = time.perf_counter()
    double = start_in_thread(history_limit=20_000)
    try:
        double.seed([load_crd()])
        for first in range(0, OBJECTS, SEED_BATCH):
            double.seed([_object(i) for i in range(first, min(first + SEED_BATCH, OBJECTS))])
        print(f"setup: seeded {OBJECTS:,} objects into the double in {time.perf_counter() - started:.2f} s "
              f"(not part of the figure)")
        (double_thread,) = [t for t in threading.enumerate() if t.name == "apidouble"]
        rss_before = _rss_mb()
        update_seconds = QUICK_UPDATE_SECONDS if args.quick else UPDATE_SECONDS
        trio.run(_measure, double, double_thread, rss_before, update_seconds, report)
    finally:
        double.stop()
    peak = _peak_rss_mb()
    print(f"peak RSS: {peak:.0f} MB for the whole process, double included (goal < 150 MB: {peak / 150:.2f} of "
          f"the budget); the informer's share is at most {peak - rss_before:.0f} MB over the "
          f"{rss_before:.0f} MB held before it started")
    report.add("peak RSS, informer and API double together", peak, "MB", goal=GOAL_RSS_MB,
               note=f"the informer's share is at most {peak - rss_before:.0f} MB")
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
