"""One watch request: the API server's newline-delimited JSON events as typed values.

``watch_events`` opens ``?watch=true`` from a resourceVersion and yields each event until
the server ends the stream (its ``timeoutSeconds``) or the connection drops. An ERROR
event carrying 410 becomes ``Gone`` (the caller relists); other ERROR events become the
matching ``APIError``. Event types it does not know are logged and skipped, never
treated as data. Reconnecting, relisting and backoff are the informer's job.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from mtproxy.controller.client import KubeClient
from mtproxy.controller.errors import Gone, TransportError, error_from_response
from mtproxy.controller.resource import Resource

__all__ = ["EventType", "WatchEvent", "watch_events"]

logger = logging.getLogger(__name__)


class EventType(enum.Enum):
    """The watch event types of the Kubernetes API."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchEvent:
    """One event; ``object`` is the decoded object (a Status for ERROR)."""

    type: EventType
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        """The event object's ``metadata.resourceVersion`` ("" when absent)."""
        return str((self.object.get("metadata") or {}).get("resourceVersion", ""))


async def watch_events(
    client: KubeClient,
    resource: Resource,
    namespace: str | None = None,
    *,
    resource_version: str,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_s: int = 300,
) -> AsyncIterator[WatchEvent]:
    """Yield the events after ``resource_version`` until the stream ends.

    Raises:
        Gone: the resourceVersion is too old (relist).
        APIError: the server refused the watch.
        TransportError: the connection failed or broke.
    """
    params = {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": resource_version,
        "timeoutSeconds": str(timeout_s),
    }
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    await client.throttle()
    path = resource.path(namespace)
    try:
        async with client.http.stream(
            "GET", path, params=params, headers=client.headers(), timeout=httpx.Timeout(10.0, read=timeout_s + 30.0)
        ) as response:
            if response.status_code >= 400:
                body = await response.aread()
                raise error_from_response(response.status_code, body)
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = _decode(line)
                if event is not None:
                    yield event
    except httpx.HTTPError as exc:
        raise TransportError(f"watch {path}: {type(exc).__name__}: {exc}") from exc


def _decode(line: str) -> WatchEvent | None:
    try:
        document = json.loads(line)
        kind = EventType(document["type"])
        obj = document["object"]
    except (ValueError, KeyError, TypeError):
        logger.warning("watch event skipped", extra={"event": line[:256]})
        return None
    if kind is EventType.ERROR:
        code = int(obj.get("code", 0) or 0)
        body = json.dumps(obj).encode()
        if code == 410:
            raise Gone(410, str(obj.get("reason", "Expired")), str(obj.get("message", "too old resource version")))
        raise error_from_response(code or 500, body)
    return WatchEvent(type=kind, object=obj)
