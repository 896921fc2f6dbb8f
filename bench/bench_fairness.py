"""Fairness benchmark: a light tenant's latency while another floods the proxy with slow queries.

One tenant (team-a) sends N slow queries at once to a scripted backend that holds each for
1.5 s; meanwhile another (team-c) sends 30 light queries one after another. Printed per
flood size and per share setting: team-c's median, p90 and slowest latency with no load and
under the flood (and their ratio), and what team-a got back. ``max_concurrent_requests`` is 4;
the default share is a quarter (1 per tenant), and "no share" sets the per-tenant share to
all 4 slots, which is how one shared limiter behaved before the fair queue.

Reuses the tests' proxy harness and slow backend (``tests/proxy``). Nothing is asserted;
``tests/proxy/test_fairness.py`` holds the goal (median within 1.5x, issue "Hostile tenants",
at a flood of 12). ``--quick`` runs the flood of 12 only; ``--json PATH`` also writes the
figures (``bench/figures.py``).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from figures import Goal, Report  # noqa: E402
from proxy.proxyharness import RunningProxy, metric_access, start_proxy  # noqa: E402
from proxy.slowbackend import start_slow_backend  # noqa: E402

from mtproxy.api import ProxyConfig  # noqa: E402

SLOW_S = 1.5
LIGHT = 30
ACCESS = [metric_access("team-a", "app", ["slow_.*"]), metric_access("team-c", "app", ["up"])]
FLOODS = (4, 12, 24)
GOAL_FLOOD = 12
GOAL_RATIO = Goal(op="<=", bound=1.5, source='issue "Hostile tenants": light median x unloaded, 12 slow queries')
GOAL_OTHER_ANSWERS = Goal(op="<=", bound=0, source='issue "Hostile tenants": every request answered 200 or 429')


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    unloaded_s: list[float]
    loaded_s: list[float]
    other_answers: int
    """Answers to either tenant other than 200 or 429."""


async def _light(proxy: RunningProxy, statuses: collections.Counter[int]) -> list[float]:
    latencies = []
    for _ in range(LIGHT):
        started = time.perf_counter()
        response = await proxy.get("/api/v1/query", {"query": "up"}, tenant="team-c")
        latencies.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
    return latencies


def _ms(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms, p90 {p90 * 1000:7.2f}, max {ordered[-1] * 1000:7.1f}"


async def _run(label: str, config: ProxyConfig, flood: int) -> Outcome:
    async with trio.open_nursery() as nursery:
        backend = await start_slow_backend(nursery, slow_s=SLOW_S)
        proxy = await start_proxy(nursery, backend.url, access=ACCESS, config=config)
        light_statuses: collections.Counter[int] = collections.Counter()
        await _light(proxy, light_statuses)  # warm
        unloaded = await _light(proxy, light_statuses)
        heavy: collections.Counter[int] = collections.Counter()

        async def slow() -> None:
            response = await proxy.get("/api/v1/query", {"query": "slow_query"}, tenant="team-a")
            heavy[response.status_code] += 1

        async with trio.open_nursery() as flood_nursery:
            for _ in range(flood):
                flood_nursery.start_soon(slow)
            await backend.wait_slow_running(1)
            await trio.sleep(0.2)
            loaded = await _light(proxy, light_statuses)
        ratio = statistics.median(loaded) / statistics.median(unloaded)
        print(f"{label:>9} flood {flood:2d}: team-c unloaded {_ms(unloaded)}")
        print(
            f"{'':>19}team-c loaded   {_ms(loaded)}  x{ratio:.2f}; team-c {dict(light_statuses)}, team-a {dict(heavy)}"
        )
        nursery.cancel_scope.cancel()
    other = sum(count for status, count in (light_statuses + heavy).items() if status not in (200, 429))
    return Outcome(unloaded_s=unloaded, loaded_s=loaded, other_answers=other)


async def _main(floods: tuple[int, ...], report: Report) -> None:
    other_answers = 0
    for flood in floods:
        share = await _run("share 1", ProxyConfig(max_concurrent_requests=4, queue_timeout="2s"), flood)
        no_share_config = ProxyConfig(
            max_concurrent_requests=4, max_concurrent_requests_per_tenant=4, queue_timeout="2s"
        )
        no_share = await _run("no share", no_share_config, flood)
        other_answers += share.other_answers + no_share.other_answers
        median = statistics.median
        loaded, unloaded = median(share.loaded_s), median(share.unloaded_s)
        report.add(f"light tenant's median, flood of {flood} (share 1), over its unloaded median", loaded / unloaded,
                   "x", goal=GOAL_RATIO if flood == GOAL_FLOOD else None,
                   peers={"no share (one limiter)": (loaded / unloaded)
                          / (median(no_share.loaded_s) / median(no_share.unloaded_s))},
                   note=f"{loaded * 1000:.2f} ms loaded, {unloaded * 1000:.2f} ms unloaded")
        report.add(f"light tenant's slowest query, flood of {flood} (share 1)", max(share.loaded_s) * 1000, "ms",
                   peers={"no share (one limiter)": max(share.loaded_s) / max(no_share.loaded_s)})
    report.add("answers other than 200 or 429 (Retry-After), every flood", other_answers, "requests",
               goal=GOAL_OTHER_ANSWERS)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the flood of {GOAL_FLOOD} only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    print(f"max_concurrent_requests 4, queue_timeout 2s, slow queries held {SLOW_S} s, {LIGHT} light queries")
    report = Report("bench_fairness")
    trio.run(_main, (GOAL_FLOOD,) if args.quick else FLOODS, report)
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
