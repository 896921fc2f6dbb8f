"""Pushes of a MetricAccess' newest values to its Pushgateway group, and removal of that group.

The group is ``job=<destination.pushgateway_job>, namespace=<namespace>`` under
``destination.url`` (remote-write-notes §7). ``push`` is a PUT, so the group afterwards holds
exactly the pushed series: a series left out of a push disappears, and an empty body empties
the group. ``delete_group`` is a DELETE; the Pushgateway queues it and answers 202, and
orders it before any later push. Retries, backoff, deadlines, drops, credentials and
statistics follow ``mtproxy.remotewrite.senders.HttpSender``: a 400 (say, a timestamp in the
body, or a type that clashes with another group's) drops the push without retrying it.
"""

from __future__ import annotations

import httpx

from mtproxy.remotewrite.exposition import grouping_path
from mtproxy.remotewrite.job import Destination, DestinationKind
from mtproxy.remotewrite.secrets import SecretReader
from mtproxy.remotewrite.senders import HttpSender, SendResult

__all__ = ["EXPOSITION_CONTENT_TYPE", "PushgatewaySender"]

EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What ``format_exposition`` writes, as the Pushgateway expects it."""


class PushgatewaySender(HttpSender):
    """PUTs and DELETEs one Pushgateway group."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        destination: Destination,
        *,
        namespace: str,
        secrets: SecretReader | None = None,
        user_agent: str = "mtproxy/0.1",
        backoff_min_s: float = 0.03,
        backoff_max_s: float = 5.0,
        attempt_timeout_s: float = 30.0,
    ) -> None:
        """See ``HttpSender``.

        Raises:
            ValueError: ``destination.kind`` is not ``PUSHGATEWAY``, ``destination.pushgateway_job``
                is empty, or any reason ``HttpSender`` gives.
        """
        if destination.kind is not DestinationKind.PUSHGATEWAY:
            raise ValueError(f"destination.kind must be PUSHGATEWAY, got {destination.kind.name}")
        if not destination.pushgateway_job:
            raise ValueError("destination.pushgateway_job must not be empty")
        super().__init__(
            http,
            destination,
            namespace=namespace,
            secrets=secrets,
            user_agent=user_agent,
            backoff_min_s=backoff_min_s,
            backoff_max_s=backoff_max_s,
            attempt_timeout_s=attempt_timeout_s,
        )
        self._group_url = destination.url.rstrip("/") + grouping_path(
            destination.pushgateway_job, {"namespace": namespace}
        )

    @property
    def group_url(self) -> str:
        """The group's URL: ``<base>/metrics/job/<job>/namespace/<namespace>``."""
        return self._group_url

    async def push(self, body: bytes, *, samples: int | None = None) -> SendResult:
        """Replace the group's series with those of ``body``.

        Args:
            body: Text exposition without timestamps (``format_exposition``).
            samples: How many series it holds, for the counters; counted from ``body`` when None.

        Raises:
            SecretUnavailable: A referenced Secret cannot be read; nothing was sent.
        """
        if samples is None:
            samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        return await self._deliver(
            "PUT",
            self._group_url,
            body=body,
            content_headers={"Content-Type": EXPOSITION_CONTENT_TYPE},
            samples=samples,
        )

    async def delete_group(self) -> SendResult:
        """Delete the group (``DELIVERED`` on the Pushgateway's 202).

        Raises:
            SecretUnavailable: A referenced Secret cannot be read; nothing was sent.
        """
        return await self._deliver("DELETE", self._group_url, body=b"", content_headers={}, samples=0)
