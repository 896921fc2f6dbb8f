"""One server process that ``mtproxy dev`` owns: started, waited for until it answers, always stopped.

Guarantees:

- **Ready means answering.** :meth:`ChildServer.run` reports ``started`` only once the
  server's readiness URL answers 2xx; a process that exits first, or is not ready within
  ``ready_timeout_s``, fails the start with :class:`ChildFailed`, which names the server
  and quotes the end of its log.
- **Never outlives dev.** Cancelling ``run`` stops the process (SIGTERM, then SIGKILL after
  ``stop_grace_s``) and waits for it, shielded from the cancellation; with ``stop_after``
  (another server's ``stopped``) it first waits for that one, so etcd outlives the API
  server that needs it to shut down; the process is also
  asked to die with its parent (Linux ``PR_SET_PDEATHSIG``), so even a SIGKILLed
  ``mtproxy dev`` leaves no server behind.
- **Own process group.** The terminal's Ctrl-C reaches ``mtproxy dev`` only, which stops
  the service before the servers it talks to.
- A server that exits on its own later is recorded (``state``), logged once, and not
  restarted: the console shows it, the rest of the demo keeps running.

Readiness is found by asking the server: an external process offers nothing to wait on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

__all__ = ["ChildFailed", "ChildServer", "ChildState", "ChildStatistics"]

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 2000


class ChildState(enum.Enum):
    """Where a child server is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildStatistics:
    """A snapshot of one child server."""

    name: str
    url: str
    state: ChildState
    pid: int | None
    exit_code: int | None


class ChildFailed(RuntimeError):
    """A child server did not become ready; the message names it and quotes its log."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _wait_exit(process: subprocess.Popen[bytes]) -> int:
    """Wait for ``process`` to exit (a pidfd where Linux has one); its exit code."""
    if process.poll() is not None:
        return process.returncode
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is None:  # pragma: no cover - no pidfd (not Linux >= 5.3): nothing to wait on but the process
        while process.poll() is None:
            await trio.sleep(0.1)
        return process.returncode
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return process.wait()


class ChildServer:
    """A server process with a readiness URL; ``run`` it in a nursery with ``start``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        url: str,
        ready_path: str,
        log_path: Path,
        ready_timeout_s: float = 60.0,
        stop_grace_s: float = 10.0,
        verify: bool = True,
        stop_after: trio.Event | None = None,
    ) -> None:
        if ready_timeout_s <= 0 or stop_grace_s <= 0:
            raise ValueError("ready_timeout_s/stop_grace_s: must be positive")
        self.name = name
        self.argv = tuple(argv)
        self.url = url
        self.log_path = log_path
        self._ready_url = url + ready_path
        self._ready_timeout_s = ready_timeout_s
        self._stop_grace_s = stop_grace_s
        self._verify = verify
        self._stop_after = stop_after
        self.stopped = trio.Event()
        """Set once the process has been stopped (or has exited) and waited for."""
        self._state = ChildState.STARTING
        self._pid: int | None = None
        self._exit_code: int | None = None

    def statistics(self) -> ChildStatistics:
        """A snapshot for the console."""
        return ChildStatistics(
            name=self.name, url=self.url, state=self._state, pid=self._pid, exit_code=self._exit_code
        )

    def log_tail(self) -> str:
        """The end of the server's log (what it said before failing)."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-_LOG_TAIL_BYTES:].decode("utf-8", "replace").strip()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the process, report started once ready, run until cancelled; always stop it.

        Raises:
            ChildFailed: the process exited or was not ready in time, before ``started``.
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # Started from this (the trio) thread, not a worker thread as trio.run_process
            # would: PR_SET_PDEATHSIG fires when the *thread* that forked ends, and trio's
            # idle worker threads end after a few seconds.
            process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            self._pid = process.pid
            try:
                await self._wait_ready(process)
                self._state = ChildState.RUNNING
                task_status.started()
                code = await _wait_exit(process)
                self._state, self._exit_code = ChildState.EXITED, code
                logger.warning(
                    "dev server exited", extra={"server": self.name, "exit_code": code, "log": str(self.log_path)}
                )
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await self._stop(process)

    async def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        async with httpx.AsyncClient(timeout=2.0, verify=self._verify, trust_env=False) as http:
            with trio.move_on_after(self._ready_timeout_s):
                while process.poll() is None:
                    try:
                        response = await http.get(self._ready_url)
                    except httpx.HTTPError:
                        pass
                    else:
                        if response.is_success:
                            return
                    with trio.move_on_after(0.1):
                        await _wait_exit(process)
        self._state, self._exit_code = ChildState.EXITED, process.poll()
        why = f"exited with code {process.returncode}" if process.returncode is not None else (
            f"did not answer {self._ready_url} within {self._ready_timeout_s:g} s"
        )
        tail = self.log_tail()
        raise ChildFailed(f"{self.name} {why}" + (f"; its log ends:\n{tail}" if tail else ""))

    async def _stop(self, process: subprocess.Popen[bytes]) -> None:
        if self._stop_after is not None and process.poll() is None:
            with trio.move_on_after(self._stop_grace_s):
                await self._stop_after.wait()
        if process.poll() is None:
            process.terminate()
            with trio.move_on_after(self._stop_grace_s):
                await _wait_exit(process)
            if process.poll() is None:
                logger.warning("dev server killed", extra={"server": self.name, "grace_s": self._stop_grace_s})
                process.kill()
                await _wait_exit(process)
        if self._state is not ChildState.EXITED:
            self._state = ChildState.STOPPED
        self._exit_code = process.returncode
        self.stopped.set()
