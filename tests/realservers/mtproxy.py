"""The ``mtproxy --config FILE --port N`` command as a child process, with its JSON log.

The end-to-end tests, the load test and the benchmarks drive the real command line, not
``run_service`` in-process: a SIGKILL is a real crash, the config file is read the way an
operator's is, and the process has its own RSS to measure and its own CPU to spend.

The process itself (port, log file, readiness wait, SIGTERM-then-SIGKILL stop, the ``atexit``
kill) is a :class:`realservers.ServerProcess`; this adds what only mtproxy has: its config
file, its JSON log read back per run (:meth:`MtproxyProcess.records`, so a test can count what
the forwarder logged across a restart), and a start that also waits for remote-write jobs.

Guarantees: ``start`` returns once ``/-/ready`` answers 200 and the expected remote-write
jobs logged their start (or raises with the log's tail); the port is chosen once and kept
across restarts; ``kill`` is SIGKILL (no clean shutdown, no flush), ``stop`` is SIGTERM then
SIGKILL after 10 s.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import trio

from realservers.ports import LOOPBACK, free_port
from realservers.processes import ServerNotReadyError, ServerProcess

__all__ = ["MTPROXY_BINARY", "MtproxyProcess"]

MTPROXY_BINARY = Path(sys.executable).parent / "mtproxy"
"""The console script of the virtualenv running the tests."""

_RUN_SEPARATOR = "=== "
"""How ``ServerProcess`` marks each start in its log."""


class MtproxyProcess:
    """One ``mtproxy`` service: its config file, port, runs and logs.

    Args:
        name: For messages, e.g. ``"mtproxy-main"``.
        workdir: Holds ``config.yaml`` and ``server.log`` (every run's output, in order).
        config: The config document (written as JSON, which is YAML).
        log_level: ``--log-level``; ``debug`` shows every retry of a send.

    ``argv_prefix`` is the command before its flags, e.g. ``python -m cProfile -o FILE -m
    mtproxy.cmd.main`` to profile a run.
    """

    def __init__(self, name: str, workdir: Path, config: Mapping[str, Any], *, log_level: str = "info") -> None:
        self.name = name
        self.config_path = workdir / "config.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.argv_prefix: list[str] = [str(MTPROXY_BINARY)]
        self._log_level = log_level
        self._server = ServerProcess(
            name, self._argv, workdir=workdir, ready_path="/-/ready", port=free_port(), stop_grace_s=10.0
        )
        self.runs = 0

    def __repr__(self) -> str:
        return f"<MtproxyProcess {self.name} port={self.port} runs={self.runs}>"

    def _argv(self, port: int) -> list[str]:
        flags = ["--config", str(self.config_path), "--host", LOOPBACK, "--port", str(port)]
        return [*self.argv_prefix, *flags, "--log-level", self._log_level]

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def pid(self) -> int:
        pid = self._server.pid
        assert pid is not None, f"{self.name} is not running"
        return pid

    @property
    def running(self) -> bool:
        return self._server.running

    def log_paths(self) -> list[Path]:
        return [self._server.log_path]

    def records(self) -> list[dict[str, Any]]:
        """Every JSON log record of every run, in order, each with ``_run`` = ``run-<n>``.

        Lines that are not JSON are skipped.
        """
        out: list[dict[str, Any]] = []
        if not self._server.log_path.exists():
            return out
        run = 0
        for line in self._server.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(_RUN_SEPARATOR):
                run += 1
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                record["_run"] = f"run-{run}"
                out.append(record)
        return out

    def log_tail(self, nbytes: int = 4096) -> str:
        return self._server.log_tail(nbytes)

    def start(self, *, jobs: Iterable[str] = (), timeout_s: float = 30.0) -> MtproxyProcess:
        """Start, then wait for readiness and for each of ``jobs`` (``namespace/name``) to start.

        Raises:
            RuntimeError: Already running, exited early, or not ready in time.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.runs += 1
        deadline = time.monotonic() + timeout_s
        self._server.start()
        wanted = set(jobs)
        while True:
            started = {
                str(r.get("job"))
                for r in self.records()
                if r["_run"] == f"run-{self.runs}" and r.get("msg") == "remote write job started"
            }
            if wanted <= started:
                return self
            if not self._server.running:
                raise ServerNotReadyError(f"{self.name} exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerNotReadyError(
                    f"{self.name} not ready (jobs started: {sorted(started)}, wanted {sorted(wanted)}) "
                    f"after {timeout_s:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def memory_kib(self) -> dict[str, int]:
        """``VmRSS`` and ``VmHWM`` (peak RSS) of the process, in KiB."""
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        self._server.kill()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self._server.stop()

    async def start_async(self, *, jobs: Iterable[str] = ()) -> None:
        await trio.to_thread.run_sync(lambda: self.start(jobs=jobs))
