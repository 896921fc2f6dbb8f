"""A server binary run as a child process for the length of a test or a session.

:class:`ServerProcess` owns one child process, one loopback port and one working directory.
It exists because every real server the tests use (Prometheus, Pushgateway, VictoriaMetrics,
vmauth) needs the same four things: a free port, a log file to read when it fails, a wait
until its readiness endpoint answers 200, and a stop that cannot hang.

Guarantees:

- ``start()`` returns only once ``GET <ready_path>`` answered 200, or raises
  :class:`ServerNotReadyError` with the last 2 KiB of the server's log. A server that failed
  or timed out is not left running.
- The port is chosen on the first successful start and kept: ``restart()`` (or ``stop()``
  then ``start()``) comes back on the same port with the same working directory, so a tenant
  Prometheus can be stopped and started again on its own data. Only the first start moves to
  another port when the chosen one was taken in the meantime.
- ``stop()`` sends SIGTERM, then SIGKILL after ``stop_grace_s``; it is idempotent. A process
  still running when the interpreter exits is killed by an ``atexit`` hook, so an aborted
  session leaves no servers behind.
- stdout and stderr of every start append to ``<workdir>/server.log``.

The methods block. From a trio test, use the ``*_async`` variants, which run them in a worker
thread so that the proxy or forwarder under test keeps running while a server stops or starts.
"""

from __future__ import annotations

import atexit
import base64
import logging
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import trio

from realservers.ports import LOOPBACK, free_port

__all__ = ["BasicAuth", "ServerNotReadyError", "ServerProcess"]

logger = logging.getLogger(__name__)

BasicAuth = tuple[str, str]
"""A username and a password."""

_LOG_TAIL_BYTES = 2048
_POLL_INTERVAL_S = 0.05
_ADDRESS_IN_USE = "address already in use"
_PORT_ATTEMPTS = 5

# Loopback requests must never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_running: set[ServerProcess] = set()


class ServerNotReadyError(RuntimeError):
    """A server exited or did not become ready before its deadline."""


class _AddressInUseError(ServerNotReadyError):
    """The port was taken between choosing it and the server binding it."""


class ServerProcess:
    """One server binary on one loopback port, with its own working directory.

    Args:
        name: Short name for messages and logs, e.g. ``"prometheus-tenant"``.
        argv_for_port: Builds the command line for a given port. It is called on every start,
            so it must be deterministic apart from the port.
        workdir: The directory the server runs in and logs to; data directories live below it.
        ready_path: Path polled until it answers 200, e.g. ``"/-/ready"``.
        port: A fixed port; by default a free one is chosen at the first start.
        ready_auth: Basic-auth credentials for the readiness request, if the server wants them.
        ready_timeout_s: How long ``start()`` waits for readiness.
        stop_grace_s: How long ``stop()`` waits after SIGTERM before SIGKILL.
        tls: The context that verifies the server's certificate, for a server that serves
            HTTPS only (kube-apiserver); its ``url`` is then ``https://…``.
    """

    def __init__(
        self,
        name: str,
        argv_for_port: Callable[[int], Sequence[str]],
        *,
        workdir: Path,
        ready_path: str,
        port: int | None = None,
        ready_auth: BasicAuth | None = None,
        ready_timeout_s: float = 30.0,
        stop_grace_s: float = 5.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if not ready_path.startswith("/"):
            raise ValueError(f"ready_path must start with '/', got {ready_path!r}")
        if ready_timeout_s <= 0:
            raise ValueError(f"ready_timeout_s must be positive, got {ready_timeout_s}")
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / "server.log"
        self._argv_for_port = argv_for_port
        self._ready_path = ready_path
        self._ready_auth = ready_auth
        self._ready_timeout_s = ready_timeout_s
        self._stop_grace_s = stop_grace_s
        self._port = port
        self._port_fixed = port is not None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._scheme = "https" if tls is not None else "http"
        self._opener = _OPENER if tls is None else urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ServerProcess {self.name} port={self._port} {state}>"

    # -- state ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on; fixed by the first successful start."""
        if self._port is None:
            raise RuntimeError(f"{self.name} has not been started yet, so it has no port")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` when started with ``tls``), without a trailing slash."""
        return f"{self._scheme}://{LOOPBACK}:{self.port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, as scrape configs want it."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the child process exists and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self.running and self._process is not None else None

    def log_tail(self, nbytes: int = _LOG_TAIL_BYTES) -> str:
        """The last ``nbytes`` of the server's log, decoded leniently."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, 2)
                size = log.tell()
                log.seek(max(0, size - nbytes))
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it is ready.

        Raises:
            RuntimeError: It is already running.
            ServerNotReadyError: It exited or was not ready in time; the message carries
                the tail of its log.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running on port {self._port}")
        attempts = 1 if self._port_fixed else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._port if self._port_fixed and self._port is not None else free_port()
            try:
                self._spawn(port)
                self._wait_ready(port)
            except _AddressInUseError:
                self._reap()
                if attempt == attempts:
                    raise
                logger.info("port taken, retrying", extra={"server": self.name, "port": port})
                continue
            except BaseException:
                self.kill()
                raise
            self._port = port
            self._port_fixed = True
            _running.add(self)
            logger.info("server ready", extra={"server": self.name, "port": port})
            return

    def stop(self) -> None:
        """Stop with SIGTERM, then SIGKILL after the grace period. Does nothing if stopped."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """Stop at once with SIGKILL, as a crash would: no flush, no clean shutdown."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> None:
        """Stop, then start again on the same port with the same working directory."""
        self.stop()
        self.start()

    async def start_async(self) -> None:
        """:meth:`start` in a worker thread, so the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(self.start)

    async def stop_async(self) -> None:
        """:meth:`stop` in a worker thread."""
        await trio.to_thread.run_sync(self.stop)

    async def restart_async(self) -> None:
        """:meth:`restart` in a worker thread."""
        await trio.to_thread.run_sync(self.restart)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------

    def _spawn(self, port: int) -> None:
        argv = [str(arg) for arg in self._argv_for_port(port)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"=== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
        self._log_file.flush()
        logger.debug("starting server", extra={"server": self.name, "argv": argv})
        self._process = subprocess.Popen(
            argv,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self, port: int) -> None:
        assert self._process is not None
        request = urllib.request.Request(f"{self._scheme}://{LOOPBACK}:{port}{self._ready_path}")
        if self._ready_auth is not None:
            token = base64.b64encode(":".join(self._ready_auth).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        deadline = time.monotonic() + self._ready_timeout_s
        while True:
            returncode = self._process.poll()
            if returncode is not None:
                tail = self.log_tail()
                if _ADDRESS_IN_USE in tail[-512:]:
                    raise _AddressInUseError(f"{self.name}: port {port} was taken:\n{tail}")
                raise ServerNotReadyError(
                    f"{self.name} exited with code {returncode} before it was ready "
                    f"(log {self.log_path}):\n{tail}"
                )
            if _answers_ok(self._opener, request):
                # Whoever took the port in the race may answer too: make sure it was us.
                if not _listens_on(self._process.pid, port):
                    raise _AddressInUseError(f"{self.name}: another process answers on port {port}")
                return
            if time.monotonic() > deadline:
                raise ServerNotReadyError(
                    f"{self.name} was not ready at {request.full_url} after "
                    f"{self._ready_timeout_s:g} s (log {self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def _terminate(self, sig: signal.Signals) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=self._stop_grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("server ignored SIGTERM, killing", extra={"server": self.name})
                process.kill()
                process.wait()
        self._reap()

    def _reap(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _running.discard(self)


def _answers_ok(opener: urllib.request.OpenerDirector, request: urllib.request.Request) -> bool:
    try:
        with opener.open(request, timeout=2.0) as response:
            return bool(response.status == 200)
    except OSError:  # refused, reset, timed out, TLS not up yet (URLError is one too)
        return False


def _listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a TCP socket listening on 127.0.0.1:``port`` (Linux /proc).

    Without /proc (not Linux) it cannot tell and says yes.
    """
    try:
        fd_dir = Path(f"/proc/{pid}/fd")
        inodes = set()
        for fd in fd_dir.iterdir():
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return True
    wanted = f"0100007F:{port:04X}"
    listen = "0A"
    for row in table:
        fields = row.split()
        if fields[1] == wanted and fields[3] == listen and fields[9] in inodes:
            return True
    return False


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.kill()
