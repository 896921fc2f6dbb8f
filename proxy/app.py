"""The proxy's ASGI application: one request from bytes on the wire to an enforced answer.

Order for a tenant route: read the body (bounded), parse the parameters as Prometheus
does, authenticate the tenant, find its policy (none: 403 saying so), check the request's
limits (``mtproxy.proxy.limits``: size, range, points), take a slot of the fair queue
(``mtproxy.proxy.fairqueue``: a per-tenant share of ``max_concurrent_requests``, waiting
tenants served in turn; after ``queue_timeout`` 429 for a tenant at its share, 503 when the
service is full, both with Retry-After), let the endpoint's policy build the backend
request from the parsed values only (or answer directly), try the cache, call the backend
within ``backend_timeout`` (504 after it), check the answer (defence in depth, filters),
respond. A client that disconnects cancels the work, queueing included. Every error is
Prometheus' envelope with the right status. Operations routes (health, metrics, debug)
are answered by ``mtproxy.proxy.ops`` and take no slot.

The event loop stays free for health probes and other tenants: parsing a large request,
enforcing a large query, and reading, checking, merging or filtering a large answer run in
a worker process (``mtproxy.proxy.offload``: the PromQL parser and the JSON decoder hold
the GIL throughout, and even pure Python in a thread makes each step of the loop wait for
its 5 ms turn). Small work stays inline, where a trip to a worker would cost more than the work.

This module is one unit because it is the one place the request's steps are ordered;
each step's logic lives in its own module.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import trio

from mtproxy.api import ProxyConfig, QueryMode, parse_duration_ms
from mtproxy.proxy import filters, metadata
from mtproxy.proxy.auth.base import Authenticator, AuthRequest, Tenant
from mtproxy.proxy.backends import BackendPool, BackendResponse
from mtproxy.proxy.cache import ResponseCache
from mtproxy.proxy.encoding import COMPRESS_MIN_BYTES, accepts_gzip, gzip_encode
from mtproxy.proxy.errors import (
    BackendError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    ProxyError,
    Unavailable,
    render_error,
)
from mtproxy.proxy.fairqueue import FairQueue, QueueTimeout
from mtproxy.proxy.limits import QueryLimits, TooManyRequests
from mtproxy.proxy.merge import merge_json_answers, merge_text_answers
from mtproxy.proxy.metrics import ProxyMetrics
from mtproxy.proxy.offload import Offload, default_workers
from mtproxy.proxy.ops import OpsHandler
from mtproxy.proxy.outcomes import BackendRequest, ImmediateAnswer, ResultCheck
from mtproxy.proxy.params import RequestParams, encode_form, parse_request_params
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.query_endpoints import query_request
from mtproxy.proxy.resultcheck import check_result
from mtproxy.proxy.routes import Route, RouteKind, match_route
from mtproxy.proxy.series_endpoints import (
    federate_request,
    label_values_request,
    labels_request,
    series_request,
)
from mtproxy.proxy.server import answer_lifespan
from mtproxy.proxy.tenants import TenantDirectory

__all__ = ["ProxyApp"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_JSON = "application/json"
_CLIENT_GONE = 499
"""Recorded (as nginx does) when the client left before the answer; nothing is sent."""
_SINGLE_HEADERS = frozenset({"authorization", "x-tenant-namespace", "x-api-key", "content-type"})
_QUERY_KINDS = frozenset({RouteKind.QUERY, RouteKind.QUERY_RANGE, RouteKind.QUERY_EXEMPLARS, RouteKind.FORMAT_QUERY})
_MATCH_KINDS = frozenset({RouteKind.SERIES, RouteKind.LABELS, RouteKind.LABEL_VALUES, RouteKind.FEDERATE})
_PARSE_IN_WORKER_BYTES = 64 * 1024
"""Above this, a request's parameters are parsed in a worker process (a thread would share the GIL in
5 ms turns, and every step of the event loop would wait for its turn)."""
_ENFORCE_IN_WORKER_BYTES = 16 * 1024
"""Above this much query text, enforcement runs in a worker process (the parser holds the GIL)."""
_ENCODE_HERE_BYTES = 64 * 1024
"""Above this, a backend request is form-encoded by ``decide_encoded``, in the worker that enforced it."""
_JSON_IN_WORKER_BYTES = 256 * 1024
"""Above this, reading, checking, merging or filtering an answer runs in a worker process."""

_EMPTY_METADATA = b'{"status":"success","data":{}}'
_NO_TARGET_METADATA = frozenset({400, 404, 405, 501})
"""Statuses of a backend without ``/api/v1/targets/metadata`` (Thanos, VictoriaMetrics …)."""

T = TypeVar("T")


class _Answer:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        content_type: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self.headers = dict(headers or {})


def _error_answer(error: ProxyError) -> _Answer:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after_s)))
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="prometheus-multi-tenant-proxy"'
    return _Answer(error.status, _JSON, render_error(error), headers)


class ProxyApp:
    """Callable as an ASGI 3 application."""

    def __init__(
        self,
        *,
        config: ProxyConfig,
        tenants: TenantDirectory,
        authenticator: Authenticator,
        backends: BackendPool,
        metrics: ProxyMetrics,
        ops: OpsHandler,
        offload: Offload | None = None,
    ) -> None:
        self._config = config
        self._tenants = tenants
        self._auth = authenticator
        self._backends = backends
        self._metrics = metrics
        self._ops = ops
        self._queue = FairQueue(
            total_slots=config.max_concurrent_requests,
            tenant_slots=config.max_concurrent_requests_per_tenant or max(1, config.max_concurrent_requests // 4),
        )
        metrics.watch_queue(self._queue.statistics, has_policy=lambda ns: tenants.policy_for(ns) is not None)
        self._limits = QueryLimits.from_config(config)
        self._offload = offload if offload is not None else Offload(workers=default_workers())
        self._queue_timeout_s = parse_duration_ms(config.queue_timeout) / 1000
        self._backend_timeout_s = parse_duration_ms(config.backend_timeout) / 1000
        self._backend_headers = {"Accept-Encoding": "gzip"} if config.backend_compression else None
        self._cache = (
            ResponseCache(max_bytes=config.cache_max_bytes, ttl_s=parse_duration_ms(config.cache_ttl) / 1000)
            if config.enable_caching
            else None
        )

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache, when caching is on."""
        return self._cache

    @property
    def queue(self) -> FairQueue:
        """The fair queue tenant requests wait in."""
        return self._queue

    @property
    def offload(self) -> Offload:
        """The worker processes that take CPU-heavy work off the event loop."""
        return self._offload

    def close(self) -> None:
        """Stop the worker processes (the service is stopping)."""
        self._offload.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method = scope["method"].upper()
        path = scope["path"]
        matched = match_route(path)
        template = matched[0].template if matched else "unmatched"
        tenant_name = ""
        try:
            if matched is None:
                raise NotFound(f"no such endpoint: {path}")
            route, path_params = matched
            if method not in route.methods:
                raise MethodNotAllowed(f"method {method} not allowed for {route.template}")
            if _header(scope, b"content-length") is not None and _header(scope, b"transfer-encoding") is not None:
                # RFC 9112 6.3: a request framed both ways is how requests are smuggled past a proxy
                raise BadRequest("a request may not have both Content-Length and Transfer-Encoding")
            body = await self._read_body(receive)
            query_string = scope.get("query_string", b"")
            parse = functools.partial(
                parse_request_params,
                method="POST" if method == "POST" else "GET",
                query_string=query_string,
                content_type=_header(scope, b"content-type"),
                body=body,
            )
            params = await self._compute(len(body) + len(query_string), _PARSE_IN_WORKER_BYTES, parse)
            headers = _headers(scope)
            if route.tenant or route.kind in (
                RouteKind.DEBUG_TENANTS,
                RouteKind.DEBUG_ENFORCE,
                RouteKind.COLLECTED_METRICS,
            ):
                tenant = await self._authenticate(method, path, headers, params)
                tenant_name = tenant.namespace
            else:
                tenant = None
            if route.tenant:
                assert tenant is not None
                answer = await self._with_disconnect(receive, self._serve_tenant(route, path_params, params, tenant))
            else:
                status, content_type, payload = await self._ops.answer(route.kind, params=params, tenant=tenant)
                answer = _Answer(status, content_type, payload)
        except ProxyError as error:
            answer = _error_answer(error)
        except Exception:
            logger.exception("request failed", extra={"path": template, "tenant": tenant_name})
            answer = _error_answer(ProxyError("internal error"))
        if method == "HEAD":
            answer.body = b""
        if answer.status != _CLIENT_GONE:
            await _respond(send, answer, gzip=accepts_gzip(_joined_header(scope, b"accept-encoding")))
        elapsed = time.perf_counter() - started
        self._metrics.requests.labels(method, template, str(answer.status)).inc()
        self._metrics.duration.labels(method, template).observe(elapsed)
        if tenant_name and self._tenants.policy_for(tenant_name) is not None:
            self._metrics.tenant_requests.labels(tenant_name, str(answer.status)).inc()
        elif tenant_name:
            self._metrics.unknown_tenant_requests.inc()
        if self._config.enable_request_logging:
            logger.info(
                "request served",
                extra={
                    "tenant": tenant_name,
                    "endpoint": template,
                    "method": method,
                    "status": answer.status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._config.max_request_body_bytes:
                raise ProxyError(f"request body larger than {self._config.max_request_body_bytes} bytes", status=413)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _authenticate(self, method: str, path: str, headers: Mapping[str, str], params: RequestParams) -> Tenant:
        try:
            return await self._auth.authenticate(AuthRequest(method=method, path=path, headers=headers, params=params))
        except ProxyError as error:
            self._metrics.auth_failures.labels(str(error.status)).inc()
            raise

    async def _with_disconnect(self, receive: Receive, work: Awaitable[_Answer]) -> _Answer:
        """Run ``work``; cancel it if the client goes away first (starlette's race).

        ``work`` runs in this task, inside the nursery's scope, and only the watcher is a
        child: one task started per request instead of two. The outcome (answer or error)
        is carried out of the nursery, so a ``ProxyError`` reaches the caller as itself,
        not inside an exception group.
        """
        outcome: _Answer | ProxyError | None = None
        async with trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        nursery.cancel_scope.cancel(reason="client disconnected")
                        return

            nursery.start_soon(watch_disconnect)
            try:
                outcome = await work
            except ProxyError as error:
                outcome = error
            finally:
                nursery.cancel_scope.cancel()  # the watcher's job ends with the work
        if outcome is None:
            return _Answer(_CLIENT_GONE, _JSON, b"")
        if isinstance(outcome, ProxyError):
            raise outcome
        return outcome

    def _policy(self, tenant: Tenant) -> AccessPolicy:
        policy = self._tenants.policy_for(tenant.namespace)
        if policy is None:
            raise Forbidden(
                f"namespace {tenant.namespace!r} has no MetricAccess granting any metric; "
                "create one in that namespace to get access"
            )
        return policy

    async def _serve_tenant(
        self, route: Route, path_params: Mapping[str, str], params: RequestParams, tenant: Tenant
    ) -> _Answer:
        policy = self._policy(tenant)
        given = self._check_limits(route.kind, params)
        try:
            await self._queue.acquire(tenant.namespace, timeout_s=self._queue_timeout_s)
        except QueueTimeout as timeout:
            raise self._queue_refusal(timeout) from None
        try:
            return await self._answer_tenant(route, path_params, params, policy, given)
        finally:
            self._queue.release(tenant.namespace)

    def _check_limits(self, kind: RouteKind, params: RequestParams) -> int:
        """Refuse what exceeds the request limits; the bytes of query text given (query or match[])."""
        if kind in _QUERY_KINDS:
            given = len((params.single("query") or "").encode("utf-8"))
            self._limits.check_size("the query", given)
            if kind is RouteKind.QUERY_RANGE:
                self._limits.check_range(params)
            return given
        if kind in _MATCH_KINDS:
            given = sum(len(m.encode("utf-8")) for m in params.multi("match[]"))
            self._limits.check_size("the match[] selectors", given)
            return given
        return 0

    def _queue_refusal(self, timeout: QueueTimeout) -> ProxyError:
        retry_after_s = max(1, math.ceil(self._queue_timeout_s))
        if timeout.over_share:
            return TooManyRequests(
                f"namespace {timeout.tenant!r} has {self._queue.tenant_slots} requests running, its whole share "
                "(proxy.max_concurrent_requests_per_tenant), and waited proxy.queue_timeout for one to finish; "
                "retry later",
                retry_after_s=retry_after_s,
            )
        return Unavailable("too many concurrent requests; retry later", retry_after_s=retry_after_s)

    async def _compute(self, size: int, threshold: int, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)``: in a worker process when ``size`` exceeds ``threshold``, else inline."""
        if size > threshold:
            return await self._offload.run(function, *args)
        return function(*args)

    async def _answer_tenant(
        self,
        route: Route,
        path_params: Mapping[str, str],
        params: RequestParams,
        policy: AccessPolicy,
        given: int,
    ) -> _Answer:
        kind = route.kind
        if kind is RouteKind.METADATA:
            return await self._metadata(policy, params)
        if kind in (RouteKind.RULES, RouteKind.ALERTS):
            response = await self._fetch(BackendRequest(method="GET", path=route.template, params=()))
            if response.status != 200:
                return _Answer(response.status, response.content_type, response.body)
            keep = filters.filter_rules if kind is RouteKind.RULES else filters.filter_alerts
            filtered = await self._compute(
                len(response.body), _JSON_IN_WORKER_BYTES, functools.partial(keep, policy=policy), response.body
            )
            return _Answer(response.status, response.content_type, filtered)
        try:
            decision = await self._compute(
                given, _ENFORCE_IN_WORKER_BYTES, decide_encoded, kind, policy, params, path_params
            )
        except ProxyError as error:
            if kind in _QUERY_KINDS:
                self._metrics.enforcement_refusals.labels(str(error.status)).inc()
            raise
        if isinstance(decision, ImmediateAnswer):
            return _Answer(decision.status, decision.content_type, decision.body)
        if given:
            sent = sum(len(v.encode("utf-8")) for k, v in decision.params if k in ("query", "match[]"))
            what = "the query" if kind in _QUERY_KINDS else "the match[] selectors"
            self._limits.check_growth(what, given, sent, rules=len(policy.rules))
        cache_key = (policy.digest, decision.method, decision.path, decision.params)
        if self._cache is not None and decision.cacheable:
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._metrics.cache_hits.inc()
                return _Answer(*cached)
            self._metrics.cache_misses.inc()
        response = await self._fetch(decision, fan_out=self._config.query_mode is QueryMode.FAN_OUT)
        status, content_type, body = response.status, response.content_type, response.body
        raw_body = body
        if status == 200 and policy.isolated:
            checked, violations = await self._compute(
                len(body), _JSON_IN_WORKER_BYTES, checked_body, decision.result_check, body, policy.namespace
            )
            if violations:
                self._metrics.enforcement_violations.inc(violations)
            body = body if checked is None else checked
        if self._cache is not None and decision.cacheable and status == 200:
            self._cache.put(cache_key, status, content_type, body)
        if self._config.enable_request_logging and decision.result_check is not ResultCheck.NONE:
            changed = None if body is raw_body else body
            counts = await self._compute(
                len(raw_body) + len(body), _JSON_IN_WORKER_BYTES, _count_pair, raw_body, changed
            )
            self._log_aggregate(policy, *counts)
        return _Answer(status, content_type, body)

    def _log_aggregate(self, policy: AccessPolicy, total: int, filtered: int) -> None:
        """The original's per-query summary line, kept for the dashboards and alerts built on it."""
        logger.info(
            "Aggregated and filtered results from all targets",
            extra={
                "tenant_id": f"{policy.namespace}/{','.join(s.split('/', 1)[-1] for s in policy.sources)}",
                "total_metrics": total,
                "filtered_metrics": filtered,
                "successful_targets": 1
                if self._config.query_mode is QueryMode.LOAD_BALANCE
                else self._backends.statistics().healthy,
            },
        )

    async def _metadata(self, policy: AccessPolicy, params: RequestParams) -> _Answer:
        """``/api/v1/metadata`` built from what the tenant sees (see ``mtproxy.proxy.metadata``)."""
        metric = params.single("metric")
        limit_text = params.single("limit")
        try:
            limit = int(limit_text) if limit_text is not None else None
        except ValueError:
            raise BadRequest(f"limit: not an integer: {limit_text!r}") from None
        visible = await self._fetch(
            BackendRequest(
                method="POST", path="/api/v1/query", params=(("query", metadata.visible_sources_query(policy.rules)),)
            )
        )
        if visible.status != 200:
            return _Answer(visible.status, visible.content_type, visible.body)
        sources = await self._compute(len(visible.body), _JSON_IN_WORKER_BYTES, metadata.visible_sources, visible.body)
        if metric is not None:
            sources = {source for source in sources if source[0] == metric}
        selector = metadata.target_selector(sources)
        if selector is None:
            return _Answer(200, _JSON, _EMPTY_METADATA)  # no visible series comes from a scrape target
        pairs = [("match_target", selector)] + ([("metric", metric)] if metric is not None else [])
        targets = await self._fetch(BackendRequest(method="GET", path="/api/v1/targets/metadata", params=tuple(pairs)))
        if targets.status == 200:
            answer = await self._compute(
                len(targets.body),
                _JSON_IN_WORKER_BYTES,
                metadata.metadata_from_targets,
                targets.body,
                frozenset(sources),
                limit,
                metric,
            )
            return _Answer(200, _JSON, answer if answer is not None else _EMPTY_METADATA)
        if targets.status not in _NO_TARGET_METADATA:
            return _Answer(targets.status, targets.content_type, targets.body)
        # the backend cannot tell which target said what: its merged metadata, kept to the visible names
        merged = await self._fetch(
            BackendRequest(method="GET", path="/api/v1/metadata", params=(("metric", metric),) if metric else ())
        )
        if merged.status != 200:
            return _Answer(merged.status, merged.content_type, merged.body)
        names = frozenset(name for name, _, _ in sources)
        answer = await self._compute(
            len(merged.body), _JSON_IN_WORKER_BYTES, metadata.metadata_of_names, merged.body, names, limit
        )
        return _Answer(200, _JSON, answer if answer is not None else _EMPTY_METADATA)

    async def _fetch(self, request: BackendRequest, *, fan_out: bool = False) -> BackendResponse:
        """The backend's answer, decoded (gzip on the wire only with ``backend_compression``)."""
        self._metrics.in_flight.inc()
        try:
            with trio.move_on_after(self._backend_timeout_s) as deadline:
                if fan_out:
                    status, content_type, body = await self._fan_out(request)
                    return BackendResponse(target="", status=status, content_type=content_type, body=body, headers={})
                response = await self._backends.send(request, headers=self._backend_headers)
                self._metrics.backend_requests.labels(response.target, str(response.status)).inc()
                return response
            assert deadline.cancelled_caught
            raise ProxyError(f"backend did not answer within {self._config.backend_timeout}", status=504)
        finally:
            self._metrics.in_flight.dec()

    async def _fan_out(self, request: BackendRequest) -> tuple[int, str, bytes]:
        replicas = self._config.replica_labels
        if any(request.path == f"/api/v1/label/{name}/values" for name in replicas):
            # merged series carry no replica label, so it has no values (Thanos answers the same)
            return 200, _JSON, b'{"status":"success","data":[]}'
        results = await self._backends.send_all(request)
        answers: list[tuple[str, int, bytes]] = []
        for result in results:
            if isinstance(result, BackendResponse):
                self._metrics.backend_requests.labels(result.target, str(result.status)).inc()
                answers.append((result.target, result.status, result.body))
            else:
                answers.append(("unknown", 502, render_error(BackendError(str(result)))))
        size = sum(len(body) for _, _, body in answers)
        if request.result_check is ResultCheck.FEDERATE:
            bodies = [body for _, status, body in answers if status == 200]
            if not bodies:
                raise BackendError("no backend answered")
            merged_text = await self._compute(size, _JSON_IN_WORKER_BYTES, merge_text_answers, bodies)
            return 200, "text/plain; version=0.0.4; charset=utf-8", merged_text
        merge = functools.partial(
            merge_json_answers,
            replica_labels=replicas,
            strings="label_names" if request.path == "/api/v1/labels" else "values",
        )
        status, body = await self._compute(size, _JSON_IN_WORKER_BYTES, merge, answers)
        return status, _JSON, body


def decide(
    kind: RouteKind, policy: AccessPolicy, params: RequestParams, path_params: Mapping[str, str]
) -> BackendRequest | ImmediateAnswer:
    """The endpoint policy's decision for a tenant route: the enforced backend request, or an answer.

    Pure, so a large query can be enforced in a worker process.

    Raises:
        ProxyError: the endpoint's refusal (unparsable, outside the policy, unknown kind).
    """
    if kind in _QUERY_KINDS:
        return query_request(kind.value, policy, params)
    if kind is RouteKind.SERIES:
        return series_request(policy, params)
    if kind is RouteKind.LABELS:
        return labels_request(policy, params)
    if kind is RouteKind.LABEL_VALUES:
        return label_values_request(policy, params, label=path_params["name"])
    if kind is RouteKind.FEDERATE:
        return federate_request(policy, params)
    if kind is RouteKind.BUILDINFO:
        return BackendRequest(method="GET", path="/api/v1/status/buildinfo", params=())
    raise NotFound(f"no such endpoint: {kind.value}")  # fail closed on a kind without a policy


def decide_encoded(
    kind: RouteKind, policy: AccessPolicy, params: RequestParams, path_params: Mapping[str, str]
) -> BackendRequest | ImmediateAnswer:
    """``decide``, with a large backend request form-encoded already (where ``decide`` ran)."""
    decision = decide(kind, policy, params, path_params)
    if isinstance(decision, BackendRequest) and sum(len(v) for _, v in decision.params) > _ENCODE_HERE_BYTES:
        return dataclasses.replace(decision, form=encode_form(decision.params))
    return decision


def checked_body(kind: ResultCheck, body: bytes, namespace: str) -> tuple[bytes | None, int]:
    """``check_result`` as a pure function: (the changed body or None, series removed)."""
    removed = [0]

    def count(n: int) -> None:
        removed[0] += n

    checked = check_result(kind, body, namespace=namespace, on_violation=count)
    return (None if checked is body else checked), removed[0]


def _count_pair(raw: bytes, checked: bytes | None) -> tuple[int, int]:
    """Results before and after the check (``checked`` None: unchanged), for the summary log line."""
    total = _count_results(raw)
    return total, total if checked is None else _count_results(checked)


def _count_results(body: bytes) -> int:
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return 0
    if isinstance(data, dict):
        return len(data.get("result") or [])
    return len(data) if isinstance(data, list) else 0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _joined_header(scope: Scope, name: bytes) -> str | None:
    """Every value of a list-valued header, comma-joined (RFC 9110 §5.3); None when absent."""
    values = [value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == name]
    return ", ".join(values) if values else None


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-cased headers; an identity header given twice is refused, never guessed at."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name in out and name in _SINGLE_HEADERS:
            raise BadRequest(f"header {name} is given more than once")
        out.setdefault(name, value.decode("latin-1"))
    return out


async def _respond(send: Send, answer: _Answer, *, gzip: bool) -> None:
    """Send ``answer``; gzip-encoded by the proxy when the client accepts it (mtproxy.proxy.encoding)."""
    body = answer.body
    headers = [(b"content-type", answer.content_type.encode())]
    if len(body) >= COMPRESS_MIN_BYTES:
        headers.append((b"vary", b"Accept-Encoding"))
        if gzip:
            body = await _gzip(body)
            headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    headers.extend((k.lower().encode(), v.encode("latin-1")) for k, v in answer.headers.items())
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_GZIP_IN_THREAD_BYTES = 1 << 20
"""Above this, compressing (about 0.25 ms per MiB) moves to a worker thread so other requests go on."""


async def _gzip(body: bytes) -> bytes:
    if len(body) > _GZIP_IN_THREAD_BYTES:
        return await trio.to_thread.run_sync(gzip_encode, body)
    return gzip_encode(body)
