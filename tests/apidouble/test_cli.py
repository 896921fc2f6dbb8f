"""``run_local_apiserver``: serves on a port, writes a working kubeconfig, saves state, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client, config

pytestmark = pytest.mark.slow

SCRIPT = (
    "import sys; from mtproxy.apidouble import run_local_apiserver; "
    "run_local_apiserver(0, sys.argv[1], sys.argv[2])"
)


def test_local_apiserver_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    state = tmp_path / "state.json"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(kubeconfig), str(state)])
    try:
        deadline = time.monotonic() + 15
        while not kubeconfig.exists():
            assert time.monotonic() < deadline, "kubeconfig was not written"
            assert process.poll() is None, "local apiserver exited early"
            time.sleep(0.05)
        api = config.new_client_from_config(config_file=str(kubeconfig))
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("default", {"metadata": {"name": "dev"}})
        assert [item.metadata.name for item in core.list_namespaced_config_map("default").items] == ["dev"]
        api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    names = [entry["object"]["metadata"]["name"] for entry in json.loads(state.read_text())["objects"]
             if entry["object"]["kind"] == "ConfigMap"]
    assert names == ["dev"]
