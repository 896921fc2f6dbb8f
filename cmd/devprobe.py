"""Round-trip latency of each backend, measured by the dev console's own probe.

The backend pool reports health but no latency, so the console asks each backend itself:
every ``interval_s`` a ``GET /-/ready`` per target, timed. The targets come from a callable
(the pool's current list), so discovered targets are probed as they appear. Only the
newest answer per target is kept; a failed probe records its error instead of a latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx
import trio

__all__ = ["BackendProbe", "ProbeResult"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """The newest probe of one target."""

    latency_ms: float | None
    error: str | None


class BackendProbe:
    """Times ``GET /-/ready`` on every target of ``targets()`` every ``interval_s``."""

    def __init__(
        self, targets: Callable[[], Iterable[str]], *, interval_s: float = 2.0, timeout_s: float = 2.0
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s/timeout_s: must be positive")
        self._targets = targets
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._results: dict[str, ProbeResult] = {}

    def statistics(self) -> Mapping[str, ProbeResult]:
        """The newest result per target URL."""
        return dict(self._results)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe until cancelled."""
        async with httpx.AsyncClient(timeout=self._timeout_s, trust_env=False) as http:
            task_status.started()
            while True:
                targets = list(self._targets())
                async with trio.open_nursery() as nursery:
                    for url in targets:
                        nursery.start_soon(self._probe, http, url)
                self._results = {url: r for url, r in self._results.items() if url in targets}
                await trio.sleep(self._interval_s)

    async def _probe(self, http: httpx.AsyncClient, url: str) -> None:
        started = time.perf_counter()
        try:
            response = await http.get(f"{url}/-/ready")
        except httpx.HTTPError as exc:
            self._results[url] = ProbeResult(latency_ms=None, error=type(exc).__name__)
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.is_success:
            self._results[url] = ProbeResult(latency_ms=elapsed_ms, error=None)
        else:
            self._results[url] = ProbeResult(latency_ms=elapsed_ms, error=f"HTTP {response.status_code}")
