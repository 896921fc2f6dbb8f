"""No input ends the service (issue 15, findings 1 and 2): generated deep and huge text, sent to
every endpoint that parses PromQL, to the ``mtproxy`` command running as a child process.

A crash of the native parser is a SIGSEGV, which only a separate process survives to report,
so the service runs as the real command (``realservers.MtproxyProcess``). Every hostile text
must be answered with a 4xx, the process must still be running after each one, and another
tenant's light query, sent all along from a second thread, must be answered every time. A
MetricAccess file with a deep pattern dropped into the watched directory must not end the
process either.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from realservers import LoadedPrometheus, MtproxyProcess
from survival import HostileText, hostile_texts

pytestmark = pytest.mark.slow

TENANT = "X-Tenant-Namespace"
FORM = "application/x-www-form-urlencoded"
PROBES = [
    (method, path, parameter)
    for path, parameter in (
        ("/api/v1/query", "query"),
        ("/api/v1/query_range", "query"),
        ("/api/v1/series", "match[]"),
        ("/api/v1/labels", "match[]"),
        ("/api/v1/label/job/values", "match[]"),
        ("/federate", "match[]"),
        ("/debug/enforce", "query"),
    )
    for method in ("GET", "POST")
]
TEXTS = hostile_texts()
URL_LIMIT = 60_000
"""Beyond this a GET's request line exceeds the server's header limit; it may be refused at the HTTP layer."""


def _access(namespace: str, metrics: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {"source": namespace, "metricIsolation": True, "metrics": metrics},
    }


@dataclass
class LightTenant:
    """team-b's light query, sent in a loop from its own thread while the probes run."""

    url: str
    end_s: int
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self.stop.is_set():
                try:
                    answer = client.get(
                        "/api/v1/query", params={"query": "up", "time": str(self.end_s)}, headers={TENANT: "team-b"}
                    )
                    self.statuses.append(answer.status_code)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                time.sleep(0.05)


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, infra_prometheus_with_data: LoadedPrometheus
) -> Iterator[tuple[MtproxyProcess, Path]]:
    workdir = tmp_path_factory.mktemp("hostile")
    tenants = workdir / "tenants"
    tenants.mkdir()
    for namespace in ("team-a", "team-b"):
        (tenants / f"{namespace}.yaml").write_text(yaml.safe_dump(_access(namespace, ["up", "http_.*"])))
    config = {
        "discovery": {"static": {"targets": [infra_prometheus_with_data.url]}},
        "tenants": {"source": "files", "files": {"directory": str(tenants)}},
        "proxy": {"enable_metrics": True},
    }
    process = MtproxyProcess("mtproxy-hostile", workdir / "service", config).start()
    yield process, tenants
    process.stop()


@pytest.fixture
def light_tenant(
    service: tuple[MtproxyProcess, Path], infra_prometheus_with_data: LoadedPrometheus
) -> Iterator[LightTenant]:
    tenant = LightTenant(service[0].url, infra_prometheus_with_data.data.end_s)
    thread = threading.Thread(target=tenant.run, daemon=True)
    thread.start()
    yield tenant
    tenant.stop.set()
    thread.join(timeout=15)


def _probe(client: httpx.Client, method: str, path: str, parameter: str, text: str, end_s: int) -> int | None:
    """The status of one probe as team-a, or None when the server refused it at the HTTP layer."""
    params = {parameter: text}
    if path == "/api/v1/query_range":
        params.update({"start": str(end_s - 600), "end": str(end_s), "step": "60"})
    elif path == "/api/v1/query":
        params["time"] = str(end_s)
    elif path == "/debug/enforce":
        params["namespace"] = "team-a"
    if method == "GET" and _too_long_for_a_url(text):
        return _raw_get(str(client.base_url), path, params)  # httpx refuses URLs this long
    try:
        if method == "GET":
            answer = client.get(path, params=params, headers={TENANT: "team-a"})
        else:
            answer = client.post(path, data=params, headers={TENANT: "team-a", "Content-Type": FORM})
    except httpx.RemoteProtocolError:
        return None
    return answer.status_code


def _too_long_for_a_url(text: str) -> bool:
    return len(urlencode({"q": text})) > URL_LIMIT


def _raw_get(base_url: str, path: str, params: dict[str, str]) -> int | None:
    """A GET with a request line of any length, on a plain socket; None if the server hangs up unanswered."""
    url = httpx.URL(base_url)
    target = f"{path}?{urlencode(params)}"
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\n{TENANT}: team-a\r\nConnection: close\r\n\r\n"
    with socket.create_connection((url.host, url.port or 80), timeout=30) as sock:
        # the server may stop reading once the line is over its limit, and answer anyway
        with contextlib.suppress(OSError):
            sock.sendall(head.encode("ascii"))
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except OSError:
            return None
    if not received.startswith(b"HTTP/1.1 "):
        return None
    return int(received.split(b" ", 2)[1])


@pytest.mark.parametrize("hostile", TEXTS, ids=[t.name for t in TEXTS])
def test_hostile_text_is_answered_4xx_on_every_endpoint_and_the_service_stays_up(
    service: tuple[MtproxyProcess, Path],
    light_tenant: LightTenant,
    infra_prometheus_with_data: LoadedPrometheus,
    hostile: HostileText,
) -> None:
    process, _ = service
    end_s = infra_prometheus_with_data.data.end_s
    answers: dict[str, int | None] = {}
    with httpx.Client(base_url=process.url, timeout=30.0) as client:
        for method, path, parameter in PROBES:
            answers[f"{method} {path}"] = _probe(client, method, path, parameter, hostile.text, end_s)
            assert process.running, f"{method} {path} ended the service:\n{process.log_tail()}"
    time.sleep(0.2)  # let the light tenant ask at least once more
    for probe, status in answers.items():
        if status is None:
            assert probe.startswith("GET") and _too_long_for_a_url(hostile.text), f"{probe}: connection dropped"
        elif hostile.refused:
            assert 400 <= status < 500, f"{probe}: {status}"
        else:
            assert status < 500, f"{probe}: {status}"
    assert light_tenant.failures == []
    assert light_tenant.statuses and set(light_tenant.statuses) == {200}


def test_a_deep_metricaccess_dropped_into_the_watched_directory_leaves_the_service_up(
    service: tuple[MtproxyProcess, Path], light_tenant: LightTenant
) -> None:
    process, tenants = service
    deep = _access("team-c", ["-" * 9000 + 'up{job="a"}', "^".join(["up"] * 5000)])
    (tenants / "team-c.yaml").write_text(yaml.safe_dump(deep))
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=process.url, timeout=10.0) as client:
        while time.monotonic() < deadline:
            assert process.running, f"the deep MetricAccess ended the service:\n{process.log_tail()}"
            time.sleep(0.2)
        refused = client.get("/api/v1/query", params={"query": "up"}, headers={TENANT: "team-c"})
    assert refused.status_code == 403
    assert light_tenant.failures == []
    assert light_tenant.statuses and set(light_tenant.statuses) == {200}
    problems = [r for r in process.records() if "spec.metrics[0]" in str(r)]
    assert problems, "the deep pattern was not reported with its field path"
