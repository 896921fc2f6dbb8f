"""The proxy's recent requests, for the dev console: a ring buffer fed by the request log.

With ``proxy.enable_request_logging`` the proxy logs one ``request served`` record per
request, with ``tenant``, ``endpoint`` (the route template), ``method``, ``status`` and
``duration_ms`` as fields. :class:`RecentRequests` is a ``logging.Handler`` attached to
that logger: it keeps the newest records and per-tenant counts, and reads nothing of the
proxy's internals. The log record is the proxy's documented per-request output, so this
works unchanged whatever the proxy does inside.

Counts: every request; ``rejected`` are 4xx answers (no policy, refused query, over the
tenant's share), ``errors`` 5xx. The rate is over the last ``window_s`` seconds.
Thread-safe (a handler may be called from worker threads); :meth:`statistics` returns a
frozen snapshot.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["PROXY_REQUEST_LOGGER", "RecentRequests", "RecentRequestsStatistics", "RequestRecord", "TenantRequests"]

PROXY_REQUEST_LOGGER = "mtproxy.proxy.app"
"""The logger of the proxy's ``request served`` records."""
_MESSAGE = "request served"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One request the proxy answered."""

    at: float
    """Wall-clock time it was answered."""
    tenant: str
    method: str
    endpoint: str
    status: int
    duration_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantRequests:
    """One tenant's counts since start, and its recent rate."""

    requests: int
    rejected: int
    errors: int
    per_second: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentRequestsStatistics:
    """The newest requests (newest first) and counts per tenant (``""``: no tenant named)."""

    recent: tuple[RequestRecord, ...]
    tenants: Mapping[str, TenantRequests] = field(default_factory=dict)
    total: int = 0


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    rejected: int = 0
    errors: int = 0
    times: collections.deque[float] = field(default_factory=collections.deque)


class RecentRequests(logging.Handler):
    """Keeps the ``keep`` newest ``request served`` records and per-tenant counts."""

    def __init__(
        self, *, keep: int = 200, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep: must be at least 1, got {keep}")
        if window_s <= 0:
            raise ValueError(f"window_s: must be positive, got {window_s}")
        super().__init__(level=logging.INFO)
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=keep)
        self._counts: dict[str, _Counts] = {}
        self._window_s = window_s
        self._clock = clock
        self._started = clock()
        self._total = 0
        self._mutex = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != _MESSAGE:
            return
        fields = vars(record)
        try:
            item = RequestRecord(
                at=record.created,
                tenant=str(fields.get("tenant") or ""),
                method=str(fields.get("method") or ""),
                endpoint=str(fields.get("endpoint") or ""),
                status=int(fields.get("status") or 0),
                duration_ms=float(fields.get("duration_ms") or 0.0),
            )
        except (TypeError, ValueError):
            return
        now = self._clock()
        with self._mutex:
            self._records.append(item)
            self._total += 1
            counts = self._counts.setdefault(item.tenant, _Counts())
            counts.requests += 1
            counts.rejected += 400 <= item.status < 500
            counts.errors += item.status >= 500
            counts.times.append(now)
            self._expire(counts, now)

    def _expire(self, counts: _Counts, now: float) -> None:
        while counts.times and counts.times[0] < now - self._window_s:
            counts.times.popleft()

    def statistics(self, *, newest: int = 10) -> RecentRequestsStatistics:
        """The ``newest`` requests and every tenant's counts."""
        now = self._clock()
        span = min(self._window_s, max(now - self._started, 1.0))
        with self._mutex:
            tenants = {}
            for tenant, counts in self._counts.items():
                self._expire(counts, now)
                tenants[tenant] = TenantRequests(
                    requests=counts.requests,
                    rejected=counts.rejected,
                    errors=counts.errors,
                    per_second=len(counts.times) / span,
                )
            recent = tuple(reversed(self._records))[:newest]
            return RecentRequestsStatistics(recent=recent, tenants=tenants, total=self._total)
