"""The ASGI application of the double: one :class:`ApiDouble` is one fake API server.

Each HTTP request passes the fault switches (:mod:`.faults`), is routed (:mod:`.routes`)
and answered with JSON or a chunked watch stream; any :class:`~.errors.ApiError` becomes
its ``Status`` body, and an unexpected exception becomes a 500 ``InternalError`` Status
(logged with its traceback), never a dropped connection. Authentication is not checked:
any bearer token, or none, is accepted. The ASGI lifespan runs the background work (the
namespace reaper), so a server without lifespan support leaves deleted namespaces
Terminating.

It starts with the namespaces a real server creates (``default``, ``kube-system``,
``kube-public``, ``kube-node-lease``). Beyond HTTP, :meth:`ApiDouble.seed` writes objects
directly (status included, for test fixtures and state files),
:meth:`ApiDouble.set_review_rules` swaps the TokenReview and
SubjectAccessReview answers, and :meth:`ApiDouble.statistics` snapshots the internals.
All of these run in the trio thread that serves the app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio

from .asgi import Receive, Response, Scope, Send, read_request, send_response
from .cluster import Cluster, ClusterStatistics
from .errors import ApiError, BadRequestError, status_body
from .faults import Faults, FaultStatistics
from .namespaces import BUILTIN_NAMESPACES
from .reviews import ReviewRules
from .routes import route
from .writes import seed

__all__ = ["ApiDouble", "ApiDoubleStatistics"]

logger = logging.getLogger(__name__)

_CRD_API_VERSION = "apiextensions.k8s.io/v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiDoubleStatistics:
    """A snapshot of the double: store, watches and faults."""

    cluster: ClusterStatistics
    faults: FaultStatistics
    requests_served: int


class ApiDouble:
    """A Kubernetes API server double as an ASGI application.

    Args:
        rules: the TokenReview/SubjectAccessReview answers (default: no tokens, no access).
        bookmark_interval_s: idle time after which a watch with bookmarks gets one.
        history_limit: events kept for watch resumption before automatic compaction.
        namespace_grace_s: how long a deleted namespace stays Terminating before it and its
            contents are removed.
    """

    def __init__(
        self,
        *,
        rules: ReviewRules | None = None,
        bookmark_interval_s: float = 1.0,
        history_limit: int = 10_000,
        namespace_grace_s: float = 0.5,
    ) -> None:
        self.cluster = Cluster(rules=rules, bookmark_interval_s=bookmark_interval_s, history_limit=history_limit,
                               namespace_grace_s=namespace_grace_s)
        self.faults = Faults(self.cluster)
        self.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                   for name in BUILTIN_NAMESPACES])
        self.server_address = "127.0.0.1:0"
        """``host:port`` reported by ``/api``; set by :func:`~.server.serve` once bound."""
        self._requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        self._requests += 1
        injected = await self.faults.before_request(method=request.method, path=request.path)
        try:
            if injected is not None:
                raise injected
            response = await route(self.cluster, request, gate=self.faults.wait_resumed,
                                   server_address=self.server_address)
        except ApiError as exc:
            response = Response.json(exc.code, exc.to_status())
        except Exception:
            logger.exception("apidouble request failed", extra={"method": request.method, "path": request.path})
            response = Response.json(500, status_body(code=500, reason="InternalError",
                                                      message="an error on the server has prevented the request"))
        logger.debug("apidouble request", extra={
            "method": request.method, "path": request.path,
            "status": getattr(response, "status", 200),
        })
        await send_response(send, receive, response)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await nursery.start(self.cluster.namespaces.run)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    break
            nursery.cancel_scope.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    def seed(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or replace objects as given (status included); CRDs are written first.

        Raises:
            BadRequestError: an object's apiVersion/kind is not served.
            ApiError: an object is invalid.
        """
        ordered = sorted(objects, key=lambda obj: (obj.get("apiVersion"), obj.get("kind")) !=
                         (_CRD_API_VERSION, "CustomResourceDefinition"))
        stored = []
        for obj in ordered:
            info = self.cluster.registry.lookup_kind(api_version=str(obj.get("apiVersion", "")),
                                                     kind=str(obj.get("kind", "")))
            if info is None:
                raise BadRequestError(f"no resource serves {obj.get('apiVersion')} {obj.get('kind')}")
            stored.append(seed(self.cluster, info, obj))
        return stored

    def set_review_rules(self, rules: ReviewRules) -> None:
        """Answer TokenReviews and SubjectAccessReviews from ``rules`` from now on."""
        self.cluster.rules = rules

    def statistics(self) -> ApiDoubleStatistics:
        """Return a snapshot of the store, the watches and the faults."""
        return ApiDoubleStatistics(cluster=self.cluster.statistics(), faults=self.faults.statistics(),
                                   requests_served=self._requests)
