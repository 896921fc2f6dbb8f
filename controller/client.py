"""Thin async verbs of the Kubernetes API on an ``httpx.AsyncClient``, under trio.

The client owns no connection policy of its own: it takes an ``httpx.AsyncClient`` (so
tests and callers can swap the transport), adds the bearer token on each request and a
client-side token bucket (QPS/burst, like client-go's), and turns every unsuccessful
answer into the error tree of ``mtproxy.controller.errors``. httpx exceptions never leave
this module. Watches are in ``mtproxy.controller.watch``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import httpx
import trio

from mtproxy.controller.clusterconfig import ClusterConfig
from mtproxy.controller.errors import TransportError, error_from_response
from mtproxy.controller.ratelimit import BucketRateLimiter
from mtproxy.controller.resource import Resource

__all__ = ["EVENTS", "KubeClient", "ListResult", "open_http_client"]

EVENTS = Resource(group="", version="v1", plural="events")
_MERGE_PATCH = "application/merge-patch+json"

ListResult = tuple[list[dict[str, Any]], str]
"""The items of a list and the list's resourceVersion."""


def open_http_client(config: ClusterConfig, *, timeout_s: float = 30.0) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for ``config``'s API server (the caller closes it)."""
    return httpx.AsyncClient(base_url=config.host, verify=config.verify, timeout=timeout_s)


class KubeClient:
    """get, list, create, update, merge-patch, status, delete, events."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        config: ClusterConfig,
        qps: float = 100.0,
        burst: int = 200,
        user_agent: str = "mtproxy",
    ) -> None:
        self._http = http
        self._config = config
        self._bucket = BucketRateLimiter(qps=qps, burst=burst)
        self._user_agent = user_agent

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Request headers: authentication, user agent, JSON."""
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        token = self._config.token()
        if token:
            headers["Authorization"] = token
        if extra:
            headers.update(extra)
        return headers

    async def throttle(self) -> None:
        """Wait for the client-side rate limit (a checkpoint even when no wait is needed)."""
        await trio.sleep(self._bucket.when(None))

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying HTTP client (for the watch stream)."""
        return self._http

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call; the decoded JSON answer, or the most specific ``APIError``."""
        await self.throttle()
        content = None if body is None else json.dumps(body).encode("utf-8")
        headers = self.headers({"Content-Type": content_type} if content is not None else None)
        try:
            response = await self._http.request(method, path, params=params, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.content, retry_after=response.headers.get("Retry-After")
            )
        try:
            decoded: dict[str, Any] = response.json()
        except ValueError as exc:
            raise TransportError(f"{method} {path}: answer is not JSON") from exc
        return decoded

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        """One object."""
        return await self.request("GET", resource.path(namespace, name))

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> ListResult:
        """Every object (all pages), and the resourceVersion to watch from."""
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": str(page_size)}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        while True:
            page = await self.request("GET", resource.path(namespace), params=params)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return items, str(metadata.get("resourceVersion", ""))
            params["continue"] = token

    async def create(self, resource: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object (``AlreadyExists`` when the name is taken)."""
        return await self.request("POST", resource.path(namespace), body=body)

    async def update(self, resource: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; ``Conflict`` when its ``metadata.resourceVersion`` is stale."""
        name = body["metadata"]["name"]
        return await self.request("PUT", resource.path(namespace, name), body=body)

    async def patch_merge(
        self, resource: Resource, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """RFC 7386 merge patch of an object."""
        return await self.request("PATCH", resource.path(namespace, name), body=patch, content_type=_MERGE_PATCH)

    async def patch_status(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the ``status`` subresource (spec is left alone).

        With ``resource_version`` the patch applies only to that version of the object
        (``Conflict`` otherwise), so a status computed from a stale read is never written.
        """
        path = resource.path(namespace, name, subresource="status")
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self.request("PATCH", path, body=body, content_type=_MERGE_PATCH)

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        """Delete an object."""
        return await self.request("DELETE", resource.path(namespace, name))

    async def create_event(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        warning: bool = False,
        component: str = "mtproxy",
    ) -> dict[str, Any]:
        """Record a core/v1 Event about ``involved`` (an object with apiVersion, kind, metadata)."""
        metadata = involved["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata.get("namespace", "default")},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", ""),
                "kind": involved.get("kind", ""),
                "name": metadata["name"],
                "namespace": metadata.get("namespace", ""),
                "uid": metadata.get("uid", ""),
                "resourceVersion": metadata.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": component},
        }
        return await self.create(EVENTS, metadata.get("namespace", "default"), event)
