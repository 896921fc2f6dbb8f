"""``mtproxy dev`` (what ``make dev`` runs) serves the demo and stops on SIGTERM, Prometheus included."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from realservers.ports import free_port

from mtproxy.cmd.dev import DEMO_PROMETHEUS_PORT

pytestmark = pytest.mark.slow

MTPROXY = Path(sys.executable).parent / "mtproxy"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _ready(port: int) -> bool:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_dev_serves_and_every_part_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen([str(MTPROXY), "--port", str(port), "dev"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _ready(port):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert not _listening(DEMO_PROMETHEUS_PORT), "the demo Prometheus outlived mtproxy dev"
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
