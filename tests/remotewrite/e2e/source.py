"""The tenants' series at the source: pushed to a Pushgateway the infrastructure Prometheus scrapes.

Each namespace is one Pushgateway group (``job=src, namespace=<ns>``) holding a few
``e2e_*`` series. Every ``tick_s`` the driver gives each series a new value (a random
full-precision float for gauges, a random increase for counters, so a sample can only
equal its copy) and PUTs each group whole. The infrastructure Prometheus scrapes the
Pushgateway every second with ``honor_labels``, so its series are
``e2e_gauge{job="src", namespace="<ns>", series="<i>"}``.

Removing a series (``remove_series``) leaves it out of the next PUT, so the next scrape
misses it and the infrastructure Prometheus writes a staleness marker, as it would for a
pod that went away; ``remove_namespace`` DELETEs the group. ``freeze`` stops a namespace's
values from changing (its series keep being scraped).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx
import trio

__all__ = ["SOURCE_JOB", "SourceDriver"]

SOURCE_JOB = "src"


@dataclass(slots=True)
class _Group:
    values: dict[tuple[str, str], float]
    """(metric name, series label) → current value."""
    frozen: bool = False
    removed: set[tuple[str, str]] = field(default_factory=set)


class SourceDriver:
    """Pushes changing series of several namespaces to the source Pushgateway."""

    def __init__(self, http: httpx.AsyncClient, pushgateway_url: str, *, tick_s: float = 0.5, seed: int = 1) -> None:
        self._http = http
        self._url = pushgateway_url.rstrip("/")
        self._tick_s = tick_s
        self._random = random.Random(seed)
        self._groups: dict[str, _Group] = {}
        self._lock = trio.Lock()
        """Held for each PUT and DELETE: a PUT still under way when its namespace is removed would recreate it."""
        self.pushes = 0
        self.errors: list[str] = []

    def add_namespace(self, namespace: str, *, gauges: int = 3, counters: int = 2) -> None:
        values: dict[tuple[str, str], float] = {}
        for index in range(gauges):
            values[("e2e_gauge", str(index))] = self._random.uniform(-1000, 1000)
        for index in range(counters):
            values[("e2e_requests_total", str(index))] = 0.0
        self._groups[namespace] = _Group(values=values)

    def set_value(self, namespace: str, name: str, series: str, value: float) -> None:
        self._groups[namespace].values[(name, series)] = value

    def values(self, namespace: str) -> dict[tuple[str, str], float]:
        """The values of the namespace's live series, as last pushed or about to be."""
        return dict(self._groups[namespace].values)

    def freeze(self, namespace: str) -> None:
        self._groups[namespace].frozen = True

    def remove_series(self, namespace: str, name: str, series: str) -> None:
        group = self._groups[namespace]
        group.values.pop((name, series), None)

    async def remove_namespace(self, namespace: str) -> None:
        """Delete the group at once (every series goes stale at the next scrape)."""
        async with self._lock:
            self._groups.pop(namespace, None)
            response = await self._http.delete(f"{self._url}/metrics/job/{SOURCE_JOB}/namespace/{namespace}")
            response.raise_for_status()

    def _advance(self, group: _Group) -> None:
        if group.frozen:
            return
        for key in group.values:
            name, _ = key
            if name.endswith("_total"):
                group.values[key] += self._random.uniform(0.001, 10.0)
            else:
                group.values[key] = self._random.uniform(-1000, 1000)

    @staticmethod
    def _body(group: _Group) -> bytes:
        lines = []
        for (name, series), value in sorted(group.values.items()):
            lines.append(f'{name}{{series="{series}"}} {value!r}')
        return ("\n".join(lines) + "\n").encode() if lines else b""

    async def push_once(self) -> None:
        for namespace in list(self._groups):
            async with self._lock:
                group = self._groups.get(namespace)
                if group is None:
                    continue  # removed meanwhile: pushing it would bring it back
                self._advance(group)
                try:
                    response = await self._http.put(
                        f"{self._url}/metrics/job/{SOURCE_JOB}/namespace/{namespace}", content=self._body(group)
                    )
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    self.errors.append(f"{namespace}: {exc}")
        self.pushes += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Push every ``tick_s`` until cancelled; started once the first push is done."""
        await self.push_once()
        task_status.started()
        while True:
            await trio.sleep(self._tick_s)
            await self.push_once()
