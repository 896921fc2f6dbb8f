"""The service as a process while its caches cannot sync: probes answered, tenants told to wait, SIGTERM obeyed.

A kubeconfig naming a loopback port where nothing listens stands for an API server that
is down: the MetricAccess informer never completes its first list.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from realservers.mtproxy import MTPROXY_BINARY
from realservers.ports import free_port

pytestmark = pytest.mark.slow


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _wait_listening(url: str, process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        assert process.poll() is None, "the service exited"
        try:
            _get(url)
            return time.monotonic() - started
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} not answered within {timeout_s} s")


def test_probes_are_served_before_sync_and_sigterm_during_sync_stops_at_once(tmp_path: Path) -> None:
    dead_port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "down", "cluster": {"server": f"http://127.0.0.1:{dead_port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "down", "user": "u"}}],
                "current-context": "c",
            }
        ),
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "discovery": {"static": {"targets": [f"http://127.0.0.1:{free_port()}"]}},
                "tenants": {"source": "kubernetes"},
                "remote_write": {"enabled": True},
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    process = subprocess.Popen(
        [str(MTPROXY_BINARY), "--config", str(config), "--kubeconfig", str(kubeconfig), "--port", str(port),
         "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_listening(f"{base}/-/healthy", process)
        assert _get(f"{base}/-/healthy")[0] == 200
        assert _get(f"{base}/-/ready")[0] == 503
        status, headers, body = _get(f"{base}/api/v1/query?query=up", {"X-Tenant-Namespace": "team-a"})
        assert status == 503 and headers.get("retry-after") == "1"
        assert json.loads(body)["errorType"] == "unavailable"
        time.sleep(1.0)  # the informer is retrying its list meanwhile
        asked_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        stopped_after_s = time.monotonic() - asked_at
    finally:
        if process.poll() is None:
            process.kill()
        output = process.stdout.read().decode() if process.stdout else ""
    assert code == 0, output[-2000:]
    assert stopped_after_s < 5.0, (stopped_after_s, output[-2000:])
    assert "Traceback" not in output, output[-4000:]



