"""Delivery of encoded batches to one HTTP destination under the remote-write spec's retry rules.

``HttpSender`` holds what every destination needs (credentials, TLS, retries, the drop rule,
statistics); ``RemoteWriteSender`` POSTs snappy-compressed remote-write 1.0 requests with it
and ``PushgatewaySender`` (``mtproxy.remotewrite.pushgateway``) PUTs text exposition.

Guarantees of a send (remote-write-notes §1.2, §1.5, §2.4):

- **One answer decides.** 2xx → ``DELIVERED``. 5xx, 429, network errors and timeouts are
  retried. Any other status → ``DROPPED`` at once, never retried: 400 (out-of-order), 401,
  404, 413, 415, and 3xx too (redirects are not followed; point the destination at the final
  URL). The first KiB of a refused body is logged at error level (constant message, data in
  ``extra``) and the samples are counted under ``http_<status>``.
- **Backoff.** Waits start at ``backoff_min_s`` and double up to ``backoff_max_s``; each wait is
  that value times a uniform factor in [0.8, 1.2]. A ``Retry-After`` (seconds or HTTP-date)
  replaces the computed wait and is not jittered. The n-th retry carries ``Retry-Attempt: n``.
- **Deadlines belong to the caller.** ``send`` retries for as long as the caller's cancel
  scope allows (forever without one, as Prometheus does until shutdown). It never sleeps past
  ``trio.current_effective_deadline()``: when the next wait would end at or after it, ``send``
  *returns* ``RETRY_LATER`` at once with the last status and error. When the deadline strikes
  during a request, ``trio.Cancelled`` propagates as always. Either way nothing is known to
  be delivered and the caller keeps the batch. (A request cut off in flight may still have
  been stored; Prometheus then refuses a resend of its older samples as out-of-order.) So
  callers write::

      result = None
      with trio.move_on_after(deadline_s):
          result = await sender.send(body, samples=n)
      if result is None or result.outcome is SendOutcome.RETRY_LATER:
          ...  # keep the batch
- **Secrets.** A ``SecretUnavailable`` from the reader (or a CA that is not PEM, a token that
  is not printable ASCII) propagates out of ``send``: nothing was sent, the batch is intact.
- **Each attempt** is bounded by ``attempt_timeout_s`` (a cancel scope inside the sender, like
  Prometheus' ``remote_timeout``); a timed-out attempt is retried.
- **Headers.** The content headers, ``User-Agent`` and ``Authorization`` (basic auth or bearer
  token, read through the ``SecretReader`` at every send, so rotation applies to the next
  batch) cannot be overridden: a destination header with a reserved name is refused at
  construction. Secrets never reach a log line or an error text, not even when a receiver
  echoes the ``Authorization`` header back in its body.
- **TLS.** The shared ``httpx.AsyncClient`` is used unless the destination sets
  ``insecure_skip_verify`` or ``ca_secret``: TLS verification is a property of an httpx client,
  not of a request, so such a sender builds its own client (timeout and ``trust_env`` copied
  from the shared one), rebuilt when the CA bundle changes, and closes it in ``aclose``.
- **Independence.** Backoff, TLS client and statistics are per sender, so a dead destination
  never delays another. ``send`` may run in several tasks at once (one per shard); each call
  retries on its own.

The module is one unit of about 500 lines, half of them docstrings: the retry loop, the
credentials, the TLS client and the counters all read and write one sender's state, and
the pieces that stand alone (the error tree, the Secret readers, the Pushgateway verbs)
already live in modules of their own.
"""

from __future__ import annotations

import base64
import email.utils
import enum
import logging
import math
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Self

import httpx
import trio

from mtproxy.api import RESERVED_HEADERS, SecretKeyRef
from mtproxy.remotewrite.encode import REMOTE_WRITE_HEADERS
from mtproxy.remotewrite.errors import (
    PermanentSendError,
    RetryableSendError,
    SecretUnavailable,
    send_error_from_response,
)
from mtproxy.remotewrite.job import Destination, DestinationKind
from mtproxy.remotewrite.secrets import SecretReader

__all__ = [
    "HttpSender",
    "RemoteWriteSender",
    "SendOutcome",
    "SendResult",
    "SenderStatistics",
]

logger = logging.getLogger(__name__)

_RESERVED = RESERVED_HEADERS | {"retry-attempt", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
_BODY_LOG_BYTES = 1024
_JITTER = 0.2
_REDACTED = "<redacted>"

# httpx's transport errors, most specific first; every one is worth another attempt.
_TRANSPORT_ERRORS: tuple[tuple[type[httpx.TransportError], str], ...] = (
    (httpx.TimeoutException, "timeout"),
    (httpx.ConnectError, "connect error"),
    (httpx.RemoteProtocolError, "protocol error"),
    (httpx.NetworkError, "network error"),
    (httpx.TransportError, "transport error"),
)


class SendOutcome(enum.Enum):
    """What became of one batch."""

    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    DROPPED = "dropped"
    """The receiver refused it for good; it was logged and counted, and must not be resent."""
    RETRY_LATER = "retry_later"
    """Not delivered before the caller's deadline: keep it and send it again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """The outcome of one ``send``/``push``/``delete_group``."""

    outcome: SendOutcome
    status: int | None
    """The last HTTP status; None when the last attempt got no answer."""
    attempts: int
    """HTTP requests made for this batch."""
    error: str | None = None
    """The last failure (redacted); None when delivered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderStatistics:
    """A snapshot of one sender's counters."""

    destination: str
    requests: int
    """HTTP requests made, retries included."""
    retries: int
    samples_sent: int
    samples_dropped_by_reason: tuple[tuple[str, int], ...]
    """(reason, samples) sorted by reason; reasons are ``http_<status>``."""
    last_error: str | None
    last_success_monotonic: float | None
    """``trio.current_time()`` of the last delivery."""
    healthy: bool
    """No failure since the last delivery (True before the first send)."""


class HttpSender:
    """One HTTP destination: credentials, TLS client, retries with backoff, the drop rule, statistics."""

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
        """Args:
            http: The shared client; it is never closed here.
            destination: Where to send; validated here.
            namespace: The MetricAccess' namespace, where its Secrets live.
            secrets: Reads the Secrets the destination references; required when it references any.
            user_agent: The ``User-Agent`` header.
            backoff_min_s: The first retry wait.
            backoff_max_s: The cap of the doubling waits.
            attempt_timeout_s: How long one request may take before it counts as failed.

        Raises:
            ValueError: naming the bad parameter or ``destination`` field.
        """
        if not (0 < backoff_min_s < math.inf):
            raise ValueError(f"backoff_min_s must be positive and finite, got {backoff_min_s!r}")
        if not (backoff_min_s <= backoff_max_s < math.inf):
            raise ValueError(f"backoff_max_s must be finite and at least backoff_min_s, got {backoff_max_s!r}")
        if not attempt_timeout_s > 0:
            raise ValueError(f"attempt_timeout_s must be positive, got {attempt_timeout_s!r}")
        if not user_agent:
            raise ValueError("user_agent must not be empty")
        _validate_destination(destination, secrets)
        self._http = http
        self._destination = destination
        self._namespace = namespace
        self._secrets = secrets
        self._user_agent = user_agent
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._attempt_timeout_s = attempt_timeout_s
        self._own_client: httpx.AsyncClient | None = None
        self._own_client_ca: str | None = None
        # Replaced clients may still carry another task's request, so they are closed in aclose only.
        self._retired_clients: list[httpx.AsyncClient] = []
        self._client_lock = trio.Lock()
        self._requests = 0
        self._retries = 0
        self._samples_sent = 0
        self._dropped: dict[str, int] = {}
        self._last_error: str | None = None
        self._last_success: float | None = None
        self._healthy = True

    @property
    def destination(self) -> Destination:
        """Where this sender delivers."""
        return self._destination

    def statistics(self) -> SenderStatistics:
        """A frozen snapshot of the counters."""
        return SenderStatistics(
            destination=self._destination.name,
            requests=self._requests,
            retries=self._retries,
            samples_sent=self._samples_sent,
            samples_dropped_by_reason=tuple(sorted(self._dropped.items())),
            last_error=self._last_error,
            last_success_monotonic=self._last_success,
            healthy=self._healthy,
        )

    async def aclose(self) -> None:
        """Close the TLS client this sender built, if any (never the shared one)."""
        clients = [*self._retired_clients, *([self._own_client] if self._own_client else [])]
        self._own_client, self._own_client_ca, self._retired_clients = None, None, []
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _deliver(
        self,
        method: str,
        url: str,
        *,
        body: bytes,
        content_headers: Mapping[str, str],
        samples: int,
        resend: bool = False,
    ) -> SendResult:
        """Send until delivered, refused, or the caller's deadline leaves no room for the next wait.

        Raises:
            SecretUnavailable: A referenced Secret cannot be read; nothing was sent.
        """
        log_extra = {"destination": self._destination.name, "namespace": self._namespace, "method": method}
        try:
            authorization, hidden = await self._credentials()
            client = await self._client()
        except SecretUnavailable as exc:
            self._record_failure(str(exc))
            logger.warning("destination secret unavailable, nothing sent", extra={**log_extra, "error": str(exc)})
            raise
        headers = {**self._destination.headers, **content_headers, "User-Agent": self._user_agent}
        if authorization is not None:
            headers["Authorization"] = authorization
        backoff_s = self._backoff_min_s
        attempts = 0
        while True:
            attempts += 1
            if attempts > 1:
                headers["Retry-Attempt"] = str(attempts - 1)
            self._requests += 1
            try:
                status = await self._attempt(client, method, url, body=body, headers=headers, hidden=hidden)
            except RetryableSendError as exc:
                error = _redact(str(exc), hidden)
                self._record_failure(error)
                wait_s = exc.retry_after_s if exc.retry_after_s is not None else _jittered(backoff_s)
                backoff_s = min(backoff_s * 2, self._backoff_max_s)
                if trio.current_time() + wait_s >= trio.current_effective_deadline():
                    logger.warning(
                        "destination unavailable until the deadline, batch kept for later",
                        extra={**log_extra, "attempts": attempts, "status": exc.status, "error": error},
                    )
                    return SendResult(
                        outcome=SendOutcome.RETRY_LATER, status=exc.status, attempts=attempts, error=error
                    )
                self._retries += 1
                logger.debug(
                    "send failed, retrying",
                    extra={**log_extra, "attempt": attempts, "status": exc.status, "wait_s": wait_s, "error": error},
                )
                await trio.sleep(wait_s)
                continue
            except PermanentSendError as exc:
                if resend and exc.status == 400:
                    # a resend of a request whose answer never came: refused because it was stored
                    logger.debug(
                        "resent batch refused as already stored",
                        extra={**log_extra, "status": exc.status, "samples": samples},
                    )
                    return SendResult(
                        outcome=SendOutcome.DROPPED, status=exc.status, attempts=attempts, error=str(exc)
                    )
                reason = f"http_{exc.status}"
                if samples:
                    self._dropped[reason] = self._dropped.get(reason, 0) + samples
                self._record_failure(str(exc))
                logger.error(
                    "receiver refused the batch, dropped",
                    extra={**log_extra, "status": exc.status, "reason": reason, "samples": samples, "body": exc.body},
                )
                return SendResult(outcome=SendOutcome.DROPPED, status=exc.status, attempts=attempts, error=str(exc))
            self._samples_sent += samples
            self._healthy = True
            self._last_success = trio.current_time()
            return SendResult(outcome=SendOutcome.DELIVERED, status=status, attempts=attempts)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        body: bytes,
        headers: Mapping[str, str],
        hidden: tuple[str, ...],
    ) -> int:
        """One request: the 2xx status, or a send error (its body redacted of ``hidden``)."""
        answer: tuple[httpx.Response, bytes, bool] | None = None
        with trio.move_on_after(self._attempt_timeout_s):
            try:
                request = client.build_request(method, url, content=body, headers=headers)
                response = await client.send(request, stream=True, follow_redirects=False)
                try:
                    answer = response, *await _read_prefix(response, _BODY_LOG_BYTES)
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                raise _error_from_transport(exc) from exc
        if answer is None:
            raise RetryableSendError(f"timeout: no answer within {self._attempt_timeout_s:g} s")
        response, head, truncated = answer
        if response.is_success:
            return response.status_code
        raise send_error_from_response(
            response.status_code,
            response.reason_phrase,
            _redact(head.decode("utf-8", "replace"), hidden, truncated=truncated),
            retry_after_s=_parse_retry_after(response.headers.get("retry-after")),
        )

    async def _read_secret(self, ref: SecretKeyRef) -> str:
        assert self._secrets is not None  # _validate_destination demands a reader for any reference
        return await self._secrets.read(self._namespace, ref)

    async def _credentials(self) -> tuple[str | None, tuple[str, ...]]:
        """The ``Authorization`` value, and every secret string logs must not show."""
        destination = self._destination
        if destination.basic_auth_password is not None:
            # Surrounding whitespace is trimmed, as Prometheus does for credential files.
            password = (await self._read_secret(destination.basic_auth_password)).strip()
            token = base64.b64encode(f"{destination.basic_auth_username}:{password}".encode()).decode("ascii")
            return f"Basic {token}", (token, password)
        if destination.bearer_token is not None:
            bearer = (await self._read_secret(destination.bearer_token)).strip()
            if not (bearer.isascii() and bearer.isprintable()):
                ref = destination.bearer_token
                raise SecretUnavailable(self._namespace, ref.name, ref.key, reason="token is not printable ASCII")
            return f"Bearer {bearer}", (bearer,)
        return None, ()

    async def _client(self) -> httpx.AsyncClient:
        """The shared client, or this destination's own one when it has TLS options."""
        destination = self._destination
        if not destination.insecure_skip_verify and destination.ca_secret is None:
            return self._http
        ca: str | None = None
        if not destination.insecure_skip_verify:
            assert destination.ca_secret is not None
            ca = await self._read_secret(destination.ca_secret)
        async with self._client_lock:
            if self._own_client is not None and self._own_client_ca == ca:
                return self._own_client
            verify: ssl.SSLContext | bool = False if ca is None else self._ssl_context(ca)
            if self._own_client is not None:
                self._retired_clients.append(self._own_client)
            self._own_client = httpx.AsyncClient(
                verify=verify, timeout=self._http.timeout, trust_env=self._http.trust_env
            )
            self._own_client_ca = ca
            return self._own_client

    def _ssl_context(self, ca: str) -> ssl.SSLContext:
        ref = self._destination.ca_secret
        assert ref is not None
        try:
            return ssl.create_default_context(cadata=ca)
        except (ssl.SSLError, ValueError) as exc:
            raise SecretUnavailable(self._namespace, ref.name, ref.key, reason="not a PEM CA bundle") from exc

    def _record_failure(self, error: str) -> None:
        self._last_error = error
        self._healthy = False


class RemoteWriteSender(HttpSender):
    """POSTs snappy-compressed remote-write 1.0 requests to one receiver."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        destination: Destination,
        *,
        namespace: str,
        secrets: SecretReader | None,
        user_agent: str = "mtproxy/0.1",
        backoff_min_s: float = 0.03,
        backoff_max_s: float = 5.0,
        attempt_timeout_s: float = 30.0,
    ) -> None:
        """See ``HttpSender``; ``destination.kind`` must be ``REMOTE_WRITE``."""
        if destination.kind is not DestinationKind.REMOTE_WRITE:
            raise ValueError(f"destination.kind must be REMOTE_WRITE, got {destination.kind.name}")
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

    async def send(self, body: bytes, *, samples: int, resend: bool = False) -> SendResult:
        """Deliver one request.

        Args:
            body: The snappy-compressed (block format) ``WriteRequest``.
            samples: How many samples it holds, for the sent and dropped counters.
            resend: The samples of a request whose answer never came: a 400 then means they
                were stored (a Prometheus receiver refuses samples it already has), which is
                logged at info and counted neither as dropped nor as a failure.

        Returns:
            ``DELIVERED``, ``DROPPED`` or ``RETRY_LATER``; see the module docstring.

        Raises:
            SecretUnavailable: A referenced Secret cannot be read; nothing was sent.
            ValueError: ``samples`` is negative.
        """
        if samples < 0:
            raise ValueError(f"samples must not be negative, got {samples}")
        return await self._deliver(
            "POST",
            self._destination.url,
            body=body,
            content_headers=REMOTE_WRITE_HEADERS,
            samples=samples,
            resend=resend,
        )


def _validate_destination(destination: Destination, secrets: SecretReader | None) -> None:
    url = httpx.URL(destination.url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"destination.url must be an http(s) URL with a host, got {destination.url!r}")
    for header in destination.headers:
        if header.lower() in _RESERVED:
            raise ValueError(f"destination.headers: {header!r} is reserved; the sender sets it")
    if (destination.basic_auth_username is None) != (destination.basic_auth_password is None):
        raise ValueError("destination.basic_auth_username and basic_auth_password must be given together")
    if destination.basic_auth_password is not None and destination.bearer_token is not None:
        raise ValueError("destination.bearer_token: give basic auth or a bearer token, not both")
    referenced = (destination.basic_auth_password, destination.bearer_token, destination.ca_secret)
    if secrets is None and any(ref is not None for ref in referenced):
        raise ValueError("secrets: a SecretReader is required, the destination references Secrets")


def _error_from_transport(exc: httpx.TransportError) -> RetryableSendError:
    label = next(label for kind, label in _TRANSPORT_ERRORS if isinstance(exc, kind))
    return RetryableSendError(f"{label}: {exc or type(exc).__name__}")


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (delay-seconds or HTTP-date); None if absent, invalid or past."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _jittered(wait_s: float) -> float:
    return wait_s * random.uniform(1 - _JITTER, 1 + _JITTER)


def _redact(text: str, hidden: tuple[str, ...], *, truncated: bool = False) -> str:
    """``text`` without any of the ``hidden`` strings; a cut-off text also loses a secret's cut-off start."""
    if truncated:
        text = text.rstrip("\ufffd")  # a multi-byte character cut in two
    for secret in hidden:
        if not secret:
            continue  # an empty string would "match" everywhere
        text = text.replace(secret, _REDACTED)
        if truncated:
            for length in range(len(secret) - 1, 0, -1):
                if text.endswith(secret[:length]):
                    text = text[:-length] + _REDACTED
                    break
    return text


async def _read_prefix(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of the body, and whether there was more.

    The rest is read and discarded, so that the connection can be reused.
    """
    head = bytearray()
    truncated = False
    try:
        async for chunk in response.aiter_bytes():
            room = limit - len(head)
            truncated = truncated or len(chunk) > room
            if room > 0:
                head += chunk[:room]
    except httpx.DecodingError:
        # The status decides the outcome; a body that is not what its Content-Encoding says is only text.
        return b"<body not decodable>", False
    return bytes(head), truncated
