"""The demo servers of ``mtproxy dev``: real Prometheus servers around a live demo exporter.

- a demo exporter (in this process) serving metrics that change at every scrape, labelled
  with the namespaces team-a, team-b and kube-system, plus cluster-wide node series;
- the infrastructure Prometheus (Debian's ``prometheus``) scraping it every second: the
  proxy's backend and the forwarder's source;
- one tenant Prometheus per demo tenant, with ``--web.enable-remote-write-receiver``: where
  that tenant's MetricAccess forwards (reached through ``remote_write.host_aliases``);
- a Pushgateway (``prometheus-pushgateway``), the destination of a pushgateway target.

Each server has a temporary directory under the run's work directory, which ``mtproxy dev``
removes at the end. A missing binary is not an error here: :func:`missing_binaries` names
what to install, and the stack starts whatever it can (without Prometheus there is no
backend, and the proxy answers 503 until one appears).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from mtproxy.cmd.devports import LOOPBACK, DevPorts
from mtproxy.cmd.devprocess import ChildFailed, ChildServer, ChildState, ChildStatistics
from mtproxy.proxy.server import HTTPServer, answer_lifespan

__all__ = [
    "APT_PACKAGES",
    "DEMO_NAMESPACES",
    "DemoExporter",
    "DemoStack",
    "DemoStackStatistics",
    "missing_binaries",
]

logger = logging.getLogger(__name__)

PROMETHEUS_BINARY = "prometheus"
PUSHGATEWAY_BINARY = "prometheus-pushgateway"
APT_PACKAGES = {PROMETHEUS_BINARY: "prometheus", PUSHGATEWAY_BINARY: "prometheus-pushgateway"}
"""Binary name to the Debian package that ships it."""
DEMO_NAMESPACES = ("team-a", "team-b", "kube-system")
"""Namespaces the demo exporter's series carry."""


def missing_binaries() -> list[str]:
    """The demo's server binaries that are not on ``PATH``."""
    return [binary for binary in APT_PACKAGES if shutil.which(binary) is None]


class DemoExporter:
    """An ASGI app serving demo metrics that change at every scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "http_requests", "Demo requests.", ["namespace", "job", "method", "code"], registry=self.registry
        )
        self._cpu = Counter(
            "container_cpu_usage_seconds", "Demo CPU.", ["namespace", "pod", "container"], registry=self.registry
        )
        self._up = Gauge("app_up", "Demo application health.", ["namespace", "job"], registry=self.registry)
        self._node = Counter("node_cpu_seconds", "Demo node CPU.", ["node", "mode"], registry=self.registry)
        self._started = time.time()

    def _tick(self) -> None:
        phase = time.time() - self._started
        for namespace, factor in zip(DEMO_NAMESPACES, (1.0, 2.0, 0.5), strict=True):
            for method in ("GET", "POST"):
                for code in ("200", "500"):
                    rate = factor * (5 if code == "200" else 0.2) * (1.5 + math.sin(phase / 30))
                    self._requests.labels(namespace, "api", method, code).inc(rate)
            for pod in range(2):
                self._cpu.labels(namespace, f"api-{pod}", "app").inc(0.1 * factor)
            self._up.labels(namespace, "api").set(1)
        for mode in ("idle", "user", "system"):
            self._node.labels("node-1", mode).inc(1.0 if mode == "idle" else 0.2)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self._tick()
        body = generate_latest(self.registry)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def _infra_config(exporter_port: int) -> str:
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: demo\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['{LOOPBACK}:{exporter_port}']}}]\n"
    )


def _prometheus(name: str, directory: Path, port: int, config: str, *, receiver: bool) -> ChildServer:
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "prometheus.yml"
    config_path.write_text(config, encoding="utf-8")
    argv = [
        PROMETHEUS_BINARY,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--storage.tsdb.retention.time=6h",
    ]
    if receiver:
        argv.append("--web.enable-remote-write-receiver")
    return ChildServer(
        name, argv, url=f"http://{LOOPBACK}:{port}", ready_path="/-/ready", log_path=directory / "server.log"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoStackStatistics:
    """Every demo server, in start order; the binaries that are missing."""

    servers: tuple[ChildStatistics, ...]
    missing: tuple[str, ...]


class DemoStack:
    """The exporter and the server processes; ``run`` starts them all and stops them at the end.

    Args:
        ports: where each server listens.
        workdir: a directory of this run; each server gets a subdirectory.
        missing: binaries known to be missing (their servers are left out).
    """

    def __init__(self, ports: DevPorts, workdir: Path, *, missing: tuple[str, ...] = ()) -> None:
        self.ports = ports
        self.missing = missing
        self._exporter = HTTPServer(DemoExporter(), host=LOOPBACK, port=ports.exporter, graceful_timeout_s=1.0)
        self.exporter_url = f"http://{LOOPBACK}:{ports.exporter}"
        self.children: list[ChildServer] = []
        if PROMETHEUS_BINARY not in missing:
            self.children.append(
                _prometheus(
                    "infrastructure prometheus",
                    workdir / "infra-prometheus",
                    ports.infra_prometheus,
                    _infra_config(ports.exporter),
                    receiver=False,
                )
            )
            for tenant, port in ports.tenant_prometheus.items():
                self.children.append(
                    _prometheus(
                        f"prometheus of {tenant}",
                        workdir / f"prometheus-{tenant}",
                        port,
                        "global: {evaluation_interval: 15s}\n",
                        receiver=True,
                    )
                )
        if PUSHGATEWAY_BINARY not in missing:
            directory = workdir / "pushgateway"
            self.children.append(
                ChildServer(
                    "pushgateway",
                    [
                        PUSHGATEWAY_BINARY,
                        f"--web.listen-address={LOOPBACK}:{ports.pushgateway}",
                        "--persistence.file=",
                    ],
                    url=f"http://{LOOPBACK}:{ports.pushgateway}",
                    ready_path="/-/ready",
                    log_path=directory / "server.log",
                )
            )

    @property
    def urls(self) -> Mapping[str, str]:
        """Every server's base URL by name (the exporter's included)."""
        return {"demo exporter": self.exporter_url, **{child.name: child.url for child in self.children}}

    def statistics(self) -> DemoStackStatistics:
        """A snapshot for the console."""
        return DemoStackStatistics(
            servers=tuple(child.statistics() for child in self.children), missing=self.missing
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the exporter and every server at once; started when all answer; stop all when cancelled.

        A server that fails to start is logged with its log's end and left out; the others run.
        """
        async with trio.open_nursery() as nursery:
            await nursery.start(self._exporter.run)
            async with trio.open_nursery() as starting:
                for child in self.children:
                    starting.start_soon(partial(self._start_child, nursery, child))
            logger.info("demo servers ready", extra={"servers": dict(self.urls)})
            task_status.started()

    @staticmethod
    async def _start_child(nursery: trio.Nursery, child: ChildServer) -> None:
        try:
            await nursery.start(child.run)
        except ChildFailed as exc:
            logger.error("dev server failed to start", extra={"server": child.name, "error": str(exc)})

    def running(self, name: str) -> bool:
        """Whether the server called ``name`` is up."""
        return any(c.name == name and c.statistics().state is ChildState.RUNNING for c in self.children)
