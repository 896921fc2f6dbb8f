"""``mtproxy dev`` headless (no terminal) with the demo stack, checked from outside as a user would.

One run serves every check: the printed ports, a tenant query answered per policy, series
forwarded into a tenant Prometheus, ``kubectl get ma -A`` through ``.dev/kubeconfig``
showing Ready=True, every printed command working as pasted; then SIGINT stops it with
every child process gone and no temporary directory left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from realservers.ports import free_port
from realservers.testbin import Program, in_ci, locate

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MTPROXY = Path(sys.executable).parent / "mtproxy"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
T = TypeVar("T")


def _get(url: str, *, tenant: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"X-Tenant-Namespace": tenant} if tenant else {})
    try:
        with _OPENER.open(request, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def _eventually(check: Callable[[], T | None], *, timeout_s: float, what: str, log: Path) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout_s} s; dev's log:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


def _children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Dev:
    process: subprocess.Popen[bytes]
    cwd: Path
    stdout: Path
    stderr: Path
    ready: dict[str, Any]


def _start_dev(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 90) -> Dev:
    """Run ``mtproxy dev`` in ``cwd`` on a copy of examples/dev (``cwd/objects``, edited by tests)."""
    objects = cwd / "objects"
    shutil.copytree(REPO / "examples" / "dev", objects)
    stdout, stderr = cwd / "dev.out", cwd / "dev.err"
    process = subprocess.Popen(
        [str(MTPROXY), "dev", "--no-console", "--base-port", "0", "--objects", str(objects), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout.open("wb"),
        stderr=stderr.open("wb"),
        env=env,
    )

    def ready_line() -> dict[str, Any] | None:
        assert process.poll() is None, f"mtproxy dev exited {process.returncode}:\n{stderr.read_text()[-4000:]}"
        for line in stdout.read_text().splitlines():
            record = json.loads(line)
            if record.get("msg") == "mtproxy dev ready":
                return dict(record)
        return None

    try:
        ready = _eventually(ready_line, timeout_s=timeout_s, what="the ready line", log=stderr)
    except BaseException:
        process.kill()
        raise
    return Dev(process=process, cwd=cwd, stdout=stdout, stderr=stderr, ready=ready)


def _stop(dev: Dev) -> list[int]:
    """SIGINT; returns the children that outlived it."""
    children = _children(dev.process.pid)
    dev.process.send_signal(signal.SIGINT)
    assert dev.process.wait(timeout=40) == 0, dev.stderr.read_text()[-4000:]
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in children if _alive(pid)]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    started = _start_dev(tmp_path, "--port", str(free_port()))
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def _kubectl_table(dev: Dev, kubectl: list[str]) -> dict[str, str] | None:
    """NAME → READY of ``kubectl get ma -A``, or None when it fails."""
    completed = subprocess.run(kubectl, cwd=dev.cwd, capture_output=True, text=True, timeout=30, check=False)
    lines = completed.stdout.splitlines()
    if completed.returncode != 0 or not lines:
        return None
    header = lines[0].split()
    name, ready = header.index("NAME"), header.index("READY")
    return {line.split()[name]: line.split()[ready] for line in lines[1:]}


def _all_ready(dev: Dev, kubectl: list[str]) -> dict[str, str] | None:
    table = _kubectl_table(dev, kubectl)
    return table if table is not None and len(table) == 3 and set(table.values()) == {"True"} else None


def _kubectl(dev: Dev) -> list[str]:
    """The kubectl command line dev printed, else the one ``make testbin`` built (skip without)."""
    printed = next(c for c in dev.ready["commands"] if "get ma -A" in c)
    if not printed.startswith("#"):
        return list(printed.split())
    located = locate(Program.KUBECTL)
    if located.present:
        return [str(located.path), "--kubeconfig", ".dev/kubeconfig", "get", "ma", "-A"]
    if in_ci():
        pytest.fail("CI=true and no kubectl (on PATH or built by make testbin)")
    pytest.skip("no kubectl on PATH and none built by make testbin: the kubectl checks need one")


def test_dev_headless_serves_forwards_shows_ready_and_stops_clean(dev: Dev) -> None:
    proxy = dev.ready["proxy"]
    assert dev.ready["kube"]["kubeconfig"] == ".dev/kubeconfig"
    assert (dev.cwd / ".dev" / "kubeconfig").is_file()

    # a tenant query answered per policy: team-b sees its own GET counters only
    def team_b_methods() -> set[tuple[str, str]] | None:
        query = urllib.parse.quote("sum by (namespace, method) (http_requests_total)")
        status, body = _get(f"{proxy}/api/v1/query?query={query}", tenant="team-b")
        result = body["data"]["result"] if status == 200 else []
        return {(r["metric"]["namespace"], r["metric"]["method"]) for r in result} or None

    assert _eventually(team_b_methods, timeout_s=60, what="team-b's query result", log=dev.stderr) == {
        ("team-b", "GET")
    }
    status, body = _get(f"{proxy}/api/v1/query?query=up", tenant="team-c")
    assert (status, body["errorType"]) == (403, "forbidden")

    # a series arrived in team-a's own Prometheus, and only team-a's
    tenant_prometheus = dev.ready["tenant_prometheus"]["team-a"]

    def forwarded_namespaces() -> set[str] | None:
        query = urllib.parse.quote('count by (namespace, tenant) (http_requests_total{tenant="team-a"})')
        _, answer = _get(f"{tenant_prometheus}/api/v1/query?query={query}")
        return {r["metric"]["namespace"] for r in answer["data"]["result"]} or None

    assert _eventually(forwarded_namespaces, timeout_s=90, what="forwarded series", log=dev.stderr) == {"team-a"}

    # kubectl through .dev/kubeconfig: every object Ready=True, with the status columns
    kubectl = _kubectl(dev)
    table = _eventually(lambda: _all_ready(dev, kubectl), timeout_s=90, what="READY True for every MetricAccess",
                        log=dev.stderr)
    assert set(table) == {"team-a-app", "team-b-health", "team-b-requests"}
    header = subprocess.run(kubectl, cwd=dev.cwd, capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
    assert {"READY", "SERIES", "LAST", "WRITE"} <= set(header.split())

    # every printed command works as pasted (from dev's directory)
    for command in dev.ready["commands"]:
        if command.startswith("#"):
            continue
        completed = subprocess.run(
            ["bash", "-c", command], cwd=dev.cwd, capture_output=True, text=True, timeout=30, check=False
        )
        assert completed.returncode == 0, (command, completed.stderr)
        assert completed.stdout.strip(), command
        if command.startswith("curl"):
            answer = json.loads(completed.stdout)
            expected = "error" if "team-c" in command else "success"
            assert answer["status"] == expected, (command, completed.stdout)

    # an edit of the objects directory applies live: isolation off is denied by the guardrails
    team_a = dev.cwd / "objects" / "tenants" / "team-a.yaml"
    team_a.write_text(team_a.read_text().replace("metricIsolation: true", "metricIsolation: false"))

    def denied() -> str | None:
        completed = subprocess.run(
            [*kubectl[:-3], "get", "ma", "-n", "team-a", "team-a-app", "-o",
             'jsonpath={.metadata.generation} {.status.conditions[?(@.type=="Ready")].reason}'],
            cwd=dev.cwd, capture_output=True, text=True, timeout=30, check=False,
        )
        return completed.stdout if completed.stdout == "2 PolicyDenied" else None

    _eventually(denied, timeout_s=60, what="the edited object denied (generation 2, PolicyDenied)", log=dev.stderr)

    # SIGINT: every child gone, no temporary directory left, the kubeconfig removed
    assert _stop(dev) == []
    assert sorted(p.name for p in (dev.cwd / ".dev").iterdir()) == []


def test_dev_without_prometheus_says_what_to_install_and_still_serves(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "MTPROXY_TESTBIN": str(tmp_path / "no-testbin")}
    dev = _start_dev(tmp_path, "--port", str(free_port()), env=env)
    try:
        assert "sudo apt-get install -y prometheus prometheus-pushgateway" in dev.stderr.read_text()
        assert dev.ready["servers"] == {"demo exporter": dev.ready["servers"]["demo exporter"]}
        status, _ = _get(f"{dev.ready['proxy']}/-/healthy")
        assert status == 200
        assert _stop(dev) == []
    finally:
        if dev.process.poll() is None:
            dev.process.kill()


@pytest.mark.kube_apiserver
def test_dev_on_the_real_kube_apiserver_turns_every_object_ready(tmp_path: Path) -> None:
    located = locate(Program.KUBE_APISERVER)
    if not (located.present and locate(Program.ETCD).present):
        if in_ci():
            pytest.fail("CI=true and kube-apiserver/etcd are not built (make testbin)")
        pytest.skip("kube-apiserver and etcd are not built: make testbin")
    dev = _start_dev(tmp_path, "--kube=real", "--port", str(free_port()), timeout_s=180)
    try:
        assert dev.ready["kube"]["kind"] == "real" and dev.ready["kube"]["url"].startswith("https://")
        kubectl = _kubectl(dev)
        _eventually(lambda: _all_ready(dev, kubectl), timeout_s=120, what="READY True on the real API server",
                    log=dev.stderr)
        assert _stop(dev) == []
        assert sorted(p.name for p in (dev.cwd / ".dev").iterdir()) == []
    finally:
        if dev.process.poll() is None:
            dev.process.kill()
