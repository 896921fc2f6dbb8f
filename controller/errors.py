"""Errors of the Kubernetes client, built from the API server's ``Status`` answers.

Tree::

    APIError (Exception)          status, reason, message from the Status body
    ├── NotFound                  404
    ├── AlreadyExists             409, reason AlreadyExists
    ├── Conflict                  409 (a stale resourceVersion on update)
    ├── Gone                      410 (history compacted; relist)
    ├── Invalid                   422, with ``causes`` naming fields
    └── RetryableError            429, 5xx and transport failures; ``retry_after_s`` when known
        └── TransportError        the request never got an answer (connect, read, timeout)

``error_from_response`` is the one place a response becomes an exception, and
``TransportError`` the one place an httpx exception does: nothing outside
``mtproxy.controller.client`` sees httpx errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIError",
    "AlreadyExists",
    "Cause",
    "Conflict",
    "Gone",
    "Invalid",
    "NotFound",
    "RetryableError",
    "TransportError",
    "error_from_response",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cause:
    """One ``details.causes`` entry of a 422."""

    field: str
    message: str
    reason: str = ""


class APIError(Exception):
    """The API server refused a request."""

    def __init__(self, status: int, reason: str, message: str, *, causes: tuple[Cause, ...] = ()) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes


class NotFound(APIError):
    """404: the object or resource does not exist."""


class AlreadyExists(APIError):
    """409 AlreadyExists: create of a name that is taken."""


class Conflict(APIError):
    """409: the object changed since it was read (optimistic concurrency)."""


class Gone(APIError):
    """410: the requested resourceVersion is no longer in the server's history."""


class Invalid(APIError):
    """422: the object failed validation; ``causes`` name the fields."""


class RetryableError(APIError):
    """429 or 5xx: try again later (after ``retry_after_s`` when the server said)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        causes: tuple[Cause, ...] = (),
    ) -> None:
        super().__init__(status, reason, message, causes=causes)
        self.retry_after_s = retry_after_s


class TransportError(RetryableError):
    """No answer: connection refused or reset, timeout, protocol error."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Transport", message)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(status: int, body: bytes, *, retry_after: str | None = None) -> APIError:
    """The most specific error for an unsuccessful answer, from its Status body when it has one."""
    reason, message = "", ""
    causes: tuple[Cause, ...] = ()
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict) and document.get("kind") == "Status":
        reason = str(document.get("reason") or "")
        message = str(document.get("message") or "")
        details = document.get("details") or {}
        causes = tuple(
            Cause(field=str(c.get("field", "")), message=str(c.get("message", "")), reason=str(c.get("reason", "")))
            for c in (details.get("causes") or [])
            if isinstance(c, dict)
        )
    if not message:
        message = body[:256].decode("utf-8", "replace")
    if status == 404:
        return NotFound(status, reason or "NotFound", message)
    if status == 409:
        kind = AlreadyExists if reason == "AlreadyExists" else Conflict
        return kind(status, reason or "Conflict", message)
    if status == 410:
        return Gone(status, reason or "Gone", message)
    if status == 422:
        return Invalid(status, reason or "Invalid", message, causes=causes)
    if status == 429 or status >= 500:
        return RetryableError(status, reason or "ServerError", message, retry_after_s=_retry_after(retry_after))
    return APIError(status, reason or "Error", message, causes=causes)
