"""The proxy service under test: ``run_service`` in a trio nursery, or the ``mtproxy`` command.

:func:`service_config` writes the config document every end-to-end test starts from: files
mode (MetricAccess YAML in a directory), static backend targets, an ``auth`` section, and
whatever ``proxy``/``discovery`` keys the test adds. It is loaded through the same schema as
an operator's file (``parse_config``), so a key the service does not know fails the test.

:func:`start_service` runs the composition root (``run_service``) in the caller's nursery on
a free loopback port and returns once ``/-/ready`` answers 200; ``RunningService.stop``
cancels it. :class:`MtproxyCommand` runs ``mtproxy --config FILE --port N`` as a child process
instead, for the load test and the bench: a separate process has its own RSS to measure and
its own CPU to spend, as in production.

Absolute imports only: ``bench/bench_proxy.py`` imports this module too.
"""

from __future__ import annotations

import atexit
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import trio
from realservers import free_port

from mtproxy.api import parse_config
from mtproxy.cmd.service import ServiceOptions, run_service

__all__ = ["MtproxyCommand", "RunningService", "service_config", "start_service", "wait_ready"]

MTPROXY_BINARY = Path(sys.executable).parent / "mtproxy"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_running: set[MtproxyCommand] = set()


def service_config(
    *,
    targets: Sequence[str],
    tenants_dir: Path,
    auth: Mapping[str, Any] | None = None,
    proxy: Mapping[str, Any] | None = None,
    discovery: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The config document: files mode, static targets, the given sections."""
    return {
        "discovery": {"static": {"targets": list(targets)}, "health_check_interval": "1s", **(discovery or {})},
        "tenants": {"source": "files", "files": {"directory": str(tenants_dir)}},
        "proxy": {"enable_metrics": True, **(proxy or {})},
        "auth": dict(auth or {"type": "none"}),
    }


@dataclass(slots=True, kw_only=True)
class RunningService:
    """A ``run_service`` in a nursery, listening on ``url``."""

    url: str
    scope: trio.CancelScope
    stopped: trio.Event
    tenants_dir: Path

    async def stop(self) -> None:
        """Cancel the service and wait until it has stopped."""
        self.scope.cancel(reason="test stopped the service")
        await self.stopped.wait()


async def wait_ready(url: str, *, timeout_s: float = 15.0) -> None:
    """Return once ``GET {url}/-/ready`` answers 200."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        with trio.fail_after(timeout_s):
            while True:
                try:
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.02)


async def start_service(nursery: trio.Nursery, config: Mapping[str, Any], *, kubeconfig: str = "") -> RunningService:
    """Run the service in ``nursery`` and return once it is ready; ``stop`` it at the end."""
    loaded = parse_config(json.loads(json.dumps(config)))
    assert loaded.config.tenants.files_directory is not None
    port = free_port()
    options = ServiceOptions(
        host="127.0.0.1", port=port, kubeconfig=kubeconfig, leader_elect=False, handle_signals=False
    )
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                task_status.started()
                await run_service(loaded.config, options)
        finally:
            stopped.set()

    await nursery.start(run)
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url)
    return RunningService(
        url=url, scope=scope, stopped=stopped, tenants_dir=Path(loaded.config.tenants.files_directory)
    )


class MtproxyCommand:
    """``mtproxy --config FILE --port N`` as a child process logging to ``workdir/mtproxy.log``."""

    def __init__(self, workdir: Path, config: Mapping[str, Any], *, log_level: str = "warning") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.log_path = workdir / "mtproxy.log"
        self.port = free_port()
        self.argv_prefix: list[str] = [str(MTPROXY_BINARY)]
        """The command before its flags; e.g. ``python -m cProfile -o FILE -m mtproxy.cmd.main``."""
        self._log_level = log_level
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, *, timeout_s: float = 30.0) -> MtproxyCommand:
        """Start and wait for ``/-/ready``.

        Raises:
            RuntimeError: it exited or did not become ready; the message has the log's tail.
        """
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                *self.argv_prefix,
                "--config",
                str(self.config_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                self._log_level,
            ],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _running.add(self)
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mtproxy did not become ready:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        try:
            with _OPENER.open(f"{self.url}/-/ready", timeout=2.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, nbytes: int = 4096) -> str:
        return self.log_path.read_bytes()[-nbytes:].decode("utf-8", "replace") if self.log_path.exists() else ""

    def memory_kib(self) -> dict[str, int]:
        """``VmRSS`` and ``VmHWM`` (peak RSS) of the process, in KiB."""
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        _running.discard(self)


@atexit.register
def _kill_leftovers() -> None:
    for command in list(_running):
        if command._process is not None and command._process.poll() is None:
            command._process.kill()
