"""``mtproxy dev`` (``make dev``): the whole service on loopback, with live demo data.

Starts three things and stops them together: a demo exporter (this process, serving
changing metrics of namespaces team-a, team-b and kube-system, plus cluster-wide node
series), a demo infrastructure Prometheus (Debian's ``prometheus``) scraping it every
second on 127.0.0.1:19090, and the proxy on the embedded default config (files mode,
tenants from ``examples/dev/tenants``). Then it prints curl lines to try for two tenants.
Without the Prometheus binary it says exactly what to install.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from mtproxy.api import load_config_text
from mtproxy.cmd.devconfig import DEV_CONFIG_YAML
from mtproxy.cmd.service import ServiceOptions, run_service
from mtproxy.proxy.server import HTTPServer, answer_lifespan

__all__ = ["DEMO_PROMETHEUS_PORT", "run_dev"]

logger = logging.getLogger(__name__)

DEMO_PROMETHEUS_PORT = 19090
_DEMO_EXPORTER_PORT = 19091


class _DemoExporter:
    """An ASGI app serving demo metrics that change every scrape."""

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
        for namespace, factor in (("team-a", 1.0), ("team-b", 2.0), ("kube-system", 0.5)):
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


def _prometheus_config(directory: Path) -> Path:
    path = directory / "prometheus.yml"
    path.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: demo\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{_DEMO_EXPORTER_PORT}']}}]\n",
        encoding="utf-8",
    )
    return path


def _curl_lines(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return "\n".join(
        [
            "",
            "mtproxy dev is running. Try, as two tenants:",
            f"  curl -s -H 'X-Tenant-Namespace: team-a' '{base}/api/v1/query?query=sum(rate(http_requests_total[1m]))'",
            f"  curl -s -H 'X-Tenant-Namespace: team-a' '{base}/api/v1/query?query=count%20by%20(namespace)(app_up)'",
            f"  curl -s -H 'X-Tenant-Namespace: team-b' '{base}/api/v1/series?match[]=http_requests_total'",
            f"  curl -s -H 'X-Tenant-Namespace: team-b' '{base}/api/v1/label/__name__/values'",
            f"  curl -s -H 'X-Tenant-Namespace: team-c' '{base}/api/v1/query?query=up'   # 403: no MetricAccess",
            "  mtproxy enforce --namespace team-b --access examples/dev/tenants/*.yaml 'sum(http_requests_total)'",
            f"  curl -s {base}/health ; curl -s {base}/metrics | grep prometheus_proxy_requests_total",
            "Ctrl-C stops everything.",
            "",
        ]
    )


async def _run(port: int, workdir: Path) -> None:
    exporter = HTTPServer(_DemoExporter(), host="127.0.0.1", port=_DEMO_EXPORTER_PORT)
    config = _prometheus_config(workdir)
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{DEMO_PROMETHEUS_PORT}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(exporter.run)
            loaded = load_config_text(DEV_CONFIG_YAML)
            options = ServiceOptions(host="127.0.0.1", port=port, leader_elect=False)

            async def serve_then_stop_demo() -> None:
                await run_service(loaded.config, options)  # returns on SIGTERM or Ctrl-C
                nursery.cancel_scope.cancel()  # the demo exporter would otherwise keep the process alive

            nursery.start_soon(serve_then_stop_demo)
            await trio.sleep(2)
            print(_curl_lines(port), flush=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def run_dev(port: int) -> int:
    """Run the demo until Ctrl-C; returns the exit status."""
    if shutil.which("prometheus") is None:
        print(
            "mtproxy dev needs the Prometheus server binary. Install it with:\n"
            "  sudo apt-get install -y prometheus\n"
            "(make test installs it too when run as root.)",
            file=sys.stderr,
        )
        return 1
    if not Path("examples/dev/tenants").is_dir():
        print("mtproxy dev: run it from the repository root (examples/dev/tenants is needed)", file=sys.stderr)
        return 1
    state = Path(".dev-state")
    state.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=state))
    print(f"demo Prometheus on 127.0.0.1:{DEMO_PROMETHEUS_PORT} (data in {workdir}), proxy on 127.0.0.1:{port}")
    try:
        trio.run(_run, port, workdir)
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
