"""Answers tenant requests with 503 until the tenant policies are loaded.

The HTTP server starts before the caches have synced, so that liveness and readiness
probes are answered from the first second (a kubelet that gets no answer restarts the
pod, which would never let a large cluster finish its first list). Until then, a tenant
request could only be answered from an empty policy table, i.e. wrongly refused with
403; so every path but the operations endpoints gets Prometheus' 503 envelope with
``Retry-After`` instead. ``/-/ready`` itself says "not ready" meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["StartGate"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

_ALWAYS_SERVED = frozenset({"/-/healthy", "/-/ready", "/health", "/metrics"})
_BODY = json.dumps(
    {"status": "error", "errorType": "unavailable", "error": "starting: tenant policies are not loaded yet"}
).encode()


class StartGate:
    """ASGI middleware: ``app`` once ``ready()``; before that, 503 for everything but operations."""

    def __init__(self, app: ASGIApp, *, ready: Callable[[], bool]) -> None:
        self._app = app
        self._ready = ready
        self._open = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._open or scope["type"] != "http" or scope.get("path") in _ALWAYS_SERVED:
            await self._app(scope, receive, send)
            return
        if self._ready():
            self._open = True  # policies never become unloaded again
            await self._app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", b"1"),
                    (b"content-length", str(len(_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})
