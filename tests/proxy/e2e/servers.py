"""The servers around the proxy in the end-to-end tests: Prometheus copies, an exporter, a JWKS issuer.

- :func:`start_prometheus_copy` loads a :class:`realservers.Dataset` (or a subset of its
  series) into a new Prometheus through promtool blocks, so several backends can hold the
  same data (failover) or overlapping parts of it (fan-out).
- :func:`start_e2e_prometheus` is the backend of the endpoint tests: the data set, plus a
  scrape of :class:`StaticExporter` every second (fresh series for federation and alerts,
  exemplars, metadata), plus the recording and alerting rules of :data:`tenancy.RULES`. It
  returns once every rule has produced its output and the exemplars are stored. It logs
  every PromQL query it runs (``query_log_file``), so a test can read what reached it.
- :class:`StaticExporter` serves fixed OpenMetrics text from a thread (``http.server``).
- :class:`JWKSServer` serves a JWKS document with hypercorn under its own ``trio.run`` in a
  thread, and counts the fetches, so a test can tell that the proxy really fetched the keys.

Everything listens on 127.0.0.1. Absolute imports only: the bench imports this module too.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import queue
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import yaml
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from realservers import Dataset, ScrapeTarget, Series, ServerNotReadyError, ServerProcess
from realservers.backfill import create_blocks, start_prometheus_with_data
from realservers.ports import LOOPBACK
from realservers.prometheus import infrastructure_prometheus
from realservers.testdata import write_openmetrics

__all__ = [
    "QUERY_LOG",
    "JWKSServer",
    "StaticExporter",
    "query_direct",
    "start_e2e_prometheus",
    "start_prometheus_copy",
    "subset",
    "with_label",
]

QUERY_LOG = "queries.log"
"""The end-to-end Prometheus logs every PromQL query it runs here (JSON lines), below its workdir."""
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def subset(dataset: Dataset, keep: Callable[[int, Series], bool]) -> Dataset:
    """The data set with only the series ``keep(index, series)`` accepts."""
    return dataclasses.replace(dataset, series=tuple(s for i, s in enumerate(dataset.series) if keep(i, s)))


def with_label(dataset: Dataset, name: str, value: str) -> Dataset:
    """The data set with one more label on every series (a replica label, say)."""
    return dataclasses.replace(
        dataset,
        series=tuple(
            dataclasses.replace(s, labels=tuple(sorted((*s.labels, (name, value))))) for s in dataset.series
        ),
    )


def start_prometheus_copy(workdir: Path, dataset: Dataset) -> ServerProcess:
    """A running Prometheus holding exactly ``dataset``; the caller stops it."""
    return start_prometheus_with_data(workdir, dataset).server


def query_direct(url: str, path: str, params: dict[str, str] | None = None) -> Any:
    """GET ``path`` from a backend directly and return the decoded JSON."""
    query = urllib.parse.urlencode(params or {})
    with _OPENER.open(f"{url}{path}?{query}", timeout=30.0) as response:
        return json.load(response)


class StaticExporter:
    """Serves one fixed OpenMetrics document at every path, from a daemon thread."""

    def __init__(self, text: str) -> None:
        body = text.encode("utf-8")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", _OPENMETRICS)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="e2e-exporter", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_e2e_prometheus(
    workdir: Path, dataset: Dataset, *, exporter_address: str, rules: dict[str, Any], timeout_s: float = 30.0
) -> ServerProcess:
    """The data set, a 1 s scrape of the exporter (honouring its labels), the rules; started and settled.

    Raises:
        ServerNotReadyError: the rules or exemplars did not show up within ``timeout_s``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    openmetrics_path = workdir / "dataset.om"
    storage_dir = workdir / "data"
    write_openmetrics(dataset, openmetrics_path)
    create_blocks(openmetrics_path, storage_dir)
    target = ScrapeTarget(job="e2e-exporter", addresses=(exporter_address,), interval_s=1.0, honor_labels=True)
    server = infrastructure_prometheus(
        workdir,
        targets=[target],
        storage_dir=storage_dir,
        retention="3650d",
        extra_args=["--enable-feature=exemplar-storage"],
    )
    rules_path = workdir / "rules.yml"
    rules_path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    config_path = workdir / "prometheus.yml"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["rule_files"] = [str(rules_path)]
    config["global"]["evaluation_interval"] = "1s"
    config["global"]["query_log_file"] = str(workdir / QUERY_LOG)
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    server.start()
    try:
        _wait_settled(server, rules, timeout_s=timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_settled(server: ServerProcess, rules: dict[str, Any], *, timeout_s: float) -> None:
    records = [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]
    deadline = time.monotonic() + timeout_s
    while True:
        found = {
            name: bool(query_direct(server.url, "/api/v1/query", {"query": name})["data"]["result"])
            for name in records
        }
        firing = query_direct(server.url, "/api/v1/alerts")["data"]["alerts"]
        exemplars = query_direct(
            server.url,
            "/api/v1/query_exemplars",
            {"query": "e2e_jobs_total", "start": str(time.time() - 600), "end": str(time.time() + 60)},
        )["data"]
        if all(found.values()) and len([a for a in firing if a["state"] == "firing"]) >= 3 and len(exemplars) >= 2:
            return
        if time.monotonic() > deadline:
            raise ServerNotReadyError(
                f"{server.name}: rules {found}, {len(firing)} alerts, {len(exemplars)} exemplar series "
                f"after {timeout_s:g} s:\n{server.log_tail()}"
            )
        time.sleep(0.2)


class JWKSServer:
    """A token issuer's JWKS endpoint (any path), served by hypercorn in a thread of its own."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._body = json.dumps(document).encode("utf-8")
        self.fetches = 0
        self.url = ""
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread: threading.Thread | None = None

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.fetches += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self._body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": self._body})

    def start(self) -> JWKSServer:
        ready: queue.Queue[Any] = queue.Queue()

        async def main() -> None:
            config = HypercornConfig()
            config.bind = [f"{LOOPBACK}:0"]
            config.accesslog = None
            self._stop = stop = trio.Event()
            app: Any = self._app
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(
                    lambda task_status: serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
                )
                ready.put((bound[0], trio.lowlevel.current_trio_token()))

        def run() -> None:
            try:
                trio.run(main)
            except BaseException as exc:
                ready.put(exc)

        self._thread = threading.Thread(target=run, name="jwks", daemon=True)
        self._thread.start()
        outcome = ready.get(timeout=15)
        if isinstance(outcome, BaseException):
            raise RuntimeError("the JWKS server did not start") from outcome
        self.url, self._token = outcome[0] + "/jwks.json", outcome[1]
        return self

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        if self._thread is not None:
            self._thread.join(timeout=10)
