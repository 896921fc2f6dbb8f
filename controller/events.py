"""Kubernetes Events about objects, recorded as client-go's recorder does, without flooding.

- **API.** ``events.k8s.io/v1`` first; when the server does not serve it (404), the
  recorder falls back to ``core/v1`` Events for good.
- **De-duplicated.** The same (object uid, type, reason, message) within
  ``dedupe_window_s`` is recorded once; client-go aggregates such repeats into a count,
  and a repeat adds nothing a reader needs.
- **Rate-limited per object.** A token bucket per object (client-go's spam filter:
  burst 25, one token per 5 minutes), so one object flapping cannot fill etcd.
- **Degrades to logs.** A recorder refused with 403 (no RBAC for Events) logs one warning
  and from then on only logs; any other failure is logged at debug and dropped, since an
  Event is never worth failing or retrying a reconcile for.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio

from mtproxy.controller.client import KubeClient
from mtproxy.controller.errors import APIError, NotFound
from mtproxy.controller.resource import Resource

__all__ = ["EVENTS_V1", "EventRecorder", "EventRecorderStatistics"]

logger = logging.getLogger(__name__)

EVENTS_V1 = Resource(group="events.k8s.io", version="v1", plural="events")
_MAX_KEYS = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecorderStatistics:
    """Counts of the recorder."""

    recorded: int
    deduplicated: int
    rate_limited: int
    failed: int
    api: str
    """``events.k8s.io/v1``, ``v1``, or ``logs`` once Events are forbidden."""


class _Bucket:
    def __init__(self, burst: int, refill_s: float, now: float) -> None:
        self.tokens = float(burst)
        self.updated = now
        self.burst = burst
        self.refill_s = refill_s

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.refill_s)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class EventRecorder:
    """Records Events about objects on behalf of one controller."""

    def __init__(
        self,
        client: KubeClient,
        *,
        controller: str,
        instance: str,
        dedupe_window_s: float = 600.0,
        burst: int = 25,
        refill_s: float = 300.0,
    ) -> None:
        if dedupe_window_s < 0:
            raise ValueError(f"dedupe_window_s: must not be negative, got {dedupe_window_s}")
        if burst < 1 or refill_s <= 0:
            raise ValueError("burst: must be at least 1, and refill_s positive")
        self._client = client
        self._controller = controller
        self._instance = instance
        self._dedupe_window_s = dedupe_window_s
        self._burst = burst
        self._refill_s = refill_s
        self._seen: OrderedDict[tuple[str, str, str, str], float] = OrderedDict()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._api = "events.k8s.io/v1"
        self._counts = {"recorded": 0, "deduplicated": 0, "rate_limited": 0, "failed": 0}

    def statistics(self) -> EventRecorderStatistics:
        """A snapshot."""
        return EventRecorderStatistics(
            recorded=self._counts["recorded"],
            deduplicated=self._counts["deduplicated"],
            rate_limited=self._counts["rate_limited"],
            failed=self._counts["failed"],
            api="logs" if self._api == "logs" else self._api,
        )

    async def record(self, involved: Mapping[str, Any], *, warning: bool, reason: str, message: str) -> bool:
        """Record one Event about ``involved`` (apiVersion, kind, metadata); True when it was sent."""
        metadata = involved.get("metadata") or {}
        uid = str(metadata.get("uid") or f"{metadata.get('namespace')}/{metadata.get('name')}")
        kind = "Warning" if warning else "Normal"
        fields = {
            "object": f"{metadata.get('namespace', '')}/{metadata.get('name', '')}",
            "event_type": kind,
            "reason": reason,
        }
        now = trio.current_time()
        key = (uid, kind, reason, message)
        seen = self._seen.get(key)
        if seen is not None and now - seen < self._dedupe_window_s:
            self._counts["deduplicated"] += 1
            return False
        bucket = self._buckets.get(uid)
        if bucket is None:
            bucket = self._buckets[uid] = _Bucket(self._burst, self._refill_s, now)
        self._buckets.move_to_end(uid)
        if not bucket.take(now):
            self._counts["rate_limited"] += 1
            logger.debug("event rate limited", extra=fields)
            return False
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > _MAX_KEYS:
            self._seen.popitem(last=False)
        while len(self._buckets) > _MAX_KEYS:
            self._buckets.popitem(last=False)
        if self._api == "logs":
            logger.info("event", extra={**fields, "note": message[:256]})
            return False
        try:
            await self._send(involved, kind=kind, reason=reason, message=message)
        except APIError as exc:
            self._counts["failed"] += 1
            if exc.status == 403:
                self._api = "logs"
                logger.warning(
                    "events forbidden, recording them in logs only", extra={**fields, "error": str(exc)[:256]}
                )
                logger.info("event", extra={**fields, "note": message[:256]})
            else:
                logger.debug("event not recorded", extra={**fields, "error": str(exc)[:256]})
            return False
        self._counts["recorded"] += 1
        return True

    async def _send(self, involved: Mapping[str, Any], *, kind: str, reason: str, message: str) -> None:
        if self._api == "events.k8s.io/v1":
            try:
                body = self._body_v1(involved, kind, reason, message)
                await self._client.create(EVENTS_V1, _namespace(involved), body)
                return
            except NotFound as exc:
                if 'namespaces "' in exc.message:
                    raise  # the API is served; the namespace is missing
                # "the server could not find the requested resource", or a bare
                # "404 page not found" from a server that does not serve the group
                self._api = "v1"
                logger.info("events.k8s.io/v1 not served, recording core/v1 events")
        await self._client.create_event(
            involved, reason=reason, message=message, warning=kind == "Warning", component=self._controller
        )

    def _body_v1(self, involved: Mapping[str, Any], kind: str, reason: str, message: str) -> dict[str, Any]:
        metadata = involved["metadata"]
        return {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            # a name of its own, as client-go's recorder makes: events.k8s.io/v1 validates
            # generateName as a DNS subdomain, which "name." is not
            "metadata": {"name": f"{metadata['name']}.{time.time_ns():x}", "namespace": _namespace(involved)},
            "eventTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": self._controller,
            "reportingInstance": self._instance[:128],
            "action": "Reconcile",
            "reason": reason,
            "note": message[:1024],
            "type": kind,
            "regarding": {
                "apiVersion": involved.get("apiVersion", ""),
                "kind": involved.get("kind", ""),
                "name": metadata["name"],
                "namespace": metadata.get("namespace", ""),
                "uid": metadata.get("uid", ""),
                "resourceVersion": metadata.get("resourceVersion", ""),
            },
        }


def _namespace(involved: Mapping[str, Any]) -> str:
    return str((involved.get("metadata") or {}).get("namespace") or "default")
