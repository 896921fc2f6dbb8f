"""Back-filling an infrastructure Prometheus with the test data set through ``promtool``.

:func:`start_prometheus_with_data` writes a :class:`~realservers.testdata.Dataset` as
OpenMetrics, turns it into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics``,
starts a Prometheus on those blocks and checks, by querying, that every sample is there.

What we found about Prometheus 2.42 and promtool blocks:

- promtool cuts blocks on 2 h boundaries (UTC epoch multiples), so the two-hour window lands
  in two blocks. Prometheus loads them at start-up and queries them at once, including the
  part of the window that is in the "head" range; there is nothing to wait for.
- Retention counts back from the newest block's end, not from the wall clock, so a
  two-hour data set never expires; we still pass a long ``--storage.tsdb.retention.time``.
- The head starts empty with its minimum valid time at the newest block's end: had this
  Prometheus scraped, samples older than the blocks would be out of bounds. It does not
  scrape, and nobody writes to it.
- There is no head data, so an instant query at the wall clock finds nothing once the last
  sample is older than the 5 min lookback. Query at ``data.end_s``, not at "now".
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realservers.processes import ServerNotReadyError, ServerProcess
from realservers.prometheus import PrometheusBinaries, current_binaries, infrastructure_prometheus
from realservers.testdata import Dataset, write_openmetrics

__all__ = ["PROMTOOL_BINARY", "LoadedPrometheus", "create_blocks", "start_prometheus_with_data"]

PROMTOOL_BINARY = "promtool"
"""Debian's; which promtool runs is :func:`realservers.prometheus.current_binaries`' unless given."""
_RETENTION = "3650d"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedPrometheus:
    """A running Prometheus and the data it holds. Read-only: tests must not write to it."""

    server: ServerProcess
    data: Dataset

    @property
    def url(self) -> str:
        return self.server.url


def create_blocks(openmetrics_path: Path, storage_dir: Path, *, binaries: PrometheusBinaries | None = None) -> None:
    """Run ``promtool tsdb create-blocks-from openmetrics`` into ``storage_dir``.

    Raises:
        RuntimeError: promtool failed; the message carries its output.
    """
    storage_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [(binaries or current_binaries()).promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
         str(openmetrics_path), str(storage_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"promtool exited with {result.returncode} for {openmetrics_path}:\n"
            f"{result.stdout[-2048:]}{result.stderr[-2048:]}"
        )


def start_prometheus_with_data(
    workdir: Path, dataset: Dataset, *, binaries: PrometheusBinaries | None = None
) -> LoadedPrometheus:
    """Start an infrastructure Prometheus holding exactly ``dataset`` (of the build ``binaries``).

    Raises:
        RuntimeError: promtool failed.
        ServerNotReadyError: Prometheus did not start, or does not return every sample.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    openmetrics_path = workdir / "dataset.om"
    storage_dir = workdir / "data"
    write_openmetrics(dataset, openmetrics_path)
    create_blocks(openmetrics_path, storage_dir, binaries=binaries)
    server = infrastructure_prometheus(workdir, storage_dir=storage_dir, retention=_RETENTION, binaries=binaries)
    server.start()
    try:
        _check_loaded(server, dataset)
    except BaseException:
        server.stop()
        raise
    return LoadedPrometheus(server=server, data=dataset)


def _check_loaded(server: ServerProcess, dataset: Dataset) -> None:
    # count_over_time drops __name__, so one query over every name would collide: ask per name.
    window_s = (dataset.end_ms - dataset.start_ms) // 1000 + 1
    checks = {'count({__name__=~".+"})': len(dataset.live_at(dataset.end_ms))}
    for name in dataset.metric_names:
        checks[f"sum(count_over_time({name}[{window_s}s]))"] = sum(
            len(s.samples) for s in dataset.select(name)
        )
    for query, expected in checks.items():
        found = _instant_value(server, query, dataset.end_s)
        if found != expected:
            raise ServerNotReadyError(
                f"{server.name} loaded from promtool blocks answers {found} to {query!r} at "
                f"{dataset.end_s}, expected {expected}:\n{server.log_tail()}"
            )


def _instant_value(server: ServerProcess, query: str, time_s: int) -> float | None:
    params = urllib.parse.urlencode({"query": query, "time": str(time_s)})
    try:
        with _OPENER.open(f"{server.url}/api/v1/query?{params}", timeout=30.0) as response:
            body: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:
        raise ServerNotReadyError(
            f"{server.name} refused {query!r}: {exc.code} {exc.read()[:512]!r}"
        ) from exc
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None
