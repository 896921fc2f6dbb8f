"""Fault injection: pause, delay, fail requests, drop watch streams, compact history.

Every request passes :meth:`Faults.before_request` before it is routed, and every watch
event passes :meth:`Faults.wait_resumed`:

- :meth:`Faults.pause` makes new requests (and events on open watches) block until
  :meth:`Faults.resume`; they are not refused, as with a server stuck behind a slow etcd.
- :meth:`Faults.set_delay` delays every request by a fixed time before it is handled.
- :meth:`Faults.fail_next` makes the next ``count`` matching requests answer an error
  Status (500 ``InternalError`` by default; 429 or 503 to exercise retries).
- :meth:`Faults.drop_watches` ends every open watch stream cleanly, as when the server
  closes connections; clients must re-watch from their last resourceVersion.
- :meth:`Faults.compact` compacts history as etcd does at a revision C (default: the
  current one): lists before C and watches resuming before C - 1 answer 410 Expired.

All methods run in the double's trio thread (from another thread use the
:class:`~.server.RunningDouble` wrappers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from .cluster import Cluster
from .errors import ApiError

__all__ = ["FaultStatistics", "Faults", "InjectedFailure"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectedFailure:
    """An error the next matching requests answer."""

    code: int = 500
    reason: str = "InternalError"
    message: str = "injected failure"
    method: str | None = None
    """Only requests with this HTTP method (any when None)."""
    path_prefix: str = ""
    """Only requests whose path starts with this."""

    def applies_to(self, *, method: str, path: str) -> bool:
        """Return whether a request is one this failure targets."""
        return (self.method is None or self.method.upper() == method) and path.startswith(self.path_prefix)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultStatistics:
    """A snapshot of the active faults."""

    paused: bool
    delay_s: float
    pending_failures: int
    failures_served: int


@dataclass(slots=True, kw_only=True)
class _Pending:
    failure: InjectedFailure
    remaining: int


class Faults:
    """The fault switches of one double."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._resumed = trio.Event()
        self._resumed.set()
        self._delay_s = 0.0
        self._failures: list[_Pending] = []
        self._served = 0

    def pause(self) -> None:
        """Make requests and watch events block until :meth:`resume`."""
        if self._resumed.is_set():
            self._resumed = trio.Event()
            logger.info("apidouble paused")

    def resume(self) -> None:
        """Release everything :meth:`pause` blocked."""
        if not self._resumed.is_set():
            self._resumed.set()
            logger.info("apidouble resumed")

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return not self._resumed.is_set()

    async def wait_resumed(self) -> None:
        """Return at once, or when the double is resumed."""
        await self._resumed.wait()

    def set_delay(self, seconds: float) -> None:
        """Delay every request by ``seconds`` (0 turns the delay off)."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        self._delay_s = seconds

    def fail_next(self, count: int, failure: InjectedFailure | None = None) -> None:
        """Answer the next ``count`` requests that ``failure`` targets with its error."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self._failures.append(_Pending(failure=failure or InjectedFailure(), remaining=count))

    def drop_watches(self) -> int:
        """End every open watch stream; return how many were open."""
        dropped = self._cluster.watches.drop_all()
        logger.info("apidouble dropped watches", extra={"streams": dropped})
        return dropped

    def compact(self, up_to: int | None = None) -> int:
        """Compact at ``up_to`` (default: now; see :meth:`.Store.compact`); return the events dropped."""
        dropped = self._cluster.store.compact(up_to)
        logger.info("apidouble compacted history", extra={
            "events": dropped, "compacted_resource_version": self._cluster.store.compacted_resource_version,
        })
        return dropped

    async def before_request(self, *, method: str, path: str) -> ApiError | None:
        """Apply pause and delay; return the injected error this request must answer, if any."""
        await self._resumed.wait()
        if self._delay_s > 0:
            await trio.sleep(self._delay_s)
        for entry in self._failures:
            failure = entry.failure
            if failure.applies_to(method=method, path=path):
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self._failures.remove(entry)
                self._served += 1
                error = ApiError(failure.message, details={})
                error.code = failure.code
                error.reason = failure.reason
                return error
        return None

    def statistics(self) -> FaultStatistics:
        """Return a snapshot of the active faults."""
        return FaultStatistics(
            paused=self.paused,
            delay_s=self._delay_s,
            pending_failures=sum(entry.remaining for entry in self._failures),
            failures_served=self._served,
        )
