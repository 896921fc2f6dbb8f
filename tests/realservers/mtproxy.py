"""The ``mtproxy --config FILE --port N`` command as a child process, with its JSON log.

The end-to-end tests, the load test and the benchmarks drive the real command line, not
``run_service`` in-process: a SIGKILL is a real crash, the config file is read the way an
operator's is, and the process has its own RSS to measure and its own CPU to spend. Each start
logs to its own file (``run-<n>.log``) and :meth:`MtproxyProcess.records` reads every run's
JSON lines back, so a test can count what the forwarder logged across a restart.

Guarantees: ``start`` returns once ``/-/ready`` answers 200 and the expected remote-write
jobs logged their start (or raises with the log's tail); the port is chosen once and kept
across restarts; ``kill`` is SIGKILL (no clean shutdown, no flush), ``stop`` is SIGTERM then
SIGKILL after a grace period; a process still running at interpreter exit is killed.
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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import trio

from realservers.ports import free_port

__all__ = ["MTPROXY_BINARY", "MtproxyProcess"]

MTPROXY_BINARY = Path(sys.executable).parent / "mtproxy"
"""The console script of the virtualenv running the tests."""

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_running: set[MtproxyProcess] = set()


class MtproxyProcess:
    """One ``mtproxy`` service: its config file, port, runs and logs.

    Args:
        name: For messages, e.g. ``"mtproxy-main"``.
        workdir: Holds ``config.yaml`` and the ``run-<n>.log`` files.
        config: The config document (written as JSON, which is YAML).
        log_level: ``--log-level``; ``debug`` shows every retry of a send.

    ``argv_prefix`` is the command before its flags, e.g. ``python -m cProfile -o FILE -m
    mtproxy.cmd.main`` to profile a run.
    """

    def __init__(self, name: str, workdir: Path, config: Mapping[str, Any], *, log_level: str = "info") -> None:
        self.name = name
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.port = free_port()
        self.argv_prefix: list[str] = [str(MTPROXY_BINARY)]
        self._log_level = log_level
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.runs = 0

    def __repr__(self) -> str:
        return f"<MtproxyProcess {self.name} port={self.port} runs={self.runs}>"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, f"{self.name} is not running"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_paths(self) -> list[Path]:
        return [self.workdir / f"run-{n}.log" for n in range(1, self.runs + 1)]

    def records(self) -> list[dict[str, Any]]:
        """Every JSON log record of every run, in order (lines that are not JSON are skipped)."""
        out: list[dict[str, Any]] = []
        for path in self.log_paths():
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    record["_run"] = path.stem
                    out.append(record)
        return out

    def log_tail(self, nbytes: int = 4096) -> str:
        paths = self.log_paths()
        if not paths or not paths[-1].exists():
            return ""
        return paths[-1].read_bytes()[-nbytes:].decode("utf-8", "replace")

    def start(self, *, jobs: Iterable[str] = (), timeout_s: float = 30.0) -> MtproxyProcess:
        """Start, then wait for readiness and for each of ``jobs`` (``namespace/name``) to start.

        Raises:
            RuntimeError: Already running, exited early, or not ready in time.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.runs += 1
        self._log_file = (self.workdir / f"run-{self.runs}.log").open("ab")
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
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        _running.add(self)
        wanted = set(jobs)
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}")
            started = {
                str(r.get("job"))
                for r in self.records()
                if r["_run"] == f"run-{self.runs}" and r.get("msg") == "remote write job started"
            }
            if wanted <= started and self._ready():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"{self.name} not ready (jobs started: {sorted(started)}, wanted {sorted(wanted)}) "
                    f"after {timeout_s:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            with _OPENER.open(f"{self.url}/-/ready", timeout=2.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

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
        self._terminate(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self._terminate(signal.SIGTERM)

    async def start_async(self, *, jobs: Iterable[str] = ()) -> None:
        await trio.to_thread.run_sync(lambda: self.start(jobs=jobs))

    def _terminate(self, sig: signal.Signals) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _running.discard(self)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_running):
        process.kill()
