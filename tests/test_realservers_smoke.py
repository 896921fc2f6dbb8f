"""Smoke tests for the real-server fixtures: each server starts, answers and holds what we gave it.

They check the fixtures, not the project: if one fails, every test built on that server would
fail for the same reason, and this module says which server is to blame.
"""

from __future__ import annotations

import http.server
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import snappy
from realservers import (
    InfrastructurePrometheusFactory,
    LoadedPrometheus,
    ScrapeTarget,
    ServerNotReadyError,
    ServerProcess,
    TenantPrometheusFactory,
    VictoriaMetricsFactory,
    VmauthFactory,
    free_port,
    processes,
    wait_for_result,
)
from realservers.prometheus import infrastructure_prometheus
from realservers.pushgateway import pushgateway as pushgateway_server

pytestmark = pytest.mark.slow


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        yield client


def _query(client: httpx.Client, url: str, query: str, *, at_s: float, **kwargs: Any) -> list[dict[str, Any]]:
    response = client.get(f"{url}/api/v1/query", params={"query": query, "time": str(at_s)}, **kwargs)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


# -- the process wrapper ----------------------------------------------------------------


class _AlwaysReady(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_server_moves_to_another_port_when_another_server_took_its_first_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The squatter answers every readiness probe with 200, so only the listener check catches it.
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysReady) as squatter:
        thread = threading.Thread(target=squatter.serve_forever, daemon=True)
        thread.start()
        taken = squatter.server_address[1]
        choices = iter([taken])
        monkeypatch.setattr(processes, "free_port", lambda: next(choices, None) or free_port())
        server = pushgateway_server(tmp_path)
        try:
            with server:
                assert server.port != taken
                assert "pushgateway_build_info" in httpx.get(f"{server.url}/metrics", trust_env=False).text
        finally:
            squatter.shutdown()
    assert server.log_path.read_text().count(" start: ") == 2


def test_server_that_exits_early_reports_its_log(tmp_path: Path) -> None:
    server = infrastructure_prometheus(tmp_path, extra_args=["--no-such-flag"])

    with pytest.raises(ServerNotReadyError, match=r"(?s)exited with code 1.*no-such-flag"):
        server.start()
    assert not server.running


def test_server_that_never_gets_ready_is_killed_at_the_deadline(tmp_path: Path) -> None:
    server = ServerProcess("sleeper", lambda port: ["sleep", "60"], workdir=tmp_path, ready_path="/",
                           ready_timeout_s=0.3)

    with pytest.raises(ServerNotReadyError, match="not ready"):
        server.start()
    assert not server.running


# -- Prometheus with the test data set ---------------------------------------------------


def test_loaded_prometheus_has_each_namespaces_series_at_the_end(
    infra_prometheus_with_data: LoadedPrometheus, client: httpx.Client
) -> None:
    data = infra_prometheus_with_data.data
    result = _query(client, infra_prometheus_with_data.url, 'count by (namespace) ({namespace!=""})',
                    at_s=data.end_s)

    found = {r["metric"]["namespace"]: int(r["value"][1]) for r in result}
    live = data.live_at(data.end_ms)
    expected = Counter(s.namespace for s in live if s.namespace is not None)
    assert found == dict(expected)
    assert set(found) == set(data.namespaces)
    without = _query(client, infra_prometheus_with_data.url, 'count({__name__=~".+", namespace=""})',
                     at_s=data.end_s)
    assert int(without[0]["value"][1]) == len([s for s in live if s.namespace is None]) > 0


def test_loaded_prometheus_returns_exact_samples_and_escaped_labels(
    infra_prometheus_with_data: LoadedPrometheus, client: httpx.Client
) -> None:
    data = infra_prometheus_with_data.data
    (series,) = data.select("http_requests_total", namespace="team-b", pod="web-1", method="GET", code="200")
    result = _query(
        client, infra_prometheus_with_data.url,
        'http_requests_total{namespace="team-b",pod="web-1",method="GET",code="200"}[1m]', at_s=data.end_s,
    )

    (matrix,) = result
    assert matrix["metric"] == series.metric
    expected = series.samples_between(data.end_ms - 60_000, data.end_ms)
    assert [(ts, float(v)) for ts, v in matrix["values"]] == [(s.timestamp_s, s.value) for s in expected]
    assert expected[-1].timestamp_ms == data.end_ms

    build_info = _query(client, infra_prometheus_with_data.url, 'app_build_info{namespace="team-a"}',
                        at_s=data.end_s)
    assert sorted(r["metric"]["message"] for r in build_info) == sorted(
        s.get("message") for s in data.select("app_build_info", namespace="team-a")
        if s.sample_at(data.end_ms) is not None
    )
    assert '"' in build_info[0]["metric"]["message"] and "\\" in build_info[0]["metric"]["message"]


# -- tenant Prometheus -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _write_request(labels: dict[str, str], value: float, timestamp_ms: int) -> bytes:
    """A prometheus.WriteRequest with one series and one sample, encoded by hand."""
    label_fields = b"".join(
        _length_delimited(1, _length_delimited(1, k.encode()) + _length_delimited(2, v.encode()))
        for k, v in sorted(labels.items())
    )
    sample = b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(timestamp_ms)
    return _length_delimited(1, label_fields + _length_delimited(2, sample))


def test_tenant_prometheus_keeps_remote_written_samples_across_restart(
    tenant_prometheus_factory: TenantPrometheusFactory, client: httpx.Client
) -> None:
    tenant = tenant_prometheus_factory()
    flags = client.get(f"{tenant.url}/api/v1/status/flags").json()["data"]
    assert flags["web.enable-remote-write-receiver"] == "true"
    now_ms = int(time.time() * 1000)
    body = _write_request({"__name__": "smoke_written", "namespace": "team-a", "note": 'a "b" ü'}, 2.5, now_ms)

    response = client.post(
        f"{tenant.url}/api/v1/write",
        content=snappy.compress(body),
        headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                 "X-Prometheus-Remote-Write-Version": "0.1.0"},
    )
    assert response.status_code == 204, response.text
    port = tenant.port
    tenant.restart()

    assert tenant.port == port
    (sample,) = _query(client, tenant.url, "smoke_written", at_s=now_ms / 1000)
    assert sample["metric"] == {"__name__": "smoke_written", "namespace": "team-a", "note": 'a "b" ü'}
    assert sample["value"] == [now_ms / 1000, "2.5"]


# -- Pushgateway and a Prometheus scraping it --------------------------------------------


def test_pushgateway_serves_pushed_metrics_to_a_scraping_prometheus(
    pushgateway: ServerProcess, infra_prometheus_factory: InfrastructurePrometheusFactory, client: httpx.Client
) -> None:
    pushed = client.put(f"{pushgateway.url}/metrics/job/smoke/namespace/team-c",
                      content=b"# TYPE smoke_value gauge\nsmoke_value 42\n")
    assert pushed.status_code == 200, pushed.text
    assert 'smoke_value{instance="",job="smoke",namespace="team-c"} 42' in client.get(
        f"{pushgateway.url}/metrics").text

    prometheus = infra_prometheus_factory(
        targets=[ScrapeTarget(job="pushgateway", addresses=(pushgateway.address,), honor_labels=True)]
    )
    deadline = time.monotonic() + 15
    while not (result := _query(client, prometheus.url, "smoke_value", at_s=time.time())):
        assert time.monotonic() < deadline, prometheus.log_tail()
        time.sleep(0.2)
    assert result[0]["metric"] == {"__name__": "smoke_value", "job": "smoke", "namespace": "team-c"}
    assert result[0]["value"][1] == "42"


# -- VictoriaMetrics and vmauth ----------------------------------------------------------


def _import_visibly(client: httpx.Client, vm: ServerProcess, auth: tuple[str, str] | None) -> int:
    now_ms = int(time.time() * 1000)
    text = f'smoke_vm{{namespace="team-b",path="C:\\\\x"}} 7 {now_ms}\n'
    response = client.post(f"{vm.url}/api/v1/import/prometheus", content=text.encode(),
                           auth=auth or httpx.USE_CLIENT_DEFAULT)
    assert response.status_code == 204, response.text
    wait_for_result(vm, "smoke_vm", at_s=now_ms / 1000, auth=auth)
    return now_ms


@pytest.mark.parametrize("auth", [pytest.param(None, id="open"), pytest.param(("vm", "s3cret"), id="basic-auth")])
def test_victoriametrics_returns_imported_samples(
    victoriametrics_factory: VictoriaMetricsFactory, client: httpx.Client, auth: tuple[str, str] | None
) -> None:
    vm = victoriametrics_factory(auth=auth)
    now_ms = _import_visibly(client, vm, auth)

    (sample,) = _query(client, vm.url, "smoke_vm", at_s=now_ms / 1000, auth=auth)
    assert sample["metric"] == {"__name__": "smoke_vm", "namespace": "team-b", "path": "C:\\x"}
    assert sample["value"][1] == "7"
    if auth is not None:
        for wrong in [("vm", "wrong"), None]:
            refused = client.get(f"{vm.url}/api/v1/query", params={"query": "smoke_vm"}, auth=wrong)
            assert refused.status_code == 401


def test_vmauth_forwards_known_users_and_refuses_others(
    victoriametrics_factory: VictoriaMetricsFactory, vmauth_factory: VmauthFactory, client: httpx.Client
) -> None:
    vm = victoriametrics_factory()
    now_ms = _import_visibly(client, vm, None)
    proxy = vmauth_factory(auth_config={"users": [{"username": "team-b", "password": "pw", "url_prefix": vm.url}]})

    (sample,) = _query(client, proxy.url, "smoke_vm", at_s=now_ms / 1000, auth=("team-b", "pw"))
    assert sample["value"][1] == "7"
    # vmauth 1.79 answers 401 only when the header is missing; unknown credentials get 400.
    for wrong, status in [(None, 401), (("team-b", "nope"), 400)]:
        refused = client.get(f"{proxy.url}/api/v1/query", params={"query": "smoke_vm"}, auth=wrong)
        assert refused.status_code == status, refused.text
