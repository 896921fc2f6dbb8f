"""The infrastructure Prometheus backends: health, round-robin, and one failover retry.

Targets come from discovery (``set_targets``; static URLs or Kubernetes objects) and
can change at any time; a target's health marks survive such updates (the original
reset them every refresh). A checker probes ``/-/ready`` every interval; a target turns
unhealthy after ``unhealthy_threshold`` failures in a row and healthy again after
``healthy_threshold`` successes. New targets start healthy, so a fresh process can
serve before its first probe.

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
    gzipped: bytes | None = None
    """The body as the backend sent it, when it came gzip-encoded (passed on to clients that accept it)."""


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
        http: httpx.AsyncClient,
        *,
        check_interval_s: float = 10.0,
        check_timeout_s: float = 5.0,
        unhealthy_threshold: int = 2,
        healthy_threshold: int = 1,
    ) -> None:
        if unhealthy_threshold < 1 or healthy_threshold < 1:
            raise ValueError("unhealthy_threshold/healthy_threshold: must be at least 1")
        self._http = http
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

    async def _send_to(self, url: str, request: BackendRequest, headers: Mapping[str, str]) -> BackendResponse:
        form = encode_form(request.params)
        # gzip only when the caller asks for it (see mtproxy.proxy.encoding); never br or zstd
        wanted = {"Accept-Encoding": "identity", **headers}
        if request.method == "GET":
            # the query string is ours, fully percent-encoded: nothing of the client's request
            outgoing = self._http.build_request("GET", f"{url}{request.path}?{form.decode('ascii')}", headers=wanted)
        else:
            outgoing = self._http.build_request(
                "POST", f"{url}{request.path}", content=form, headers={**wanted, "Content-Type": FORM_CONTENT_TYPE}
            )
        response = await self._http.send(outgoing, stream=True)
        try:
            decoder = BodyDecoder(response.headers.get("content-encoding"))
            raw: list[bytes] = []
            async for chunk in response.aiter_raw():
                raw.append(chunk)
                decoder.feed(chunk)  # decoding overlaps the rest of the transfer
        finally:
            await response.aclose()
        return BackendResponse(
            target=url,
            status=response.status_code,
            content_type=response.headers.get("content-type", "application/json"),
            body=decoder.finish(),
            headers=dict(response.headers),
            gzipped=b"".join(raw) if decoder.gzipped else None,
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
                response = await self._http.get(f"{url}/-/ready")
                ok = response.status_code == 200
            except httpx.HTTPError:
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
