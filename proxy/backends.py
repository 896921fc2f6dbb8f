"""The infrastructure Prometheus backends: health, round-robin, and one failover retry.

Targets come from discovery (``set_targets``; static URLs or Kubernetes objects) and
can change at any time; a target's health marks survive such updates (the original
reset them every refresh). A checker probes ``/-/ready`` every interval; a target turns
unhealthy after ``unhealthy_threshold`` failures in a row and healthy again after
``healthy_threshold`` successes. New targets start healthy, so a fresh process can
serve before its first probe.

Requests go straight to an httpx transport (connection pool, HTTP/1.1) rather than
through an ``httpx.AsyncClient``: the client layer adds cookie persistence (a backend's
cookie would be replayed on every tenant's later requests), environment proxies, and
about 0.15 ms per request that the proxy has no use for.

``send`` picks healthy targets round-robin; a connect error, a timeout or a 502/503/504
is retried once on another target, so a backend dying mid-test fails no request that
another backend can answer. ``send_all`` asks every healthy target concurrently (the
``fan_out`` mode). Any Prometheus-API endpoint is a valid target: Thanos Querier, Mimir
or a VictoriaMetrics cluster for users who outgrow one Prometheus.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx
import trio

from mtproxy.proxy.encoding import BodyDecoder
from mtproxy.proxy.errors import BackendError, Unavailable
from mtproxy.proxy.outcomes import BackendRequest
from mtproxy.proxy.params import FORM_CONTENT_TYPE, encode_form

__all__ = ["BackendPool", "BackendResponse", "PoolStatistics", "TargetStatus"]

logger = logging.getLogger(__name__)

_FAILOVER_STATUSES = frozenset({502, 503, 504})
_DEFAULT_HEADERS = {"User-Agent": "prometheus-multi-tenant-proxy", "Accept-Encoding": "identity"}
"""gzip only when a caller asks for it (see mtproxy.proxy.encoding); never br or zstd."""
_QUERY_ERROR_TYPES = frozenset({"timeout", "canceled"})


def _query_outcome(response: BackendResponse) -> bool:
    """Whether a 503 is Prometheus saying the *query* timed out or was cancelled (errorType
    timeout/canceled): the backend is fine, another one would only repeat the expensive query, and
    counting it would let one tenant's heavy queries mark backends unhealthy for everyone."""
    if response.status != 503 or len(response.body) > 64 * 1024:
        return False
    try:
        document = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and document.get("errorType") in _QUERY_ERROR_TYPES


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendResponse:
    """A backend's answer (the body fully read)."""

    target: str
    status: int
    content_type: str
    body: bytes
    """Decoded."""
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetStatus:
    """Health of one target, as /debug/targets shows it."""

    url: str
    healthy: bool
    last_seen: float | None
    """Wall-clock time of the last successful probe or request."""
    consecutive_failures: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStatistics:
    """Counts for /health and /metrics."""

    total: int
    healthy: int
    requests: int
    failovers: int


@dataclass(slots=True)
class _Health:
    healthy: bool = True
    failures: int = 0
    successes: int = 0
    last_seen: float | None = None


class BackendPool:
    """Targets, their health, and how requests reach them."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        check_interval_s: float = 10.0,
        check_timeout_s: float = 5.0,
        unhealthy_threshold: int = 2,
        healthy_threshold: int = 1,
    ) -> None:
        if unhealthy_threshold < 1 or healthy_threshold < 1:
            raise ValueError("unhealthy_threshold/healthy_threshold: must be at least 1")
        self._transport = transport
        self._check_interval_s = check_interval_s
        self._check_timeout_s = check_timeout_s
        self._unhealthy_threshold = unhealthy_threshold
        self._healthy_threshold = healthy_threshold
        self._targets: tuple[str, ...] = ()
        self._health: dict[str, _Health] = {}
        self._counter = itertools.count()
        self._requests = 0
        self._failovers = 0
        self._changed = trio.Event()

    def set_targets(self, urls: Iterable[str]) -> None:
        """Replace the target list; health of targets that stay is kept."""
        targets = tuple(dict.fromkeys(url.rstrip("/") for url in urls))
        self._health = {url: self._health.get(url) or _Health() for url in targets}
        self._targets = targets
        self._changed.set()

    def targets(self) -> tuple[TargetStatus, ...]:
        """Every target with its health."""
        return tuple(
            TargetStatus(url=url, healthy=h.healthy, last_seen=h.last_seen, consecutive_failures=h.failures)
            for url in self._targets
            for h in (self._health[url],)
        )

    def healthy_targets(self) -> tuple[str, ...]:
        """URLs of healthy targets."""
        return tuple(url for url in self._targets if self._health[url].healthy)

    def statistics(self) -> PoolStatistics:
        """Counts."""
        return PoolStatistics(
            total=len(self._targets),
            healthy=len(self.healthy_targets()),
            requests=self._requests,
            failovers=self._failovers,
        )

    def _record(self, url: str, ok: bool) -> None:
        health = self._health.get(url)
        if health is None:
            return
        if ok:
            health.successes += 1
            health.failures = 0
            health.last_seen = time.time()
            if not health.healthy and health.successes >= self._healthy_threshold:
                health.healthy = True
                logger.info("backend healthy", extra={"backend": url})
        else:
            health.failures += 1
            health.successes = 0
            if health.healthy and health.failures >= self._unhealthy_threshold:
                health.healthy = False
                logger.warning("backend unhealthy", extra={"backend": url})

    def _order(self) -> list[str]:
        healthy = list(self.healthy_targets())
        if not healthy:
            return []
        start = next(self._counter) % len(healthy)
        return healthy[start:] + healthy[:start]

    async def _exchange(self, request: httpx.Request) -> tuple[httpx.Response, BodyDecoder]:
        """Send ``request``; the response and its whole body, decoded as it arrives."""
        response = await self._transport.handle_async_request(request)
        try:
            decoder = BodyDecoder(response.headers.get("content-encoding"))
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream), "an async transport returns an async stream"
            async for chunk in stream:
                decoder.feed(chunk)  # decoding overlaps the rest of the transfer
        finally:
            await response.aclose()
        return response, decoder

    async def _send_to(self, url: str, request: BackendRequest, headers: Mapping[str, str]) -> BackendResponse:
        form = request.form if request.form is not None else encode_form(request.params)
        wanted = {**_DEFAULT_HEADERS, **headers}
        if request.method == "GET":
            # the query string is ours, fully percent-encoded: nothing of the client's request
            outgoing = httpx.Request("GET", f"{url}{request.path}?{form.decode('ascii')}", headers=wanted)
        else:
            outgoing = httpx.Request(
                "POST", f"{url}{request.path}", content=form, headers={**wanted, "Content-Type": FORM_CONTENT_TYPE}
            )
        response, decoder = await self._exchange(outgoing)
        return BackendResponse(
            target=url,
            status=response.status_code,
            content_type=response.headers.get("content-type", "application/json"),
            body=decoder.finish(),
            headers=dict(response.headers),
        )

    async def send(self, request: BackendRequest, *, headers: Mapping[str, str] | None = None) -> BackendResponse:
        """Send to one healthy target; retry once on another after a transport error or 502/503/504.

        Raises:
            Unavailable: no healthy target.
            BackendError: every attempt failed.
        """
        order = self._order()
        if not order:
            raise Unavailable("no healthy backend", retry_after_s=5)
        self._requests += 1
        last_error = ""
        for attempt, url in enumerate(order[:2]):
            if attempt:
                self._failovers += 1
            try:
                # a BackendError here is about the answer (too large, corrupt): it reaches the client as a
                # 502 and is no health failure, or one tenant's huge query could mark backends unhealthy
                response = await self._send_to(url, request, headers or {})
            except httpx.HTTPError as exc:
                self._record(url, ok=False)
                last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("backend request failed", extra={"backend": url, "error": last_error[:256]})
                continue
            if response.status in _FAILOVER_STATUSES and not _query_outcome(response):
                self._record(url, ok=False)
                last_error = f"HTTP {response.status}"
                continue
            self._record(url, ok=True)
            return response
        raise BackendError(f"backend unavailable: {last_error}")

    async def send_all(
        self, request: BackendRequest, *, headers: Mapping[str, str] | None = None
    ) -> list[BackendResponse | BaseException]:
        """Send to every healthy target at once (fan-out); one result or error per target."""
        targets = self.healthy_targets()
        if not targets:
            raise Unavailable("no healthy backend", retry_after_s=5)
        self._requests += 1
        results: list[BackendResponse | BaseException] = [BackendError("not answered")] * len(targets)

        async def one(index: int, url: str) -> None:
            try:
                results[index] = await self._send_to(url, request, headers or {})
                self._record(url, ok=True)
            except httpx.HTTPError as exc:
                self._record(url, ok=False)
                results[index] = BackendError(f"{url}: {type(exc).__name__}")
            except BackendError as exc:
                results[index] = exc  # about the answer, not the backend's health (see send)

        async with trio.open_nursery() as nursery:
            for index, url in enumerate(targets):
                nursery.start_soon(one, index, url)
        return results

    async def _probe(self, url: str) -> None:
        ok = False
        with trio.move_on_after(self._check_timeout_s):
            try:
                response, _ = await self._exchange(httpx.Request("GET", f"{url}/-/ready", headers=_DEFAULT_HEADERS))
                ok = response.status_code == 200
            except (httpx.HTTPError, BackendError):
                ok = False
        self._record(url, ok=ok)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe every target each interval until cancelled."""
        task_status.started()
        while True:
            async with trio.open_nursery() as nursery:
                for url in self._targets:
                    nursery.start_soon(self._probe, url)
            with trio.move_on_after(self._check_interval_s):
                await self._changed.wait()
                self._changed = trio.Event()
