"""Errors of the forwarding pipeline's senders, split by whether trying again can help.

Tree::

    RemoteWriteError (Exception)
    ├── RetryableSendError     5xx, 429, network errors, timeouts; ``retry_after_s`` when the receiver said
    ├── PermanentSendError     any other answer that is not 2xx (400 out-of-order, 401, 404, 413, 415, 3xx):
    │                          sending the same bytes again cannot succeed, so the batch is dropped
    └── SecretUnavailable      a Secret key a destination references cannot be read; nothing was sent

``send_error_from_response`` is the one place an unsuccessful HTTP answer becomes an error;
the senders (``mtproxy.remotewrite.senders``) translate httpx exceptions into
``RetryableSendError`` in one table of their own, so no httpx error leaves them. The split
follows the remote-write spec (remote-write-notes §1.5): 5xx MUST be retried, other 4xx MUST
NOT, and 429 is retried as Grafana Alloy does.
"""

from __future__ import annotations

__all__ = [
    "PermanentSendError",
    "RemoteWriteError",
    "RetryableSendError",
    "SecretUnavailable",
    "send_error_from_response",
]


class RemoteWriteError(Exception):
    """The root of every error the remote-write package raises on purpose."""


class RetryableSendError(RemoteWriteError):
    """The receiver is unavailable or overloaded, or did not answer: try the same request again.

    Attributes:
        status: The HTTP status, or None when no answer came (connect error, reset, timeout).
        retry_after_s: How long the receiver asked us to wait (``Retry-After``), when it did.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class PermanentSendError(RemoteWriteError):
    """The receiver refused the request for good: never retry it.

    Attributes:
        status: The HTTP status (e.g. 400 for an out-of-order sample, 401 for bad credentials).
        reason: The HTTP reason phrase.
        body: At most the first KiB of the response body, secrets already redacted.
    """

    def __init__(self, status: int, reason: str, *, body: str = "") -> None:
        super().__init__(f"{status} {reason}: {body}" if body else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


class SecretUnavailable(RemoteWriteError):
    """A referenced Secret, or a key of it, cannot be read (or does not hold what it should)."""

    def __init__(self, namespace: str, name: str, key: str, *, reason: str = "not found") -> None:
        super().__init__(f"secret {namespace}/{name} key {key!r}: {reason}")
        self.namespace = namespace
        self.name = name
        self.key = key
        self.reason = reason


def send_error_from_response(
    status: int, reason: str, body: str, *, retry_after_s: float | None = None
) -> RetryableSendError | PermanentSendError:
    """The error for an answer that is not 2xx: retryable for 5xx and 429, permanent otherwise.

    Args:
        status: The HTTP status; must not be 2xx.
        reason: The HTTP reason phrase.
        body: The (truncated, redacted) response body, kept verbatim for the log.
        retry_after_s: The parsed ``Retry-After``; only a retryable error carries it.

    Raises:
        ValueError: ``status`` is a success.
    """
    if 200 <= status < 300:
        raise ValueError(f"status: {status} is a success, not an error")
    if status == 429 or status >= 500:
        message = f"{status} {reason}: {body}" if body else f"{status} {reason}"
        return RetryableSendError(message, status=status, retry_after_s=retry_after_s)
    return PermanentSendError(status, reason, body=body)
