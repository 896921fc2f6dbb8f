"""A real proxy in a test's trio nursery, in front of a given Prometheus, recording what reaches it.

``start_proxy(nursery, backend_url, access=[...])`` builds the proxy the way the CLI wires it
(``ProxyApp`` served by ``HTTPServer`` on a free loopback port, a ``BackendPool`` over an
``httpx.AsyncClient``), publishes the tenant policies computed from MetricAccess documents by
the reconciler's pure ``desired_policy``, and returns a :class:`RunningProxy` once the server
listens. The proxy lives until the nursery ends (pytest-trio cancels its ``nursery`` fixture
when the test ends); ``open_proxy`` is the same as an async context manager.

Every request the proxy sends to the backend passes an httpx request hook that records it as
a :class:`BackendCall` (method, path, URL and form parameters, headers, raw bytes), so a test
asserts what the backend received, not only what the client saw (STYLE.md, "Tests").
``enforcement_problems`` re-parses each recorded ``query`` and ``match[]`` and reports every
selector that could select a series the policy does not admit, over a universe of label sets.

``RunningProxy.raw`` talks HTTP/1.1 over a plain trio socket for requests httpx would
normalise or refuse to send (dot segments, duplicate headers, header injection, ``;``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import ssl
import urllib.parse
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from mtproxy.api import GuardrailsConfig, LabelMatcher, MetricAccessSchema, ProxyConfig, parse_selector
from mtproxy.proxy import AccessPolicy
from mtproxy.proxy.app import ProxyApp
from mtproxy.proxy.auth import HeaderAuthenticator
from mtproxy.proxy.auth.base import Authenticator
from mtproxy.proxy.backends import BackendPool
from mtproxy.proxy.metrics import ProxyMetrics
from mtproxy.proxy.ops import OpsHandler
from mtproxy.proxy.promql_parity import parse_promql
from mtproxy.proxy.server import HTTPServer
from mtproxy.proxy.tenants import TenantPolicies
from mtproxy.reconcilers.tenants import desired_policy

from .enforce_checks import selectors_of

__all__ = [
    "TENANT_HEADER",
    "BackendCall",
    "BackendRecorder",
    "RawResponse",
    "RunningProxy",
    "enforcement_problems",
    "label_universe",
    "load_policies",
    "metric_access",
    "open_proxy",
    "selector_matches",
    "start_proxy",
]

TENANT_HEADER = "X-Tenant-Namespace"
_ADMIT_ALL = GuardrailsConfig(require_isolation=False)
_VIOLATIONS = "prometheus_proxy_enforcement_violations_total"


def metric_access(
    namespace: str,
    name: str,
    metrics: Sequence[str],
    *,
    isolation: bool = True,
    label_selectors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A MetricAccess document (as ``kubectl get -o json`` would show it), without remote write."""
    spec: dict[str, Any] = {"source": namespace, "metricIsolation": isolation, "metrics": list(metrics)}
    if label_selectors:
        spec["labelSelectors"] = dict(label_selectors)
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def load_policies(
    documents: Iterable[Mapping[str, Any]], *, guardrails: GuardrailsConfig | None = None
) -> dict[str, AccessPolicy]:
    """Each namespace's merged policy, computed as the tenants reconciler computes it.

    Unless ``guardrails`` are given, every object is admitted (``require_isolation`` off): these
    tests are about what an admitted policy lets through, the guardrails have tests of their own.
    """
    schema = MetricAccessSchema()
    by_namespace: dict[str, list[Any]] = defaultdict(list)
    for document in documents:
        access = schema.load(dict(document))
        by_namespace[access.metadata.namespace].append(access)
    policies: dict[str, AccessPolicy] = {}
    for namespace, objects in by_namespace.items():
        decision = desired_policy(namespace, objects, guardrails=guardrails or _ADMIT_ALL)
        if decision.policy is not None:
            policies[namespace] = decision.policy
    return policies


# -- recording -----------------------------------------------------------------------------


def _pairs(raw: bytes) -> tuple[tuple[str, str], ...]:
    text = raw.decode("ascii")
    return tuple(urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False, separator="&"))


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendCall:
    """One request as it left the proxy for the backend."""

    method: str
    path: str
    url_params: tuple[tuple[str, str], ...]
    form_params: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    """Lower-cased names."""
    raw: bytes
    """The request target and the body, for "the smuggled bytes never appear" checks."""

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """Form values first, then URL values (the order Prometheus reads them in)."""
        return self.form_params + self.url_params

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of one parameter, form and URL together."""
        return tuple(value for key, value in self.params if key == name)

    def names(self) -> set[str]:
        """The parameter names sent."""
        return {key for key, _ in self.params}


@dataclass(frozen=True, slots=True)
class _Sent:
    """A request as it left, kept raw: it is read into a ``BackendCall`` when a test asks."""

    method: str
    path: str
    query: bytes
    form: bytes
    headers: Mapping[str, str]
    raw: bytes

    def call(self) -> BackendCall:
        return BackendCall(
            method=self.method,
            path=self.path,
            url_params=_pairs(self.query),
            form_params=_pairs(self.form),
            headers=self.headers,
            raw=self.raw,
        )


@dataclass(slots=True)
class BackendRecorder:
    """Keeps every request the proxy sent to a backend (``/-/ready`` probes excluded); see RecordingTransport.

    Requests are kept as bytes and parsed when ``calls`` or ``take`` is read: the recorder
    runs in the proxy's event loop, and parsing a form of megabytes there would be the
    test's own stall, not the proxy's.
    """

    _sent: list[_Sent] = field(default_factory=list)
    _calls: list[BackendCall] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path == "/-/ready":
            return
        body = request.read()
        form = b""
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = body
        self._sent.append(
            _Sent(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                form=form,
                headers={k.lower(): v for k, v in request.headers.items()},
                raw=request.url.raw_path + b"\n" + body,
            )
        )

    @property
    def calls(self) -> list[BackendCall]:
        """The calls recorded so far."""
        self._calls.extend(sent.call() for sent in self._sent)
        self._sent.clear()
        return self._calls

    def take(self) -> list[BackendCall]:
        """The calls recorded so far; the record starts empty again."""
        calls = self.calls
        self._calls = []
        return calls


class RecordingTransport(httpx.AsyncBaseTransport):
    """The backend transport, with every request shown to a recorder as it leaves the proxy."""

    def __init__(self, inner: httpx.AsyncBaseTransport, recorder: BackendRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._recorder(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- the proxy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RawResponse:
    """An HTTP/1.1 response read off a socket."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True, kw_only=True)
class RunningProxy:
    """A listening proxy and what it needs to be talked to and inspected."""

    base_url: str
    host: str
    port: int
    client: httpx.AsyncClient
    """For talking to the proxy (no hooks, no keep-alive, never through an HTTP proxy)."""
    recorder: BackendRecorder
    tenants: TenantPolicies
    """Publish or update policies here while the proxy runs."""
    metrics: ProxyMetrics
    backends: BackendPool
    app: ProxyApp
    server: HTTPServer

    def policy(self, namespace: str) -> AccessPolicy:
        found = self.tenants.policy_for(namespace)
        if found is None:
            raise KeyError(f"no policy published for {namespace!r}")
        return found

    def _headers(self, tenant: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
        out = {TENANT_HEADER: tenant} if tenant is not None else {}
        out.update(headers or {})
        return out

    async def get(
        self,
        path: str,
        params: Any = None,
        *,
        tenant: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """GET ``path`` as ``tenant`` (None: no tenant header)."""
        return await self.client.get(self.base_url + path, params=params, headers=self._headers(tenant, headers))

    async def post(
        self,
        path: str,
        data: Mapping[str, Any] | Sequence[tuple[str, Any]],
        *,
        tenant: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``data`` (a mapping, or pairs for repeated names) as a form to ``path`` as ``tenant``."""
        pairs = list(data.items()) if isinstance(data, Mapping) else list(data)
        all_headers = {"Content-Type": "application/x-www-form-urlencoded", **self._headers(tenant, headers)}
        content = urllib.parse.urlencode(pairs).encode("ascii")
        return await self.client.post(self.base_url + path, content=content, headers=all_headers)

    async def request(
        self,
        method: str,
        target: str,
        *,
        tenant: str | None,
        content: bytes | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        """Any method, with ``target`` (path and query) sent as written and an explicit body."""
        header_list: list[tuple[str, str]] = [(TENANT_HEADER, tenant)] if tenant is not None else []
        header_list.extend(headers.items() if isinstance(headers, Mapping) else headers or [])
        request = self.client.build_request(method, self.base_url + target, content=content, headers=header_list)
        return await self.client.send(request)

    async def raw(self, head: bytes, body: bytes = b"") -> RawResponse:
        """Send one request as bytes (``head`` without its final blank line) and read the answer.

        ``Connection: close`` and, for a body, ``Content-Length`` are added unless present.
        """
        lines = head.rstrip(b"\r\n").split(b"\r\n")
        lower = [line.lower() for line in lines]
        if not any(line.startswith(b"connection:") for line in lower):
            lines.append(b"Connection: close")
        if body and not any(line.startswith((b"content-length:", b"transfer-encoding:")) for line in lower):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        stream = await trio.open_tcp_stream(self.host, self.port)
        received = bytearray()
        async with stream:
            # The server may answer and close before reading everything, or reset after answering.
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            with trio.fail_after(30), contextlib.suppress(trio.BrokenResourceError):
                while chunk := await stream.receive_some(65536):
                    received += chunk
        return _parse_response(bytes(received))

    async def violations(self) -> float:
        """``prometheus_proxy_enforcement_violations_total`` as the proxy's /metrics shows it."""
        response = await self.client.get(self.base_url + "/metrics")
        response.raise_for_status()
        for line in response.text.splitlines():
            if line.startswith(_VIOLATIONS + " "):
                return float(line.split()[1])
        raise AssertionError(f"{_VIOLATIONS} not found on /metrics")


def _parse_response(data: bytes) -> RawResponse:
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    body = rest[: int(length)] if length is not None else rest
    return RawResponse(status=int(parts[1]), headers=headers, body=body)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Building one per client costs ~15 ms (loading CA certificates); every URL here is plain http.
    return ssl.create_default_context()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Wiring:
    backend_urls: tuple[str, ...]
    policies: Mapping[str, AccessPolicy]
    config: ProxyConfig
    authenticator: Authenticator


async def _serve(wiring: _Wiring, *, task_status: trio.TaskStatus[RunningProxy] = trio.TASK_STATUS_IGNORED) -> None:
    recorder = BackendRecorder()
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    tls = _tls_context()
    async with (
        RecordingTransport(httpx.AsyncHTTPTransport(verify=tls), recorder) as backend_transport,
        httpx.AsyncClient(trust_env=False, timeout=30.0, limits=no_keepalive, verify=tls) as client,
    ):
        pool = BackendPool(backend_transport)
        pool.set_targets(wiring.backend_urls)
        tenants = TenantPolicies()
        tenants.publish(wiring.policies)
        metrics = ProxyMetrics()
        ops = OpsHandler(config=wiring.config, tenants=tenants, backends=pool, metrics=metrics)
        app = ProxyApp(
            config=wiring.config,
            tenants=tenants,
            authenticator=wiring.authenticator,
            backends=pool,
            metrics=metrics,
            ops=ops,
        )
        server = HTTPServer(app, host="127.0.0.1", port=0, graceful_timeout_s=1.0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_close_on_exit, app)
            await nursery.start(server.run)
            host, port = server.bound[0].split("://")[-1].rsplit(":", 1)
            task_status.started(
                RunningProxy(
                    base_url=f"http://{host}:{port}",
                    host=host,
                    port=int(port),
                    client=client,
                    recorder=recorder,
                    tenants=tenants,
                    metrics=metrics,
                    backends=pool,
                    app=app,
                    server=server,
                )
            )


async def _close_on_exit(app: ProxyApp) -> None:
    try:
        await trio.sleep_forever()
    finally:
        app.close()  # its worker processes, if a test started any


async def start_proxy(
    nursery: trio.Nursery,
    backend_url: str | Sequence[str],
    *,
    access: Iterable[Mapping[str, Any]] = (),
    policies: Mapping[str, AccessPolicy] | None = None,
    config: ProxyConfig | None = None,
    authenticator: Authenticator | None = None,
) -> RunningProxy:
    """Start a proxy in ``nursery`` in front of ``backend_url``; it stops when the nursery ends.

    Args:
        nursery: Owns the proxy's tasks, e.g. pytest-trio's ``nursery`` fixture.
        backend_url: The Prometheus to forward to (or several: the pool's targets). The pool's
            health checker does not run, so every target stays healthy unless requests fail.
        access: MetricAccess documents (see ``metric_access``); their merged policies are published.
        policies: Published as well (they win over ``access`` for the same namespace).
        config: Defaults to ``ProxyConfig(enable_metrics=True)``.
        authenticator: Defaults to ``HeaderAuthenticator()`` (``auth.type: none``).
    """
    wiring = _Wiring(
        backend_urls=(backend_url,) if isinstance(backend_url, str) else tuple(backend_url),
        policies={**load_policies(access), **(policies or {})},
        config=config or ProxyConfig(enable_metrics=True),
        authenticator=authenticator or HeaderAuthenticator(),
    )
    proxy: RunningProxy = await nursery.start(functools.partial(_serve, wiring))
    return proxy


@contextlib.asynccontextmanager
async def open_proxy(
    backend_url: str | Sequence[str],
    *,
    access: Iterable[Mapping[str, Any]] = (),
    policies: Mapping[str, AccessPolicy] | None = None,
    config: ProxyConfig | None = None,
    authenticator: Authenticator | None = None,
) -> AsyncIterator[RunningProxy]:
    """``start_proxy`` in a nursery of its own, cancelled on exit."""
    async with trio.open_nursery() as nursery:
        yield await start_proxy(
            nursery, backend_url, access=access, policies=policies, config=config, authenticator=authenticator
        )
        nursery.cancel_scope.cancel()


# -- checking what the backend received ------------------------------------------------------


def label_universe(label_sets: Iterable[Mapping[str, str]], namespaces: Sequence[str]) -> list[dict[str, str]]:
    """The given label sets, each also moved to every other namespace and with no namespace at all.

    A selector that is correctly restricted selects none of the moved copies a policy does not admit.
    """
    seen: dict[tuple[tuple[str, str], ...], None] = {}
    for labels in label_sets:
        base = dict(labels)
        variants = [base, {k: v for k, v in base.items() if k != "namespace"}]
        variants.extend({**base, "namespace": ns} for ns in namespaces)
        for variant in variants:
            seen.setdefault(tuple(sorted(variant.items())))
    return [dict(key) for key in seen]


def selector_matches(matchers: Sequence[LabelMatcher], labels: Mapping[str, str]) -> bool:
    """Whether a selector's matchers all hold for a label set (a missing label reads as "")."""
    return all(m.matches(labels.get(m.name, "")) for m in matchers)


def enforcement_problems(
    calls: Iterable[BackendCall], policy: AccessPolicy, universe: Sequence[Mapping[str, str]]
) -> list[str]:
    """Every recorded selector that selects a label set of ``universe`` that ``policy`` does not admit.

    ``query`` values are parsed as PromQL, ``match[]`` values as series selectors; a ``query``
    value that does not parse is itself a problem (the proxy must send only what it printed).
    """
    problems: list[str] = []
    for call in calls:
        selectors: list[tuple[str, tuple[LabelMatcher, ...]]] = []
        for query in call.values("query"):
            try:
                selectors.extend((query, s) for s in selectors_of(parse_promql(query)))
            except Exception as exc:  # the backend got something we cannot read back
                problems.append(f"{call.path}: unparsable query {query!r}: {exc}")
        for match in call.values("match[]"):
            selectors.append((match, parse_selector(match)))
        for text, matchers in selectors:
            leaked = next(
                (labels for labels in universe if selector_matches(matchers, labels) and not policy.admits(labels)),
                None,
            )
            if leaked is not None:
                problems.append(f"{call.path}: selector in {text!r} selects {leaked} outside the policy")
    return problems
