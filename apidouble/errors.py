"""Errors the double answers with, each rendered as a Kubernetes ``Status`` body.

Every failure a handler raises is an :class:`ApiError`; the HTTP layer turns it into the
JSON body the real API server sends (``kind: Status``, ``status: Failure``, ``message``,
``reason``, ``code`` and, where the real server gives them, ``details``)::

    ApiError                     any Status failure (code, reason, message, details)
    ├── BadRequestError          400 BadRequest: unparsable body, selector, name mismatch
    ├── ForbiddenError           403 Forbidden: create in a terminating namespace
    ├── NotFoundError            404 NotFound: object or path not served
    ├── MethodNotAllowedError    405 MethodNotAllowed: verb not supported by the resource
    ├── ConflictError            409 Conflict: stale resourceVersion or failed precondition
    ├── AlreadyExistsError       409 AlreadyExists: create of an existing name
    ├── ExpiredError             410 Expired: resourceVersion or continue token compacted
    ├── UnsupportedMediaTypeError  415 UnsupportedMediaType: patch type not supported
    ├── InvalidError             422 Invalid: field errors in ``details.causes``
    └── ServerTimeoutError       504 Timeout: resourceVersion newer than the server's

The reason for 410 is ``Expired``, as the real server sends for compacted watches, lists
and continue tokens (client-go's ``IsResourceExpired``); clients that check ``code == 410``
see the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "BadRequestError",
    "ConflictError",
    "ExpiredError",
    "FieldCause",
    "ForbiddenError",
    "InvalidError",
    "MethodNotAllowedError",
    "NotFoundError",
    "ServerTimeoutError",
    "UnsupportedMediaTypeError",
    "status_body",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldCause:
    """One entry of ``details.causes`` in a 422 Invalid Status."""

    field: str
    """The Kubernetes field path, e.g. ``spec.remoteWrite.interval`` or ``spec.metrics[0]``."""
    message: str
    """What is wrong, e.g. ``Unsupported value: "x": supported values: "a", "b"``."""
    reason: str
    """``FieldValueInvalid``, ``FieldValueRequired``, ``FieldValueNotSupported``, ..."""

    def to_json(self) -> dict[str, str]:
        """Return the cause as the real server spells it."""
        return {"reason": self.reason, "message": self.message, "field": self.field}


def status_body(
    *, code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return a failure ``Status`` object; success Statuses are built by their handlers."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """A request failure with the fields of a Kubernetes ``Status``."""

    code: int = 500
    reason: str = "InternalError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        """Return the ``Status`` body for this error."""
        return status_body(code=self.code, reason=self.reason, message=self.message, details=self.details)


def _object_details(*, name: str, group: str, resource: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


class BadRequestError(ApiError):
    """400: the request cannot be understood (body, parameters, URL/body mismatch)."""

    code = 400
    reason = "BadRequest"


class ForbiddenError(ApiError):
    """403: the request is refused (the double refuses only creates in terminating namespaces)."""

    code = 403
    reason = "Forbidden"


class NotFoundError(ApiError):
    """404: the object, or the path itself, does not exist."""

    code = 404
    reason = "NotFound"

    @classmethod
    def for_object(cls, *, group: str, resource: str, name: str) -> NotFoundError:
        """Return the error the real server gives for a missing named object."""
        return cls(
            f'{_qualified(group, resource)} "{name}" not found',
            details=_object_details(name=name, group=group, resource=resource),
        )

    @classmethod
    def for_path(cls) -> NotFoundError:
        """Return the error for a URL no resource serves."""
        return cls("the server could not find the requested resource", details={})


class MethodNotAllowedError(ApiError):
    """405: the resource does not support this verb."""

    code = 405
    reason = "MethodNotAllowed"

    def __init__(self, message: str = "the server does not allow this method on the requested resource") -> None:
        super().__init__(message, details={})


class ConflictError(ApiError):
    """409 Conflict: the write was based on a stale resourceVersion or failed a precondition."""

    code = 409
    reason = "Conflict"

    @classmethod
    def stale(cls, *, group: str, resource: str, name: str, why: str | None = None) -> ConflictError:
        """Return the optimistic-concurrency conflict the real server gives."""
        why = why or "the object has been modified; please apply your changes to the latest version and try again"
        return cls(
            f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {why}',
            details=_object_details(name=name, group=group, resource=resource),
        )


class AlreadyExistsError(ApiError):
    """409 AlreadyExists: a create named an object that exists."""

    code = 409
    reason = "AlreadyExists"

    @classmethod
    def for_object(cls, *, group: str, resource: str, name: str) -> AlreadyExistsError:
        """Return the error the real server gives for a duplicate create."""
        return cls(
            f'{_qualified(group, resource)} "{name}" already exists',
            details=_object_details(name=name, group=group, resource=resource),
        )


class ExpiredError(ApiError):
    """410: the resourceVersion or continue token is older than the retained history."""

    code = 410
    reason = "Expired"


class UnsupportedMediaTypeError(ApiError):
    """415: the Content-Type of a write is not supported."""

    code = 415
    reason = "UnsupportedMediaType"


class InvalidError(ApiError):
    """422: the object fails validation; ``details.causes`` names every bad field."""

    code = 422
    reason = "Invalid"

    def __init__(
        self, *, kind: str, group: str, name: str, causes: list[FieldCause] | tuple[FieldCause, ...]
    ) -> None:
        qualified = f"{kind}.{group}" if group else kind
        rendered = [f"{cause.field}: {cause.message}" if cause.field else cause.message for cause in causes]
        summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
        details: dict[str, Any] = {"name": name}
        if group:
            details["group"] = group
        details["kind"] = kind
        details["causes"] = [cause.to_json() for cause in causes]
        super().__init__(f'{qualified} "{name}" is invalid: {summary}', details=details)
        self.causes = tuple(causes)


class ServerTimeoutError(ApiError):
    """504: a requested resourceVersion did not arrive in time."""

    code = 504
    reason = "Timeout"
