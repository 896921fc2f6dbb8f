"""CPU-heavy pure functions off the event loop: run in worker processes, waited for from worker threads.

The event loop also answers ``/-/healthy`` and every other tenant, so no single request may
hold it for long. A worker *thread* is not enough for the work that is heavy here: the
PromQL parser (promql-parser, native code) holds the GIL for the whole parse, regex
compilation included, and so does the C JSON decoder for a whole document; while either
runs in a thread the event loop cannot run at all (measured: seconds for a query of
megabytes of regex selectors; see the README's performance section). A worker process has
a GIL of its own. The calling task waits in a worker thread (``trio.to_thread.run_sync``
under a ``CapacityLimiter`` of ``workers``), which releases the GIL while it waits.

- Only module-level functions of picklable values can be run; the result must pickle too.
- A ``ProxyError`` raised in a worker is raised again in the caller, same type, message,
  status and ``retry_after_s``; what the call logged is emitted by the caller's logging
  (its JSON lines), not printed by the worker.
- A worker that dies (a native crash on hostile input) fails its call with a 500 and
  nothing else: the pool is replaced for the next call.
- Cancelled while waiting for capacity: nothing ran. Cancelled while running: the caller
  goes on at once and the result is dropped; the worker finishes the call, and its
  capacity stays taken until then, so cancelled calls cannot pile up work behind the limiter.
- Workers start lazily, on the first call, with the ``spawn`` method (forking a process
  that runs threads is unsafe); each imports the modules of the functions it runs. They
  run niced (``WORKER_NICENESS``), so on a busy machine the event loop gets the CPU first.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from mtproxy.proxy.errors import ProxyError

__all__ = ["Offload", "OffloadStatistics", "default_workers"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def default_workers() -> int:
    """Worker processes by default: one per CPU, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class _Raised:
    """A ``ProxyError`` carried back from a worker as plain values."""

    error_type: type[ProxyError]
    message: str
    status: int
    retry_after_s: float | None


class _Capture(logging.Handler):
    """Keeps the records a call logs in a worker, made picklable, for the caller to emit."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        self.records.append(record)


WORKER_NICENESS = 10
"""Workers run at a lower CPU priority than the event loop's process: on a busy machine the
scheduler gives the loop the CPU first, so a tenant's heavy work delays only that tenant."""


def _lower_priority() -> None:
    os.nice(WORKER_NICENESS)


def _call_in_worker(function: Callable[..., Any], args: tuple[Any, ...], level: int) -> tuple[Any, list[Any]]:
    root = logging.getLogger()
    root.setLevel(level)
    capture = _Capture()
    root.addHandler(capture)
    try:
        return function(*args), capture.records
    except ProxyError as error:
        return _Raised(type(error), error.message, error.status, error.retry_after_s), capture.records
    finally:
        root.removeHandler(capture)


@dataclass(frozen=True, slots=True, kw_only=True)
class OffloadStatistics:
    """A frozen snapshot of an :class:`Offload`."""

    workers: int
    running: int
    waiting: int
    calls: int
    worker_failures: int


class Offload:
    """Runs pure functions in up to ``workers`` worker processes; see the module doc."""

    def __init__(self, *, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers: must be at least 1, got {workers}")
        self._workers = workers
        self._limiter = trio.CapacityLimiter(workers)
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False
        self._calls = 0
        self._failures = 0

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise ProxyError("the service is stopping", status=503)
            if self._executor is None:
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_lower_priority,
                )
            return self._executor

    def _replace_broken(self, broken: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
                self._failures += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def _run_blocking(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        pool = self._pool()
        try:
            result, records = pool.submit(_call_in_worker, function, args, logging.getLogger().level).result()
            for record in records:  # emitted here, through the service's own handlers
                logging.getLogger(record.name).handle(record)
            return result
        except BrokenProcessPool:
            self._replace_broken(pool)
            logger.error("worker process failed", extra={"function": getattr(function, "__qualname__", "?")})
            return _Raised(ProxyError, "internal error: a worker process failed on this request", 500, None)
        except (RuntimeError, concurrent.futures.CancelledError):  # closed under the call
            return _Raised(ProxyError, "the service is stopping", 503, None)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` computed in a worker process.

        Raises:
            ProxyError: what ``function`` raised, or a 500 when its worker died.
        """
        self._calls += 1
        result = await trio.to_thread.run_sync(
            self._run_blocking, function, args, limiter=self._limiter, abandon_on_cancel=True
        )
        if isinstance(result, _Raised):
            raise result.error_type(result.message, status=result.status, retry_after_s=result.retry_after_s)
        return result  # type: ignore[no-any-return]

    def statistics(self) -> OffloadStatistics:
        """A frozen snapshot."""
        limiter = self._limiter.statistics()
        return OffloadStatistics(
            workers=self._workers,
            running=limiter.borrowed_tokens,
            waiting=limiter.tasks_waiting,
            calls=self._calls,
            worker_failures=self._failures,
        )

    def close(self) -> None:
        """Stop the workers (calls still running are dropped); later calls get 503."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
