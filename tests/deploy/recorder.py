"""A recording reverse proxy between the service and a real kube-apiserver.

The service's kubeconfig names ``http://127.0.0.1:<port>`` of a :class:`RecordingProxy`;
the proxy forwards every request, its headers (the service's own bearer token included) and
body, to the real API server over TLS, streams the answer back unchanged (a watch is one
long chunked answer), and records one :class:`Call` per request: method, path, query and
the status code the API server answered. So a test sees every API request the service made
and every answer it got, 403s included, without touching the service's code.

Fault injection: ``conflicts`` names paths whose first N PATCH requests get a 409 Conflict
(a Kubernetes ``Status``) from the proxy itself, never reaching the server; the service's
re-read after a conflicting status write only runs after a conflict, and the real server
gives one only in a race a test cannot time.

Guarantees: a call is recorded as soon as its answer's status line is known (before a watch
stream's body), so :attr:`RecordingProxy.calls` is complete up to the answers already
started; a client that disconnects ends its upstream request at once.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from realservers.ports import LOOPBACK, free_port

__all__ = ["Call", "RecordingProxy"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"host",
})


@dataclass(frozen=True, slots=True)
class Call:
    """One request the service made, and the status it got."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    injected: bool = False
    """The proxy answered it itself (fault injection); the API server never saw it."""
    at: float = 0.0

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)


class RecordingProxy:
    """Forwards ``http://127.0.0.1:<port>`` to ``upstream`` (HTTPS), recording every call.

    Args:
        upstream: The API server's URL, e.g. ``https://127.0.0.1:6443``.
        tls: A client TLS context trusting the API server's CA.
        conflicts: Path suffix -> how many PATCH requests to paths ending with it are answered
            409 Conflict by the proxy before the rest go through.
    """

    def __init__(self, upstream: str, tls: ssl.SSLContext, *, conflicts: dict[str, int] | None = None) -> None:
        self._upstream = upstream
        self._tls = tls
        self._conflicts = dict(conflicts or {})
        self.calls: list[Call] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled (the port is known once started)."""
        config = HypercornConfig()
        self.port = free_port()
        config.bind = [f"{LOOPBACK}:{self.port}"]
        config.accesslog = None
        config.loglevel = "WARNING"
        config.keep_alive_timeout = 120
        timeout = httpx.Timeout(30.0, read=None)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=self._upstream, verify=self._tls, timeout=timeout, limits=limits,
                                     trust_env=False) as upstream:
            self._http = upstream
            await serve(self._app, config, task_status=task_status)  # type: ignore[arg-type]

    def _inject_conflict(self, method: str, path: str) -> bool:
        if method != "PATCH":
            return False
        for suffix, remaining in self._conflicts.items():
            if remaining > 0 and path.endswith(suffix):
                self._conflicts[suffix] = remaining - 1
                return True
        return False

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query_string: bytes = scope.get("query_string") or b""
        path = raw_path.decode("latin-1")
        query = tuple(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
        if self._inject_conflict(method, path):
            self.calls.append(Call(method, path, query, 409, injected=True, at=time.monotonic()))
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
                      "message": "injected by the test's recording proxy: the object has been modified"}
            payload = json.dumps(status).encode()
            await send({"type": "http.response.start", "status": 409,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        target = path + (f"?{query_string.decode('latin-1')}" if query_string else "")
        request = self._http.build_request(method, target, headers=headers, content=body)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            self.calls.append(Call(method, path, query, 502, at=time.monotonic()))
            logger.warning("upstream failed", extra={"path": path, "error": str(exc)[:256]})
            await send({"type": "http.response.start", "status": 502, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        self.calls.append(Call(method, path, query, response.status_code, at=time.monotonic()))
        try:
            out_headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out_headers})
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                nursery.cancel_scope.cancel()
        except (httpx.HTTPError, OSError, trio.BrokenResourceError):
            pass  # either side went away mid-stream: nothing more to relay
        finally:
            await response.aclose()


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
