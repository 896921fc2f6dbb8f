"""The red-team's huge query (issue 15, finding 6): 200 selectors, each one large regex, about 2.7 MB.

Used by the loop-freedom test and ``bench/bench_loop_free.py``. No selector names a metric,
so every rule of a policy can admit what it selects: a policy whose rules differ in more
than one label writes each selector once per rule.
"""

from __future__ import annotations

from .proxyharness import metric_access

__all__ = ["MERGED_ACCESS", "ONE_RULE_ACCESS", "huge_query"]

SELECTORS = 200
ALTERNATIVES = 1_300


def huge_query(selectors: int = SELECTORS, alternatives: int = ALTERNATIVES) -> str:
    """``{pod=~"p0_00000|p0_00001|…"} or {pod=~"p1_…"} or …``: about 2.7 MB with the defaults.

    The names use no character the parser's nesting pre-check counts (``-``, ``+`` …).
    """
    regexes = ("|".join(f"p{i}_{j:05d}" for j in range(alternatives)) for i in range(selectors))
    return " or ".join(f'{{pod=~"{regex}"}}' for regex in regexes)


ONE_RULE_ACCESS = [metric_access("team-a", "app", ["http_.*", "up", "process_.*"])]
"""Isolated name patterns only: they differ in ``__name__`` alone, so they merge into one rule."""

MERGED_ACCESS = [
    metric_access("team-b", "app", ["http_requests_total", "up"]),
    metric_access("team-b", "nodes", ["node_load.*"], isolation=False, label_selectors={"job": "node-exporter"}),
    metric_access("team-b", "state", ['{job="kube-state-metrics"}']),
]
"""Rules differing in several labels: each selector is written once per compatible rule (4 times)."""
